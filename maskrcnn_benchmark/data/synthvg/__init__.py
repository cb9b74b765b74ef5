"""SynthVG: a generated scene-graph dataset written in exactly VG150's file format.

``generate_synthvg(out_dir, seed, num_train, num_test, image_size, workers)`` (CLI:
``tools/make_synthvg.py``, ``make data``) writes ``VG-SGG-with-attri.h5``,
``VG-SGG-dicts-with-attri.json`` (``predicate_count`` / ``object_count`` of its train split),
``image_data.json``, ``VG_100K/<image_id>.jpg`` and ``predicate_groups.json`` (HEAD/BODY/TAIL
by train share, the layout of ``data/resources/vg150_longtail_split.json``). Image i of a split
is drawn from its own random stream (seed, split, i): the output depends on the arguments only.

The world (sizes in pixels of a 256-pixel image; they scale with ``image_size``)
-----------------------------------------------------------------------------------------
Images are 256 px on the longer side, 62-85 % of that on the shorter (landscape 3 in 4), with
3-12 annotated objects over a cluttered background (sky/wall gradient, ground/floor, faint
blobs, small high-contrast specks that belong to no class). Objects drawn later occlude earlier
ones; an object more than 70 % covered by later boxes is removed.

30 classes (shape, colour, texture, size): man (navy torso), woman (red dress, long hair),
child (small, yellow), dog, horse (large, long legs, mane), bird (small, beak, wings), car (red,
cabin with windows), bus (long, yellow, window row), bike (two rings and a frame), wheel,
window, street (grey band, dashed line), grass (green band, blades), table, bench (slats), bed
(headboard, pillow, blanket), building (brick courses, door), tree (trunk and round canopy),
pole (bar and arm), sign (red octagon or blue arrow plate), lamp, cup, phone, book, pizza, bag,
ball, hat, shirt (striped), umbrella.

25 predicates. A scene is a ground (street and/or grass band; 15 % indoor scenes have a floor
and no ground object) plus groups of objects placed until the object budget is met:
- people stand or walk on the street/grass (standing on / walking on: legs together / apart),
  sit or lie on grass (sitting on / laying on: legs forward / figure horizontal); on a bench
  they sit, lie or stand; on a bed they lie or sit; on a horse or a bike they sit (riding);
- a person may wear a hat (on the head) and a shirt (striped, over the torso) (wearing), and
  hold one item at the hand of a stretched arm (holding): cup, phone, book, bag, pizza, ball,
  hat, or an umbrella above the head; a bag with a strap across the body hangs at the back hip
  (carrying); pizza at the mouth (eating); a phone/book raised to a profile face (holding +
  looking at); a ball above raised arms with motion arcs (playing);
- a person whose head is drawn in profile (one eye, nose, hair at the back) looks at the
  nearest dog, horse, bird, ball, sign, person, vehicle, lamp or umbrella ahead of the face
  (looking at); frontal heads (two eyes) look at nothing;
- dogs stand, walk or lie on the ground, bench or bed (standing on / walking on / laying on),
  play with a ball in front of them with motion arcs (playing) or eat pizza with the head down
  (eating); horses stand or walk;
- cars and buses are on the street: parked (parked on: empty, grey headlight) or moving (on:
  a driver in the front window, lit headlight, motion streaks); each has two wheels (car has
  wheel / wheel of car);
- bikes are parked upright (parked on), lean tilted against a pole, tree or building (against,
  plus parked on) or are ridden (on);
- buildings have 1-4 windows (has / of); a tree may have a bird inside its canopy (in), perched
  on top (sitting on) or flying above with spread wings (above); a pole carries a sign flush
  against its bar (attached to) or a sign/lamp on a chain under its arm (hanging from);
- tables carry cups, books, phones, pizza, bags (on); furniture stands on the ground (on);
  a loose ball, bag, book or cup lies on the ground (on) or half hidden in grass blades (in);
- every other pair of nearby free objects gets a geometric relation: behind / in front of
  (the later-drawn one occludes >= 12 % of the other), above / under (vertically separated,
  horizontally overlapping), else near when their centres are close.

Annotation bias (``vocab.P_ANNOTATE``, ``P_GENERIC``, ``P_DUPLICATE``), as VG's annotators: a true
relation is written only with a probability depending on its kind (support 0.65, part 0.6,
hold 0.85, wear 0.8, gaze 0.7, geometric 0.3, near 0.16); a specific predicate is written as its
generic parent with probability 0.3-0.35 (sitting/standing/walking/laying/parked on, riding,
attached to, hanging from -> on; holding, wearing -> has; carrying, eating, playing -> with;
looking at, against, behind, in front of, above, under -> near) and sometimes (8 %) twice, as
both. The result is long-tailed (on, has, wearing, of, near hold most relations) and the
specific predicate of a class pair is decided by a visible cue (pose, arm, strap, profile head,
streaks, tilt, chain, wings, arcs, occlusion), so a frequency prior alone cannot recover it.
"""
from .vocab import ATTRIBUTES, CLASSES, PREDICATES
from .writer import GROUPS_FILE, META_FILE, generate as generate_synthvg

__all__ = ["generate_synthvg", "CLASSES", "PREDICATES", "ATTRIBUTES", "GROUPS_FILE",
           "META_FILE"]
