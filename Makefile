# Entry points. Every target that runs Python depends on `install` (a project venv in .venv,
# skipped when already up to date).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

.PHONY: install test data motifs detector gpu-check

install: $(STAMP)

$(STAMP): setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PINS)
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

test: install
	$(PY) -m pytest -q tests

# Generate SynthVG (the embedded VG150-format dataset) under datasets/synthvg/.
SYNTH_ARGS ?=
data: install
	$(PY) tools/make_synthvg.py --out datasets/synthvg $(SYNTH_ARGS)

# Stage 2: Neural Motifs on the frozen stage-1 detector (MODEL.PRETRAINED_DETECTOR_CKPT), trained
# with validation every SOLVER.VAL_PERIOD, then the best val-mR@50 checkpoint tested. Rerunning
# resumes. MODE=predcls|sgcls|sgdet sets the two protocol switches and gives the config's
# OUTPUT_DIR that suffix; without MODE the config decides. OPTS="KEY VALUE ..." adds overrides.
#   make motifs                                  (VG150, PredCls)
#   make motifs MODE=sgdet
#   make motifs CONFIG=configs/synthvg/motifs_sgcls.yaml
MODE ?=
OPTS ?=
SWITCHES_predcls := MODEL.ROI_RELATION_HEAD.USE_GT_BOX True MODEL.ROI_RELATION_HEAD.USE_GT_OBJECT_LABEL True
SWITCHES_sgcls   := MODEL.ROI_RELATION_HEAD.USE_GT_BOX True MODEL.ROI_RELATION_HEAD.USE_GT_OBJECT_LABEL False
SWITCHES_sgdet   := MODEL.ROI_RELATION_HEAD.USE_GT_BOX False MODEL.ROI_RELATION_HEAD.USE_GT_OBJECT_LABEL False
define relation_train
	@case "$(MODE)" in ""|predcls|sgcls|sgdet) ;; \
	  *) echo "MODE must be predcls, sgcls or sgdet (got '$(MODE)')" >&2; exit 2;; esac
	@set -e; extra=""; \
	if [ -n "$(MODE)" ]; then \
	  out=$$($(PY) -c 'import re, sys; from maskrcnn_benchmark.config import load_config; print(re.sub(r"_(predcls|sgcls|sgdet)$$", "", load_config(sys.argv[1]).OUTPUT_DIR) + "_" + sys.argv[2])' $(CONFIG) $(MODE)); \
	  extra="$(SWITCHES_$(MODE)) OUTPUT_DIR $$out"; \
	fi; \
	echo "$(PY) tools/relation_train_net.py --config-file $(CONFIG) $$extra $(OPTS)"; \
	$(PY) tools/relation_train_net.py --config-file $(CONFIG) $$extra $(OPTS)
endef

motifs: CONFIG ?= configs/e2e_relation_VGG16_1x.yaml
motifs: install
	$(relation_train)

# Align-Motifs: the same, with the self-supervised relation alignment (MODEL.ROI_RELATION_HEAD.ALIGN).
#   make motifs-align                            (VG150, PredCls)
#   make motifs-align CONFIG=configs/synthvg/motifs_align_sgdet.yaml
.PHONY: motifs-align
motifs-align: CONFIG ?= configs/e2e_relation_VGG16_1x_align.yaml
motifs-align: install
	$(relation_train)

# Stage 2 with another of SGB's predictors, as `make motifs`: PREDICTOR=transformer|vctree|imp picks
# configs/e2e_relation_VGG16_1x_$(PREDICTOR).yaml (VG150); CONFIG= any other, e.g. a SynthVG one.
#   make predictor PREDICTOR=vctree MODE=sgcls
#   make predictor-align CONFIG=configs/synthvg/transformer_align_predcls.yaml
.PHONY: predictor predictor-align predictors
PREDICTOR ?= transformer
predictor: CONFIG ?= configs/e2e_relation_VGG16_1x_$(PREDICTOR).yaml
predictor: install
	$(relation_train)
predictor-align: CONFIG ?= configs/e2e_relation_VGG16_1x_$(PREDICTOR)_align.yaml
predictor-align: install
	$(relation_train)

# The alignment on every predictor (issue 17; tools/alignment_study.py predictors): Motifs,
# Transformer, VCTree and IMP, each with and without it, STUDY_SEEDS seeds, at the configs'
# schedule (best val checkpoint tested), in STUDY_MODES (default PredCls), plus the frequency prior
# -> $(ALIGN_OUT)/predictors/predictors.md (mean ± sd, paired differences, the paper's bar). The
# Motifs rows are make reproduce's runs (shared). Resumable; measured on the AMD CPU, two at a time:
# 13-16 min per PredCls run without the alignment, 16-18 with it, so one seed of the six other runs
# is ~50 min: make predictors STUDY_SEEDS=0 (the Intel CPU of earlier sessions took ~1.7x as long).
# ALIGN_STUDY_ARGS="--variants align --reductions mean" adds aligned rows with ALIGN.KL_REDUCTION
# mean (a diagnostic row of the report, beside each run's early gradient norm).
STUDY_MODES ?= predcls
predictors: data
	$(PY) tools/alignment_study.py predictors --out $(ALIGN_OUT) --detector $(DETECTOR) --seeds $(STUDY_SEEDS) \
	  --modes $(STUDY_MODES) $(ALIGN_STUDY_ARGS) --jobs 2 $(OPTS)

# Stage 1: the VGG-16 Faster R-CNN, validated every SOLVER.VAL_PERIOD, tested at the end.
# Rerunning resumes. CONFIG picks the experiment, OPTS="KEY VALUE ..." adds overrides.
#   make detector                                (VG150)
#   make detector CONFIG=configs/synthvg/detector_VGG16.yaml
detector: CONFIG ?= configs/e2e_relation_detector_VGG16_1x.yaml
detector: install
	$(PY) tools/detector_pretrain_net.py --config-file $(CONFIG) $(OPTS)

# Scene graphs for your own images (tools/sgg_infer.py; docs/inference.md):
# SGDet with the Align-Motifs model `make demo` trains, or any relation checkpoint.
#   make infer IMAGES="photos/ more.jpg" [CHECKPOINT=FILE] [INFER_OUT=DIR] [INFER_ARGS="--boxes b.json --topk 20"] [OPTS="KEY VALUE"]
.PHONY: infer
infer: CHECKPOINT ?= demo_output/align_sgdet/model_final.pth
infer: INFER_OUT ?= infer_output
infer: install
	@test -n "$(IMAGES)" || { echo 'usage: make infer IMAGES="DIR_OR_FILE ..." [CHECKPOINT=FILE] [INFER_OUT=DIR] [INFER_ARGS="..."]' >&2; exit 2; }
	@test -f "$(CHECKPOINT)" || { echo "make infer: checkpoint $(CHECKPOINT) not found: run 'make demo' first (it trains it) or pass CHECKPOINT=path/to/model_final.pth" >&2; exit 2; }
	$(PY) tools/sgg_infer.py --checkpoint "$(CHECKPOINT)" --output "$(INFER_OUT)" $(INFER_ARGS) --images $(IMAGES) $(OPTS)

# The whole pipeline on SynthVG (tools/demo.py): data, detector, Motifs and Align-Motifs in
# PredCls / SGCls / SGDet, the frequency baseline, demo_output/results.md and pictures.
# Finished stages are reused; FORCE=1 redoes everything. To fit 15 minutes on two cores, DEMO_ARGS
# shortens the relation runs to 150 iterations without validation (the final model is tested)
# and keeps 12 instead of 20 detections per image in SGDet, and DEMO_DETECTOR_ARGS skips the
# detector's validation (1000 val images); `make motifs`, `make curves` and `make reproduce` use
# the configs as they are (docs/results.md has both).
.PHONY: demo
DEMO_ARGS ?= SOLVER.MAX_ITER 150 SOLVER.SCHEDULE.UPDATE_PERIOD 6 SOLVER.TO_VAL False SOLVER.SELECT_BEST_VAL False \
  MODEL.ROI_HEADS.DETECTIONS_PER_IMG 12
DEMO_DETECTOR_ARGS ?= SOLVER.TO_VAL False
demo: install
	$(PY) tools/demo.py --out demo_output $(if $(filter 1 yes true,$(FORCE)),--force,) \
	  --detector-opts "$(DEMO_DETECTOR_ARGS)" $(DEMO_ARGS)

# Real VG150 readiness: check every file under datasets/vg/ (tools/check_vg_files.py), then 20
# iterations of each stage with the full-size configs (GPU advised; CPU works, slowly).
.PHONY: vg-smoke
VG_SMOKE_OUT ?= output/vg_smoke
vg-smoke: install
	@test -f datasets/vg/VG-SGG-with-attri.h5 || { echo "make vg-smoke: datasets/vg/VG-SGG-with-attri.h5 not found: put the real VG150 files in datasets/vg/ (see datasets/vg/README.md)" >&2; exit 2; }
	$(PY) tools/check_vg_files.py --config-file configs/e2e_relation_detector_VGG16_1x.yaml
	$(PY) tools/detector_pretrain_net.py --config-file configs/e2e_relation_detector_VGG16_1x.yaml --no-resume --skip-test \
	  SOLVER.MAX_ITER 20 SOLVER.IMS_PER_BATCH 2 SOLVER.WARMUP_ITERS 5 SOLVER.TO_VAL False LOG_PERIOD 5 OUTPUT_DIR $(VG_SMOKE_OUT)/detector
	$(PY) tools/relation_train_net.py --config-file configs/e2e_relation_VGG16_1x_align.yaml --no-resume --skip-test \
	  SOLVER.MAX_ITER 20 SOLVER.IMS_PER_BATCH 2 SOLVER.WARMUP_ITERS 5 SOLVER.TO_VAL False LOG_PERIOD 5 \
	  MODEL.PRETRAINED_DETECTOR_CKPT $(VG_SMOKE_OUT)/detector/model_final.pth OUTPUT_DIR $(VG_SMOKE_OUT)/align_motifs
	@echo "vg-smoke: both stages ran 20 iterations on the real VG150 files ($(VG_SMOKE_OUT))"

# Learning curves of the SynthVG relation configs (tools/schedule_study.py): Motifs and
# Align-Motifs per protocol at each length of CURVES_ITERS (cosine over the whole run, val every
# 10%), no test -> curves_output/curves.md (+ curves.png) and the schedule the rule of
# docs/results.md picks. Resumable: finished runs are reused. CURVES_MODES / CURVES_ARGS narrow it.
#   make curves CURVES_MODES=predcls CURVES_ITERS="1500 3000"
.PHONY: curves
CURVES_ITERS ?= 1500 3000
CURVES_MODES ?= predcls sgcls sgdet
curves: data
	$(PY) tools/schedule_study.py --out curves_output --modes $(CURVES_MODES) --iters $(CURVES_ITERS) --jobs 2 $(CURVES_ARGS)

# Issue 15, does the alignment help? (tools/alignment_study.py; rules and protocols in
# docs/results.md, "Alignment study (issue 15)"). PredCls/SGCls on SynthVG, one detector (DETECTOR,
# default the demo's), runs in $(ALIGN_OUT)/runs (shared: a run one study finished is reused by
# the others), each study's tables and pictures in $(ALIGN_OUT)/<study>/ with the exact command.
# Resumable: finished runs are reused, unfinished ones resume. Two runs at a time, one core each.
# Split a study into pieces with STUDY_SEEDS (e.g. STUDY_SEEDS=0, then 1, then 2: each report
# covers every seed and setting already run) and ALIGN_STUDY_ARGS (--fractions / --lengths / --modes /
# --variants); OPTS="KEY VALUE ..." goes to every run (e.g. the fixed schedule's SOLVER.MAX_ITER),
# whose report then goes to $(ALIGN_OUT)/<study>/<tag>/ (the tag in the runs' names).
# Times on this 2-core machine, estimated (measured in the sixth session: a 3000-iteration PredCls
# run with its 10 validations and test took 22-25 min on one core beside another run, Align-Motifs
# the longer; the estimates below assumed ~18 min, so expect ~30% more):
#   make sparsity           ~2 h (3 seeds; ~40 min per seed, ~20 min with schedule-length's 1x runs done);
#                           measured on the AMD EPYC of 2026-12-02: 48 min for the 12 runs of 0.25 and 0.5
#                           (the 1.0 runs were done)
#   make schedule-length    ~4 h 30 min (3 seeds); measured on the AMD EPYC of 2026-12-03, one core per
#                           run beside another: 1x 16 / 16, 2x 26 / 32, 3x 34 / 41 min (Motifs /
#                           Align-Motifs), so a seed takes ~1 h 30 min from nothing, 1 h 14 min with its
#                           1x runs done (seed 0); STUDY_SEEDS="1 2" at 2x / 3x took 2 h 29 min (a CI
#                           run beside it for part), over the 2-hour piece: run one seed at a time
#   make kl-reduction       ~3 h 45 min (3 seeds; ~75 min per seed, ~55 with the PredCls Motifs and
#                           batchmean runs done; STUDY_SEEDS=0 ALIGN_STUDY_ARGS="--modes sgcls" ~45 min)
#   make schedule-length STUDY_SEEDS=0      (one piece, under 2 hours)
.PHONY: sparsity schedule-length kl-reduction
STUDY_SEEDS ?= 0 1 2
ALIGN_OUT ?= alignment_output
ALIGN_STUDY_ARGS ?=
DETECTOR ?= checkpoints/synthvg_detector_VGG16.pth
sparsity schedule-length kl-reduction: data
	$(PY) tools/alignment_study.py $@ --out $(ALIGN_OUT) --detector $(DETECTOR) --seeds $(STUDY_SEEDS) \
	  $(ALIGN_STUDY_ARGS) --jobs 2 $(OPTS)

# The paper's protocol on SynthVG (issue 15, part 1; tools/alignment_study.py tables): Table 2
# (Motifs and Align-Motifs in PROTOCOLS) and the Table 3 ablation in PredCls (SA + UPH, SSA + PH),
# each with STUDY_SEEDS, at the configs' schedules (3000 iterations, val every 10%, the best val
# mR@50 checkpoint tested), plus the frequency prior of each protocol -> $(ALIGN_OUT)/tables/tables.md
# (mean ± sd, per-seed paired differences, the paper's one-sd bar). The runs are the studies' runs
# ($(ALIGN_OUT)/runs: Table 2's PredCls runs are make sparsity's 1.0 runs). Resumable; split it into
# pieces of under 2 hours here (two runs at a time, one core each; per run PredCls 22-25 min, SGCls
# ~30, SGDet ~55 on the Intel CPU of the earlier sessions; 14-16, 17 and 30-38 min measured on the
# AMD EPYC of 2026-12-02):
#   make reproduce PROTOCOLS=predcls STUDY_SEEDS="0 1"     (~1 h 40 min Intel, ~1 h AMD)
#   make reproduce PROTOCOLS="sgcls sgdet" STUDY_SEEDS=0   (~1 h Intel, ~40 min AMD)
#   make reproduce PROTOCOLS="predcls sgdet" STUDY_SEEDS="3 4" ALIGN_STUDY_ARGS="--variants motifs align"
#                                                          (the seed rule's extra seeds: 1 h 50 min AMD, measured)
# (Until the seventh session `make reproduce` ran tools/demo.py for 600 iterations on datasets/reproduce;
# docs/results.md keeps that command with its results.)
.PHONY: reproduce
PROTOCOLS ?= predcls sgcls sgdet
reproduce: data
	$(PY) tools/alignment_study.py tables --out $(ALIGN_OUT) --detector $(DETECTOR) --seeds $(STUDY_SEEDS) \
	  --modes $(PROTOCOLS) $(ALIGN_STUDY_ARGS) --jobs 2 $(OPTS)

# The GPU / multi-GPU check (CUDA, ~8 min): full-size configs, AMP, torchrun on every visible GPU;
# prints images/s, peak GPU memory and evaluation times (benchmarks/gpu_check.sh).
gpu-check: install
	benchmarks/gpu_check.sh gpu_check_output
