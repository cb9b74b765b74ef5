"""SynthVG's generative world: where objects go and which relations hold (rules in ``__init__``).

Every placement returns object indices and records the true relation it creates together with
its kind (support, part, hold, wear, gaze, geometric, near); :func:`annotate` then applies the
annotation bias. Sizes are in pixels of a 256-pixel image and scale with the image.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .vocab import PERSONS

MAX_OBJECTS, MIN_OBJECTS = 12, 3

# Person figures facing right, in units of the figure height h, relative to a reference point
# (standing / walking: between the feet; sitting: the seat; lying: bottom centre).
# box: x1, y1, x2, y2; torso: x1, y1, x2, y2; other entries: points.
POSES = {
    "standing": dict(box=(-.21, -1, .21, 0), head=(0, -.89), torso=(-.11, -.78, .11, -.42),
                     rest=(.17, -.45), reach=(.24, -.5), raise_=(.2, -.8), up=(.2, -.97)),
    "walking": dict(box=(-.25, -1, .25, 0), head=(0, -.89), torso=(-.11, -.78, .11, -.42),
                    rest=(.2, -.47), reach=(.25, -.5), raise_=(.2, -.8), up=(.2, -.97)),
    "sitting": dict(box=(-.14, -.58, .36, .3), head=(0, -.47), torso=(-.11, -.36, .11, 0),
                    rest=(.22, -.08), reach=(.33, -.18), raise_=(.2, -.45), up=(.2, -.62)),
    "sitting_flat": dict(box=(-.14, -.58, .52, .04), head=(0, -.47), torso=(-.11, -.36, .11, 0),
                         rest=(.22, -.08), reach=(.33, -.18), raise_=(.2, -.45),
                         up=(.2, -.62)),
    "lying": dict(box=(-.5, -.24, .5, 0), head=(.4, -.12), torso=(0, -.2, .3, -.02),
                  rest=(.2, -.02), reach=(.2, -.28), raise_=(.3, -.3), up=(.3, -.3)),
}
POSE_PREDICATE = {"standing": "standing on", "walking": "walking on", "sitting": "sitting on",
                  "sitting_flat": "sitting on", "lying": "laying on"}
GAZE_TARGETS = {"dog", "horse", "bird", "ball", "sign", "man", "woman", "child", "car", "bike",
                "bus", "lamp", "umbrella"}


@dataclass
class Obj:
    cls: str
    box: np.ndarray  # float[4] x1, y1, x2, y2 in pixels
    layer: float  # drawing order, smaller first
    role: str = "free"  # ground | scenery | free | part | worn | held
    state: dict = field(default_factory=dict)


def head_radius(o: Obj) -> float:
    return o.state["h"] * (0.125 if o.cls == "child" else 0.1)


def person_point(o: Obj, name: str) -> tuple[float, float]:
    """A named point of a person figure (``head``, ``rest``, ``reach``, ``raise_``, ``up``)."""
    x, y = POSES[o.state["layout"]][name]
    (rx, ry), h, f = o.state["ref"], o.state["h"], o.state["facing"]
    return rx + f * x * h, ry + y * h


def person_torso(o: Obj) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = POSES[o.state["layout"]]["torso"]
    (rx, ry), h, f = o.state["ref"], o.state["h"], o.state["facing"]
    xs = sorted((rx + f * x1 * h, rx + f * x2 * h))
    return xs[0], ry + y1 * h, xs[1], ry + y2 * h


def _area(b) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def _inter(a, b) -> float:
    return _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))


class Scene:
    """Objects, their draw order and the true relations of one image."""

    def __init__(self, rng: np.random.Generator, width: int, height: int):
        self.rng, self.W, self.H = rng, width, height
        self.k = max(width, height) / 256.0
        self.objs: list[Obj] = []
        self.rels: list[tuple[int, int, str, str]] = []  # (subject, object, predicate, kind)
        self.bands: list[int] = []
        self.indoor = False
        self.horizon = 0.0

    def room(self) -> int:
        return MAX_OBJECTS - len(self.objs)

    def add(self, cls: str, box, layer: float, role: str = "free", **state) -> int:
        self.objs.append(Obj(cls, np.asarray(box, np.float64), layer, role, state))
        return len(self.objs) - 1

    def rel(self, s: int, o: int, pred: str, kind: str) -> None:
        self.rels.append((s, o, pred, kind))

    def fits(self, box, roles=("free",), max_overlap: float = 0.35, ignore=()) -> bool:
        """Room for one more object, inside the image (85 % of its area) and overlapping no
        object of ``roles`` (except ``ignore``) by more than ``max_overlap`` of the smaller."""
        a = _area(box)
        if self.room() <= 0 or a <= 0 or _inter(box, (0, 0, self.W, self.H)) < 0.85 * a:
            return False
        if box[2] - box[0] < 8 or box[3] - box[1] < 8:
            return False
        return all(_inter(box, o.box) <= max_overlap * min(a, _area(o.box))
                   for j, o in enumerate(self.objs) if o.role in roles and j not in ignore)

    def foot(self, bands: Optional[tuple[str, ...]] = None, back: bool = False):
        """A ground point: (y, supporting band index or None); None when no band fits."""
        r = self.rng
        if self.indoor or not self.bands:
            if bands is not None:
                return None
            lo = self.horizon + (2 if back else 0.35 * (self.H - self.horizon))
            return r.uniform(lo, self.H - 2 if not back else lo + 8 * self.k), None
        cands = [b for b in self.bands if bands is None or self.objs[b].cls in bands]
        if not cands:
            return None
        b = cands[r.integers(len(cands))]
        y1, y2 = self.objs[b].box[1], self.objs[b].box[3]
        if back:
            return r.uniform(y1 + 1, y1 + 0.25 * (y2 - y1)), b
        return r.uniform(y1 + 0.3 * (y2 - y1), y2 - 1), b


# ----------------------------------------------------------------------------- ground
def place_ground(sc: Scene) -> None:
    r, W, H = sc.rng, sc.W, sc.H
    if r.random() < 0.2:
        sc.indoor, sc.horizon = True, H * r.uniform(0.45, 0.6)
        return
    top = H * r.uniform(0.52, 0.68)
    sc.horizon = top
    kind = r.choice(["street", "grass", "both"], p=[0.4, 0.35, 0.25])
    if kind == "both" and H - top < 56 * sc.k:
        kind = "street"
    x1, x2 = (0.0, float(W)) if r.random() < 0.75 else sorted(r.uniform(0, W, 2) * [0.5, 1])
    if x2 - x1 < 0.5 * W:
        x1, x2 = 0.0, float(W)
    if kind == "both":
        split = r.uniform(top + 0.35 * (H - top), top + 0.6 * (H - top))
        sc.bands.append(sc.add("grass", (x1, top, x2, split), 0.0, "ground"))
        sc.bands.append(sc.add("street", (0.0, split, float(W), float(H)), 0.0, "ground"))
    else:
        sc.bands.append(sc.add(kind, (x1, top, x2, float(H)), 0.0, "ground"))


# ----------------------------------------------------------------------------- people
def _pose_box(ref, h, layout, facing):
    x1, y1, x2, y2 = POSES[layout]["box"]
    xs = sorted((ref[0] + facing * x1 * h, ref[0] + facing * x2 * h))
    return (xs[0], ref[1] + y1 * h, xs[1], ref[1] + y2 * h)


def add_person(sc: Scene, ref=None, pose: str = "", support: Optional[int] = None,
               layer: Optional[float] = None, pred: str = "", facing: int = 0
               ) -> Optional[int]:
    """A person on the ground (``ref`` None) or at ``ref`` with ``pose`` on ``support``."""
    r = sc.rng
    cls = str(r.choice(PERSONS, p=[0.45, 0.35, 0.2]))
    h = (r.uniform(44, 62) if cls == "child" else r.uniform(64, 96)) * sc.k
    facing = facing or int(r.choice([-1, 1]))
    if ref is None:
        y, support = sc.foot()
        grass = support is not None and sc.objs[support].cls == "grass"
        pose = str(r.choice(["standing", "walking", "sitting_flat", "lying"],
                            p=[0.35, 0.3, 0.2, 0.15] if grass else [0.5, 0.5, 0, 0]))
        ref = (r.uniform(0.08, 0.92) * sc.W, y)
    layout, pose = pose, pose.replace("_flat", "")
    box = _pose_box(ref, h, layout, facing)
    if not sc.fits(box, ignore=() if support is None else (support,)):
        return None
    i = sc.add(cls, box, layer if layer is not None else 2 + ref[1] / sc.H, ref=ref, h=h,
               layout=layout, pose=pose, facing=facing, arm="rest", profile=False,
               owner=support if layer is not None else None)
    if support is not None:
        sc.rel(i, support, pred or POSE_PREDICATE[layout], "support")
    dress(sc, i)
    return i


def _item_box(sc: Scene, cls: str, cx: float, cy: float) -> tuple:
    r, k = sc.rng, sc.k
    w, h = {"cup": (15, 18), "phone": (11, 19), "book": (20, 15), "pizza": (21, 17),
            "bag": (23, 21), "ball": (18, 18), "hat": (22, 13), "sign": (25, 25),
            "lamp": (15, 19)}[cls]
    s = r.uniform(0.9, 1.2) * k
    w, h = w * s, (w * s if cls == "ball" else h * s)
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def _attach(sc: Scene, owner: int, cls: str, box, role: str, rank: int, **state) -> int:
    """An object drawn right after ``owner`` (and removed with it)."""
    return sc.add(cls, box, sc.objs[owner].layer + 0.001 * rank, role, owner=owner, **state)


def dress(sc: Scene, i: int) -> None:
    """Worn clothes and a hand-held item of person ``i`` (each only while there is room)."""
    r, p = sc.rng, sc.objs[i]
    st, f = p.state, p.state["facing"]
    hx, hy = person_point(p, "head")
    rad = head_radius(p)
    if sc.room() > 0 and st["pose"] != "lying" and r.random() < 0.3:
        w = max(2.5 * rad, 17 * sc.k)
        box = (hx - w / 2, hy - 0.3 * rad - 0.5 * w, hx + w / 2, hy - 0.3 * rad)
        sc.rel(i, _attach(sc, i, "hat", box, "worn", 2), "wearing", "wear")
        st["hat"] = True
    if sc.room() > 0 and r.random() < 0.3:
        x1, y1, x2, y2 = person_torso(p)
        m = 0.03 * st["h"]
        box = (x1 - m, y1 - m / 2, x2 + m, y2 + m / 2)
        sc.rel(i, _attach(sc, i, "shirt", box, "worn", 1), "wearing", "wear")
    if sc.room() == 0 or st["pose"] == "lying" or r.random() >= 0.5:
        return
    kinds = ["cup", "phone", "book", "umbrella", "bag", "pizza", "ball", "hat"]
    probs = np.array([.14, .16, .12, .1, .2, .12, .1, .06])
    if st["pose"] not in ("standing", "walking"):
        probs[3] = 0
    if st.get("hat"):
        probs[7] = 0
    cls = str(r.choice(kinds, p=probs / probs.sum()))
    if cls == "umbrella":
        w = 0.75 * st["h"]
        ux, uy = person_point(p, "up")
        box = (hx + f * 0.08 * st["h"] - w / 2, hy - rad - 0.3 * st["h"],
               hx + f * 0.08 * st["h"] + w / 2, uy + 0.28 * st["h"])
        st["arm"] = "up"
        sc.rel(i, _attach(sc, i, cls, box, "held", 3, facing=f), "holding", "hold")
        return
    mode = "hold"
    if cls == "bag" and r.random() < 0.5:
        mode = "carry"
    elif cls == "pizza" and r.random() < 0.5:
        mode = "eat"
    elif cls in ("phone", "book") and r.random() < 0.55:
        mode = "look"
    elif cls == "ball" and st["pose"] in ("standing", "walking") and r.random() < 0.5:
        mode = "play"
    if mode == "carry":
        x1, y1, x2, y2 = person_torso(p)
        bx = (x1 if f > 0 else x2) - f * 0.05 * st["h"]
        box = _item_box(sc, cls, bx, y2)
        st["strap"] = True
        pred = "carrying"
    elif mode == "eat":
        box = _item_box(sc, cls, hx + f * (rad + 9 * sc.k), hy + 0.3 * rad)
        st["arm"], st["profile"], pred = "raise_", True, "eating"
    elif mode == "look":
        box = _item_box(sc, cls, hx + f * (rad + 12 * sc.k), hy + 0.4 * rad)
        st["arm"], st["profile"], pred = "raise_", True, "holding"
    elif mode == "play":
        box = _item_box(sc, cls, hx + f * 0.15 * st["h"], hy - rad - 14 * sc.k)
        st["arm"], pred = "up", "playing"
    else:
        ax, ay = person_point(p, "reach")
        box = _item_box(sc, cls, ax + f * 4 * sc.k, ay + (6 if cls == "bag" else 2) * sc.k)
        st["arm"], pred = "reach", "holding"
    j = _attach(sc, i, cls, box, "held", 3, arcs=mode == "play", facing=f)
    sc.rel(i, j, pred, "hold")
    if mode == "look":
        sc.rel(i, j, "looking at", "gaze")


# ----------------------------------------------------------------------------- animals
def add_dog(sc: Scene, ref=None, support: Optional[int] = None, layer=None, pose=None
            ) -> Optional[int]:
    r, k = sc.rng, sc.k
    if ref is None:
        y, support = sc.foot()
        ref = (r.uniform(0.08, 0.92) * sc.W, y)
    pose = pose or str(r.choice(["standing", "walking", "lying"], p=[0.45, 0.25, 0.3]))
    w = r.uniform(36, 56) * k
    h = w * (0.45 if pose == "lying" else 0.72)
    box = (ref[0] - w / 2, ref[1] - h, ref[0] + w / 2, ref[1])
    if not sc.fits(box, ignore=() if support is None else (support,)):
        return None
    facing = int(r.choice([-1, 1]))
    i = sc.add("dog", box, layer if layer is not None else 2 + ref[1] / sc.H, pose=pose,
               facing=facing, head_down=False, owner=support if layer is not None else None)
    if support is not None:
        sc.rel(i, support, POSE_PREDICATE[pose], "support")
    if sc.room() > 0 and pose != "lying" and r.random() < 0.3:
        front = box[2] if facing > 0 else box[0]
        if r.random() < 0.6:
            j = _attach(sc, i, "ball", _item_box(sc, "ball", front + facing * 9 * k,
                                                 box[3] - 9 * k), "held", 1, arcs=True)
            sc.rel(i, j, "playing", "hold")
        else:
            sc.objs[i].state["head_down"] = True
            j = _attach(sc, i, "pizza", _item_box(sc, "pizza", front + facing * 8 * k,
                                                  box[3] - 8 * k), "held", 1)
            sc.rel(i, j, "eating", "hold")
    return i


def add_horse(sc: Scene) -> None:
    r, k = sc.rng, sc.k
    y, band = sc.foot()
    w = r.uniform(80, 112) * k
    h = 0.85 * w
    x = r.uniform(0.1, 0.9) * sc.W
    box = (x - w / 2, y - h, x + w / 2, y)
    if sc.room() < 1 or not sc.fits(box):
        return
    pose = str(r.choice(["standing", "walking"]))
    i = sc.add("horse", box, 2 + y / sc.H, pose=pose, facing=int(r.choice([-1, 1])))
    if band is not None:
        sc.rel(i, band, POSE_PREDICATE[pose], "support")
    if sc.room() > 0 and r.random() < 0.65:
        f = sc.objs[i].state["facing"]
        add_person(sc, ref=(x - 0.08 * w * f, y - 0.62 * h), pose="sitting", support=i,
                   layer=sc.objs[i].layer + 0.0005, pred="riding", facing=f)


# ----------------------------------------------------------------------------- vehicles
def add_vehicle(sc: Scene) -> None:
    r, k = sc.rng, sc.k
    spot = sc.foot(("street",))
    if spot is None or sc.room() < 3:
        return
    y, band = spot
    cls = "car" if r.random() < 0.7 else "bus"
    w = min((r.uniform(80, 112) if cls == "car" else r.uniform(104, 124)) * k, 0.62 * sc.W)
    h = w * (0.42 if cls == "car" else 0.46)
    x = r.uniform(0.05 * sc.W + w / 2, 0.95 * sc.W - w / 2)
    box = (x - w / 2, y - h, x + w / 2, y)
    if not sc.fits(box):
        return
    moving = r.random() < 0.45
    i = sc.add(cls, box, 2 + y / sc.H, facing=int(r.choice([-1, 1])), moving=moving)
    sc.rel(i, band, "on" if moving else "parked on", "support")
    rad = 0.2 * h
    for cx in (box[0] + 0.2 * w, box[2] - 0.2 * w):
        j = _attach(sc, i, "wheel", (cx - rad, y - 2 * rad, cx + rad, y), "part", 1)
        if r.random() < 0.5:
            sc.rel(i, j, "has", "part")
        else:
            sc.rel(j, i, "of", "part")


def add_bike(sc: Scene) -> None:
    r, k = sc.rng, sc.k
    y, band = sc.foot()
    w = r.uniform(46, 64) * k
    h = 0.62 * w
    props = [j for j, o in enumerate(sc.objs) if o.cls in ("pole", "tree", "building")]
    mode = str(r.choice(["parked", "ridden", "leaning"],
                        p=[0.2, 0.25, 0.55] if props else [0.5, 0.5, 0]))
    facing = int(r.choice([-1, 1]))
    if mode == "leaning":
        prop = props[r.integers(len(props))]
        pb = sc.objs[prop].box
        y = min(pb[3] + r.uniform(1, 6) * k, sc.H - 1)
        side = 1 if r.random() < 0.5 else -1  # bike stands left (-1) or right (+1) of the prop
        contact = sc.objs[prop].state.get("bar_x", (pb[0] + pb[2]) / 2)
        if sc.objs[prop].cls == "building":
            contact = pb[2] if side > 0 else pb[0]
        x = contact + side * (w / 2 - 3 * k)
        facing = -side
    else:
        x = r.uniform(0.08, 0.92) * sc.W
    box = (x - w / 2, y - h, x + w / 2, y)
    if not sc.fits(box, ignore=(prop,) if mode == "leaning" else ()):
        return
    i = sc.add("bike", box, 2 + y / sc.H, facing=facing, lean=facing if mode == "leaning" else 0)
    if band is not None:
        sc.rel(i, band, "on" if mode == "ridden" else "parked on", "support")
    if mode == "leaning":
        sc.rel(i, prop, "against", "support")
    elif mode == "ridden" and sc.room() > 0:
        add_person(sc, ref=(x - 0.1 * w * facing, y - 0.68 * h), pose="sitting", support=i,
                   layer=sc.objs[i].layer + 0.0005, pred="riding", facing=facing)
