"""SynthVG's vocabularies and annotation model (the rules are described in ``__init__``)."""
from __future__ import annotations

# Object classes, alphabetical like VG150's (ids 1..30 in this order, 0 = __background__).
CLASSES = (
    "bag", "ball", "bed", "bench", "bike", "bird", "book", "building", "bus", "car",
    "child", "cup", "dog", "grass", "hat", "horse", "lamp", "man", "phone", "pizza",
    "pole", "shirt", "sign", "street", "table", "tree", "umbrella", "wheel", "window", "woman",
)
PERSONS = ("man", "woman", "child")

# Predicates, alphabetical like VG150's (ids 1..25, 0 = __background__).
PREDICATES = (
    "above", "against", "attached to", "behind", "carrying", "eating", "hanging from", "has",
    "holding", "in", "in front of", "laying on", "looking at", "near", "of", "on", "parked on",
    "playing", "riding", "sitting on", "standing on", "under", "walking on", "wearing", "with",
)

# Annotators often write the generic predicate where a specific one holds (VG's bias).
GENERIC = {
    "sitting on": "on", "standing on": "on", "walking on": "on", "laying on": "on",
    "parked on": "on", "riding": "on", "attached to": "on", "hanging from": "on",
    "holding": "has", "wearing": "has", "carrying": "with", "eating": "with",
    "playing": "with", "looking at": "near", "against": "near", "behind": "near",
    "in front of": "near", "above": "near", "under": "near",
}
# Probability that the generic replaces the specific predicate (always < 0.5, so that the
# specific predicate stays the most likely label of its visual situation).
P_GENERIC = {
    "sitting on": 0.3, "standing on": 0.35, "walking on": 0.35, "laying on": 0.3,
    "parked on": 0.35, "riding": 0.3, "attached to": 0.35, "hanging from": 0.3,
    "holding": 0.35, "wearing": 0.3, "carrying": 0.3, "eating": 0.3, "playing": 0.3,
    "looking at": 0.35, "against": 0.3, "behind": 0.3, "in front of": 0.35, "above": 0.35,
    "under": 0.35,
}
# Probability that a true relation is annotated at all, by kind of relation.
P_ANNOTATE = {"support": 0.65, "part": 0.6, "hold": 0.85, "wear": 0.8, "gaze": 0.7,
              "geometric": 0.3, "near": 0.16}
P_DUPLICATE = 0.08  # a specific annotation also written with its generic (duplicate pair)

ATTRIBUTES = (
    "black", "blue", "brown", "green", "grey", "orange", "pink", "purple", "red", "tan",
    "white", "yellow", "standing", "walking", "sitting", "lying", "parked", "moving",
    "flying", "perched", "leaning", "striped", "dotted", "wooden", "metal", "tall", "small",
    "large",
)

