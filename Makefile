# Entry points. Every target that runs Python depends on `install` (a project venv in .venv,
# skipped when already up to date).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

.PHONY: install test data detector

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

# Stage 1: the VGG-16 Faster R-CNN, validated every SOLVER.VAL_PERIOD, tested at the end.
# Rerunning resumes. CONFIG picks the experiment, OPTS="KEY VALUE ..." adds overrides.
#   make detector                                (VG150)
#   make detector CONFIG=configs/synthvg/detector_VGG16.yaml
detector: CONFIG ?= configs/e2e_relation_detector_VGG16_1x.yaml
detector: install
	$(PY) tools/detector_pretrain_net.py --config-file $(CONFIG) $(OPTS)

# Scene graphs for your own images (tools/sgg_infer.py; README "Inference on your own images"):
# SGDet with the Align-Motifs model `make demo` trains, or any relation checkpoint.
#   make infer IMAGES="photos/ more.jpg" [CHECKPOINT=FILE] [INFER_OUT=DIR] [INFER_ARGS="--boxes b.json --topk 20"] [OPTS="KEY VALUE"]
.PHONY: infer
infer: CHECKPOINT ?= demo_output/align_sgdet/model_best.pth
infer: INFER_OUT ?= infer_output
infer: install
	@test -n "$(IMAGES)" || { echo 'usage: make infer IMAGES="DIR_OR_FILE ..." [CHECKPOINT=FILE] [INFER_OUT=DIR] [INFER_ARGS="..."]' >&2; exit 2; }
	@test -f "$(CHECKPOINT)" || { echo "make infer: checkpoint $(CHECKPOINT) not found: run 'make demo' first (it trains it) or pass CHECKPOINT=path/to/model_best.pth" >&2; exit 2; }
	$(PY) tools/sgg_infer.py --checkpoint "$(CHECKPOINT)" --output "$(INFER_OUT)" $(INFER_ARGS) --images $(IMAGES) $(OPTS)
