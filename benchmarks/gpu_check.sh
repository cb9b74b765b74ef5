#!/usr/bin/env bash
# The GPU / multi-GPU check in one command (`make gpu-check`, at most ~8 minutes on CUDA):
#
#   benchmarks/gpu_check.sh [OUT]          # default OUT: gpu_check_output (replaced if it is one)
#   GPU_CHECK_TINY=1 benchmarks/gpu_check.sh OUT   # CPU, toy sizes: what tests/test_gpu_check.py runs
#
# On CUDA it generates a SynthVG with VG150-sized images (longer side 800 px, so the configs'
# resize gives VG's 600 px shorter side), trains the full-size detector config
# (configs/e2e_relation_detector_VGG16_1x.yaml: VGG-16 at 512 channels, SOLVER.AMP) for DET_ITERS
# iterations with torchrun on every visible GPU, then Align-Motifs (configs/e2e_relation_VGG16_1x_align.yaml)
# for REL_ITERS iterations in PredCls, SGCls and SGDet, each followed by its test, and prints per
# run: training images/s, peak GPU memory, evaluation time. Environment: DET_ITERS (200),
# REL_ITERS (100), PER_GPU (images per GPU per iteration, 4), NUM_TRAIN (1200), NUM_TEST (200),
# NGPU (visible GPUs), PYTHON (.venv/bin/python). Stops at the first failing step (its log named).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-gpu_check_output}
PY=${PYTHON:-.venv/bin/python}
TINY=${GPU_CHECK_TINY:-0}

if [ "$TINY" = 1 ]; then
    NGPU=${NGPU:-1}; DET_ITERS=${DET_ITERS:-2}; REL_ITERS=${REL_ITERS:-2}; PER_GPU=${PER_GPU:-2}
    NUM_TRAIN=${NUM_TRAIN:-16}; NUM_TEST=${NUM_TEST:-4}; NUM_VAL=4; IMAGE_SIZE=64
    SIZES=(MODEL.DEVICE cpu INPUT.MIN_SIZE_TRAIN "(64,)" INPUT.MAX_SIZE_TRAIN 64 INPUT.MIN_SIZE_TEST 64
           INPUT.MAX_SIZE_TEST 64 MODEL.BACKBONE.WIDTH_DIVISOR 16 MODEL.BACKBONE.BATCH_NORM True
           MODEL.ROI_BOX_HEAD.MLP_HEAD_DIM 32 MODEL.RPN.ANCHOR_SIZES "(16, 32)"
           MODEL.RPN.PRE_NMS_TOP_N_TRAIN 300 MODEL.RPN.POST_NMS_TOP_N_TRAIN 100
           MODEL.RPN.PRE_NMS_TOP_N_TEST 300 MODEL.RPN.POST_NMS_TOP_N_TEST 100
           MODEL.RPN.BATCH_SIZE_PER_IMAGE 64 MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE 64
           MODEL.ROI_HEADS.DETECTIONS_PER_IMG 10 DATALOADER.NUM_WORKERS 0)
    REL_SIZES=(MODEL.ROI_RELATION_HEAD.EMBED_DIM 8 MODEL.ROI_RELATION_HEAD.CONTEXT_HIDDEN_DIM 12
               MODEL.ROI_RELATION_HEAD.CONTEXT_POOLING_DIM 20 MODEL.ROI_RELATION_HEAD.POS_EMBED_DIM 10
               MODEL.ROI_RELATION_HEAD.BATCH_SIZE_PER_IMAGE 16 MODEL.ROI_RELATION_HEAD.ALIGN.MLP_HIDDEN_DIM 16)
else
    NGPU=${NGPU:-$("$PY" -c "import torch; print(torch.cuda.device_count())")}
    if [ "$NGPU" -lt 1 ]; then
        echo "error: no CUDA device visible (GPU_CHECK_TINY=1 runs the CPU version)" >&2
        exit 2
    fi
    DET_ITERS=${DET_ITERS:-200}; REL_ITERS=${REL_ITERS:-100}; PER_GPU=${PER_GPU:-4}
    NUM_TRAIN=${NUM_TRAIN:-1200}; NUM_TEST=${NUM_TEST:-200}; NUM_VAL=50; IMAGE_SIZE=800
    SIZES=(DATALOADER.NUM_WORKERS 4); REL_SIZES=()
fi
BATCH=$((PER_GPU * NGPU))
COMMON=(DATASETS.DATA_DIR "$OUT/data" DATASETS.TRAIN "('synthvg_train',)" DATASETS.VAL "('synthvg_val',)"
        DATASETS.TEST "('synthvg_test',)" DATASETS.NUM_VAL_IM "$NUM_VAL" MODEL.ROI_BOX_HEAD.NUM_CLASSES 31
        SOLVER.IMS_PER_BATCH "$BATCH" TEST.IMS_PER_BATCH "$BATCH" SOLVER.TO_VAL False
        SOLVER.WARMUP_ITERS 10 SOLVER.CHECKPOINT_PERIOD 100000 LOG_PERIOD 10 "${SIZES[@]}")

if [ -e "$OUT" ] && [ ! -f "$OUT/.gpu_check" ]; then  # never delete a folder this script did not make
    echo "error: $OUT exists and is not a gpu_check output folder: name another OUT" >&2
    exit 2
fi
rm -rf "$OUT"
mkdir -p "$OUT"
touch "$OUT/.gpu_check"
run() {  # name, tool, config, overrides...
    local name=$1 tool=$2 config=$3
    shift 3
    echo "== $name: $tool on $NGPU process(es), $BATCH images per iteration"
    if ! "$PY" -m torch.distributed.run --standalone --nproc_per_node "$NGPU" "tools/$tool.py" \
            --config-file "$config" "${COMMON[@]}" OUTPUT_DIR "$OUT/$name" "$@" > "$OUT/$name.out" 2>&1; then
        tail -n 30 "$OUT/$name.out" >&2
        echo "error: $name failed; its output: $OUT/$name.out" >&2
        exit 1
    fi
}

start=$SECONDS
"$PY" tools/make_synthvg.py --out "$OUT/data/synthvg" --num-train "$NUM_TRAIN" --num-test "$NUM_TEST" \
    --image-size "$IMAGE_SIZE" > "$OUT/data.out" 2>&1 || { tail -n 20 "$OUT/data.out" >&2; exit 1; }
echo "== data: $NUM_TRAIN + $NUM_TEST images ($IMAGE_SIZE px) in $((SECONDS - start)) s"

run detector detector_pretrain_net configs/e2e_relation_detector_VGG16_1x.yaml \
    SOLVER.MAX_ITER "$DET_ITERS" SOLVER.STEPS "($((DET_ITERS * 3 / 4)),)"
for mode in predcls sgcls sgdet; do
    case $mode in
        predcls) switches=(True True) ;;
        sgcls) switches=(True False) ;;
        sgdet) switches=(False False) ;;
    esac
    run "align_$mode" relation_train_net configs/e2e_relation_VGG16_1x_align.yaml \
        MODEL.PRETRAINED_DETECTOR_CKPT "$OUT/detector/model_final.pth" MODEL.ROI_RELATION_HEAD.NUM_CLASSES 26 \
        MODEL.ROI_RELATION_HEAD.USE_GT_BOX "${switches[0]}" MODEL.ROI_RELATION_HEAD.USE_GT_OBJECT_LABEL "${switches[1]}" \
        SOLVER.MAX_ITER "$REL_ITERS" "${REL_SIZES[@]}"
done
"$PY" - "$OUT" "$BATCH" "$NGPU" <<'EOF'
"""Figures of each run from its log.txt: training images/s (median iteration time of the last
log lines), peak GPU memory (max_mem of the log lines), evaluation time and its headline metric."""
import os
import re
import sys

out, batch, ngpu = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
print(f"\n{'run':<14}{'train img/s':>12}{'peak GPU MB':>13}{'eval s':>9}  metric")
for name in ("detector", "align_predcls", "align_sgcls", "align_sgdet"):
    text = open(os.path.join(out, name, "log.txt")).read()
    times = [float(t) for t in re.findall(r"\biter \d+/\d+ .* time ([0-9.]+)", text)]
    mem = [int(m) for m in re.findall(r"max_mem (\d+)M", text)]
    ev = re.findall(r"evaluation (?:on|of) (\d+) images \(([0-9.]+)s\): (.*)", text)
    if not times or not ev:
        sys.exit(f"error: {name}/log.txt has no training log line or no evaluation line")
    rate = batch / times[-1] if times[-1] > 0 else float("inf")
    print(f"{name:<14}{rate:>12.1f}{(max(mem) if mem else 0):>13}{float(ev[-1][1]):>9.1f}  "
          f"{ev[-1][2]} ({ev[-1][0]} test images, {ngpu} process(es))")
EOF
echo "gpu check done in $((SECONDS - start)) s; logs in $OUT/"
