"""Default configuration.

Key names follow Scene-Graph-Benchmark (SGB) wherever SGB has the key, so that an SGB
user's YAML files and command-line overrides carry over.  Keys SGB does not have live
under their own node (e.g. ``MODEL.ROI_RELATION_HEAD.ALIGN``) and are off by default.

Never mutate ``_C``: call :func:`maskrcnn_benchmark.config.get_cfg` for a fresh copy.
"""
from yacs.config import CfgNode as CN

_C = CN()

# ---------------------------------------------------------------------------- #
# Model
# ---------------------------------------------------------------------------- #
_C.MODEL = CN()
_C.MODEL.META_ARCHITECTURE = "GeneralizedRCNN"
_C.MODEL.RELATION_ON = False  # False: stage 1 (detector); True: stage 2 (relation head)
_C.MODEL.DEVICE = "cuda"  # falls back to "cpu" with a log line when CUDA is absent
_C.MODEL.WEIGHT = ""  # full model weights to start from (any stage)
_C.MODEL.PRETRAINED_DETECTOR_CKPT = ""  # stage-1 checkpoint the relation stage loads
_C.MODEL.PRETRAINED_BACKBONE = ""  # local ImageNet VGG-16 state dict (torchvision layout)
_C.MODEL.CLS_AGNOSTIC_BBOX_REG = False
# Stage 2: keep the frozen detector's per-image outputs (feature map, SGCls logits, SGDet
# detections) in memory up to this many MB and reuse them every epoch (exact: keyed by the
# detector's weights and the image; see modeling/detector/detector_cache.py). 0: off.
_C.MODEL.DETECTOR_CACHE_MB = 0
# With DETECTOR_CACHE_MB > 0: also keep those outputs on disk, shared between processes (the
# runs of tools/demo.py and tools/schedule_study.py on one detector), in DETECTOR_CACHE_DIR/<hash
# of the detector, its code and settings>/ (a relative folder is taken from the working
# directory, as OUTPUT_DIR). DETECTOR_CACHE_MB also bounds each such folder's bytes (one limit:
# the folder holds the entries one process would keep in memory); past it a process stops
# writing. Files are written atomically, never rewritten, and only inside folders the cache
# created: delete the folder to clear it. "": memory only.
_C.MODEL.DETECTOR_CACHE_DIR = ""

_C.MODEL.BACKBONE = CN()
_C.MODEL.BACKBONE.CONV_BODY = "VGG-16"
# CPU-only knobs, default off: divide every conv width by this; add BatchNorm after convs.
_C.MODEL.BACKBONE.WIDTH_DIVISOR = 1
_C.MODEL.BACKBONE.BATCH_NORM = False
# Freeze the first N conv blocks of VGG-16 (SGB/torchvision habit: the first two blocks).
_C.MODEL.BACKBONE.FREEZE_CONV_BODY_AT = 2

_C.MODEL.RPN = CN()
_C.MODEL.RPN.ANCHOR_SIZES = (32, 64, 128, 256, 512)
_C.MODEL.RPN.ANCHOR_STRIDE = (16,)
_C.MODEL.RPN.ASPECT_RATIOS = (0.23232838, 0.63365731, 1.28478321, 3.15089189)  # neural-motifs
_C.MODEL.RPN.FG_IOU_THRESHOLD = 0.7
_C.MODEL.RPN.BG_IOU_THRESHOLD = 0.3
_C.MODEL.RPN.BATCH_SIZE_PER_IMAGE = 256
_C.MODEL.RPN.POSITIVE_FRACTION = 0.5
_C.MODEL.RPN.PRE_NMS_TOP_N_TRAIN = 12000
_C.MODEL.RPN.PRE_NMS_TOP_N_TEST = 6000
_C.MODEL.RPN.POST_NMS_TOP_N_TRAIN = 2000
_C.MODEL.RPN.POST_NMS_TOP_N_TEST = 1000
_C.MODEL.RPN.NMS_THRESH = 0.7
_C.MODEL.RPN.MIN_SIZE = 0

_C.MODEL.ROI_HEADS = CN()
_C.MODEL.ROI_HEADS.FG_IOU_THRESHOLD = 0.5
_C.MODEL.ROI_HEADS.BG_IOU_THRESHOLD = 0.3
_C.MODEL.ROI_HEADS.BBOX_REG_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
_C.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 256
_C.MODEL.ROI_HEADS.POSITIVE_FRACTION = 0.5
_C.MODEL.ROI_HEADS.SCORE_THRESH = 0.01
_C.MODEL.ROI_HEADS.NMS = 0.3
_C.MODEL.ROI_HEADS.DETECTIONS_PER_IMG = 80
# After per-class NMS each proposal keeps only its best class (SGB: default False, True in its
# relation configs, so that SGDet never pairs a proposal with itself under two labels).
_C.MODEL.ROI_HEADS.NMS_FILTER_DUPLICATES = False

_C.MODEL.ROI_BOX_HEAD = CN()
_C.MODEL.ROI_BOX_HEAD.FEATURE_EXTRACTOR = "VGG16FPN2MLPFeatureExtractor"
_C.MODEL.ROI_BOX_HEAD.PREDICTOR = "FastRCNNPredictor"
_C.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 7
_C.MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO = 2
_C.MODEL.ROI_BOX_HEAD.POOLER_SCALES = (0.0625,)
_C.MODEL.ROI_BOX_HEAD.NUM_CLASSES = 151
_C.MODEL.ROI_BOX_HEAD.MLP_HEAD_DIM = 2048

_C.MODEL.ROI_RELATION_HEAD = CN()
_C.MODEL.ROI_RELATION_HEAD.PREDICTOR = "MotifPredictor"
_C.MODEL.ROI_RELATION_HEAD.NUM_CLASSES = 51
# PredCls: USE_GT_BOX and USE_GT_OBJECT_LABEL; SGCls: USE_GT_BOX only; SGDet: neither.
_C.MODEL.ROI_RELATION_HEAD.USE_GT_BOX = True
_C.MODEL.ROI_RELATION_HEAD.USE_GT_OBJECT_LABEL = True
_C.MODEL.ROI_RELATION_HEAD.BATCH_SIZE_PER_IMAGE = 64
_C.MODEL.ROI_RELATION_HEAD.POSITIVE_FRACTION = 0.25
_C.MODEL.ROI_RELATION_HEAD.NUM_SAMPLE_PER_GT_REL = 4  # SGDet: proposal pairs per GT relation
_C.MODEL.ROI_RELATION_HEAD.REQUIRE_BOX_OVERLAP = False  # SGDet training: filter_non_overlap
_C.MODEL.ROI_RELATION_HEAD.EMBED_DIM = 200
_C.MODEL.ROI_RELATION_HEAD.CONTEXT_DROPOUT_RATE = 0.2
_C.MODEL.ROI_RELATION_HEAD.CONTEXT_HIDDEN_DIM = 512
_C.MODEL.ROI_RELATION_HEAD.CONTEXT_POOLING_DIM = 4096
_C.MODEL.ROI_RELATION_HEAD.CONTEXT_OBJ_LAYER = 1
_C.MODEL.ROI_RELATION_HEAD.CONTEXT_REL_LAYER = 1
_C.MODEL.ROI_RELATION_HEAD.POS_EMBED_DIM = 128
_C.MODEL.ROI_RELATION_HEAD.PREDICT_USE_BIAS = True
_C.MODEL.ROI_RELATION_HEAD.PREDICT_USE_VISION = True
_C.MODEL.ROI_RELATION_HEAD.POOLER_RESOLUTION = 7
_C.MODEL.ROI_RELATION_HEAD.POOLER_SAMPLING_RATIO = 2
# Union features are computed this many pairs at a time (bounded memory in SGDet test).
_C.MODEL.ROI_RELATION_HEAD.PAIR_CHUNK_SIZE = 1024

# TransformerPredictor's object / edge context encoders (SGB's keys and defaults).
_C.MODEL.ROI_RELATION_HEAD.TRANSFORMER = CN()
_C.MODEL.ROI_RELATION_HEAD.TRANSFORMER.DROPOUT_RATE = 0.1
_C.MODEL.ROI_RELATION_HEAD.TRANSFORMER.OBJ_LAYER = 4
_C.MODEL.ROI_RELATION_HEAD.TRANSFORMER.REL_LAYER = 2
_C.MODEL.ROI_RELATION_HEAD.TRANSFORMER.NUM_HEAD = 8
_C.MODEL.ROI_RELATION_HEAD.TRANSFORMER.INNER_DIM = 2048
_C.MODEL.ROI_RELATION_HEAD.TRANSFORMER.KEY_DIM = 64
_C.MODEL.ROI_RELATION_HEAD.TRANSFORMER.VAL_DIM = 64

# Self-supervised relation alignment (the paper this project implements). Training only.
_C.MODEL.ROI_RELATION_HEAD.ALIGN = CN()
_C.MODEL.ROI_RELATION_HEAD.ALIGN.ENABLED = False
_C.MODEL.ROI_RELATION_HEAD.ALIGN.MASK_PROB = 0.1
_C.MODEL.ROI_RELATION_HEAD.ALIGN.LOSS_WEIGHT = 10.0
_C.MODEL.ROI_RELATION_HEAD.ALIGN.LOSS = "kl"  # "kl" (SSA) | "ce" (supervised alignment, SA)
_C.MODEL.ROI_RELATION_HEAD.ALIGN.HEAD = "untied_mlp"  # "untied_mlp" | "tied"
_C.MODEL.ROI_RELATION_HEAD.ALIGN.MASK = "row"  # "row" (whole vectors) | "element"
_C.MODEL.ROI_RELATION_HEAD.ALIGN.KL_DIRECTION = "target_original"  # | "reverse"
# The paper gives LOSS_WEIGHT (lambda = 10) but not the KL's reduction. "batchmean": the KL of each
# pair (summed over the P predicate classes), averaged over pairs; "mean" (nn.KLDivLoss's default)
# also divides by P, i.e. an effective lambda of 10 / P (0.2 on VG150's 51 classes, 0.4 on SynthVG's
# 26). Chosen on the val split by the rule of docs/results.md (tools/alignment_study.py kl-reduction).
_C.MODEL.ROI_RELATION_HEAD.ALIGN.KL_REDUCTION = "batchmean"  # | "mean"
_C.MODEL.ROI_RELATION_HEAD.ALIGN.MLP_HIDDEN_DIM = 0  # untied MLP width; 0: the pair-representation width
# The paper's SGTR recipe: the mirror without dropout, the alignment target from a dropout-free pass of
# the original branch (matters for predictors with dropout in the mirrored layers: TransformerPredictor).
_C.MODEL.ROI_RELATION_HEAD.ALIGN.DROPOUT_FREE = False

# ---------------------------------------------------------------------------- #
# Input
# ---------------------------------------------------------------------------- #
_C.INPUT = CN()
_C.INPUT.MIN_SIZE_TRAIN = (600,)
_C.INPUT.MAX_SIZE_TRAIN = 1000
_C.INPUT.MIN_SIZE_TEST = 600
_C.INPUT.MAX_SIZE_TEST = 1000
# torchvision's ImageNet statistics, in RGB and [0, 1] (our VGG-16 weights are torchvision's).
_C.INPUT.PIXEL_MEAN = [0.485, 0.456, 0.406]
_C.INPUT.PIXEL_STD = [0.229, 0.224, 0.225]
_C.INPUT.TO_BGR255 = False
_C.INPUT.HORIZONTAL_FLIP_PROB_TRAIN = 0.5
# tools/sgg_infer.py refuses images with more pixels than this (width x height, checked
# before decoding) instead of exhausting memory; <= 0 disables the check.
_C.INPUT.MAX_INPUT_PIXELS = 40_000_000

# ---------------------------------------------------------------------------- #
# Datasets
# ---------------------------------------------------------------------------- #
_C.DATASETS = CN()
_C.DATASETS.DATA_DIR = "datasets"
_C.DATASETS.TRAIN = ("VG_stanford_filtered_with_attribute_train",)
_C.DATASETS.VAL = ("VG_stanford_filtered_with_attribute_val",)
_C.DATASETS.TEST = ("VG_stanford_filtered_with_attribute_test",)
_C.DATASETS.NUM_VAL_IM = 5000  # val = the first N train images after the empty-relation filter
_C.DATASETS.NUM_IM = -1  # cap on images per split (-1: all); for smoke tests
# Not in SGB: train on this fraction of the train split (after NUM_VAL_IM carves out val; val and
# test unchanged), a fixed seeded draw of images, nested across fractions and the same for every
# SEED; the frequency statistics come from the same subset. For the data-sparsity study.
_C.DATASETS.TRAIN_FRACTION = 1.0
_C.DATASETS.FILTER_EMPTY_RELS = True
_C.DATASETS.FILTER_DUPLICATE_RELS = True

# ---------------------------------------------------------------------------- #
# Data loader
# ---------------------------------------------------------------------------- #
_C.DATALOADER = CN()
_C.DATALOADER.NUM_WORKERS = 4
_C.DATALOADER.SIZE_DIVISIBILITY = 32
_C.DATALOADER.ASPECT_RATIO_GROUPING = True

# ---------------------------------------------------------------------------- #
# Solver
# ---------------------------------------------------------------------------- #
_C.SOLVER = CN()
_C.SOLVER.OPTIMIZER = "SGD"
_C.SOLVER.MAX_ITER = 90000
# The real learning rate. SGB silently multiplies BASE_LR by IMS_PER_BATCH; we do not.
_C.SOLVER.BASE_LR = 0.001
_C.SOLVER.BIAS_LR_FACTOR = 1.0
_C.SOLVER.MOMENTUM = 0.9
_C.SOLVER.WEIGHT_DECAY = 0.0001
_C.SOLVER.WEIGHT_DECAY_BIAS = 0.0001
_C.SOLVER.GRAD_NORM_CLIP = 5.0
_C.SOLVER.SCHEDULE = CN()
_C.SOLVER.SCHEDULE.TYPE = "WarmupMultiStepLR"  # | "WarmupCosineLR"
# WarmupCosineLR: the learning rate changes only every UPDATE_PERIOD iterations (paper: 1000).
_C.SOLVER.SCHEDULE.UPDATE_PERIOD = 1000
_C.SOLVER.SCHEDULE.MIN_LR = 0.0
_C.SOLVER.GAMMA = 0.1
_C.SOLVER.STEPS = (30000, 45000)
_C.SOLVER.WARMUP_FACTOR = 0.1
_C.SOLVER.WARMUP_ITERS = 500
_C.SOLVER.WARMUP_METHOD = "linear"
_C.SOLVER.CHECKPOINT_PERIOD = 2500
# The model_<iter>.pth of this run kept on disk: 0 all (SGB); N > 0 the newest N (older ones this
# process wrote are deleted; model_best / model_final always stay). Resuming needs only the newest.
_C.SOLVER.CHECKPOINTS_TO_KEEP = 0
_C.SOLVER.TO_VAL = True
_C.SOLVER.VAL_PERIOD = 2500
# Relation runs stand for model_best.pth, the checkpoint of best val mR@50 (the paper's rule):
# tested at the end of training and by tools/relation_test_net.py. False: the final model, for a
# val set too small to rank checkpoints (SynthVG's 200 images). model_best.pth is written either way.
_C.SOLVER.SELECT_BEST_VAL = True
_C.SOLVER.IMS_PER_BATCH = 8  # global batch, split across ranks
_C.SOLVER.AMP = True  # mixed precision: float16 + GradScaler on CUDA, bfloat16 on a CPU with native bf16 (engine/amp.py)
# On a non-finite loss: False stops training (saving nothing); True skips the batch.
_C.SOLVER.SKIP_NONFINITE_LOSS = False

# ---------------------------------------------------------------------------- #
# Test
# ---------------------------------------------------------------------------- #
_C.TEST = CN()
_C.TEST.IMS_PER_BATCH = 8
_C.TEST.RELATION = CN()
_C.TEST.RELATION.IOU_THRESHOLD = 0.5
# SGDet test: score only pairs of overlapping detections (SGB: default True, False in its X-101
# relation config, whose value we take).
_C.TEST.RELATION.REQUIRE_OVERLAP = False
# SGDet test: per-class NMS on the Motifs decoder's object labels (SGB: default 0.3, 0.5 in its
# relation configs).
_C.TEST.RELATION.LATER_NMS_PREDICTION_THRES = 0.3
# Drop test images with more GT boxes than this from evaluation (0: keep all, SGB's behaviour).
_C.TEST.RELATION.MAX_BOXES = 0
# Ranked pairs kept per image, each with its full predicate distribution. 100 keeps every
# metric at K <= 100 exact, no-graph-constraint recall included: a pair ranked below the top
# 100 by triplet score cannot own any of the top 100 (pair, predicate) scores.
_C.TEST.RELATION.TOPK_TRIPLETS = 100
_C.TEST.RELATION.NUM_WORKERS = 0  # evaluator processes (0: in-process)

# ---------------------------------------------------------------------------- #
# Misc
# ---------------------------------------------------------------------------- #
_C.OUTPUT_DIR = "output"
# Where glove.6B.<EMBED_DIM>d.txt (or SGB's .pt cache of it) is: the Motifs class embeddings start
# from GloVe as in SGB; without the file they start random (one log line). Nothing is downloaded.
_C.GLOVE_DIR = "datasets/glove"
_C.SEED = 0
_C.LOG_PERIOD = 20
# torchrun: minutes a rank waits in a collective (e.g. while rank 0 evaluates or saves) before
# the run stops with a timeout (NCCL's own default is 10).
_C.DIST_TIMEOUT_MINUTES = 30.0
# CUDA: let cuDNN pick the fastest convolution algorithm per input shape (detectron2's
# CUDNN_BENCHMARK; the first batch of each padded image size pays for the search), and TF32
# for float32 matrix products and convolutions. False: cuDNN's default algorithms, full float32.
_C.CUDNN_BENCHMARK = True
