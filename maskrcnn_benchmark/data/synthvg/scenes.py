"""SynthVG scenes: scenery, furniture, the geometric relations and the annotation bias."""
from __future__ import annotations

import numpy as np

from .vocab import GENERIC, P_ANNOTATE, P_DUPLICATE, P_GENERIC, PERSONS
from .world import (GAZE_TARGETS, MAX_OBJECTS, MIN_OBJECTS, Scene, _area, _attach, _inter,
                    _item_box, add_bike, add_dog, add_horse, add_person, add_vehicle,
                    head_radius, person_point, place_ground)


def add_building(sc: Scene) -> None:
    r, k = sc.rng, sc.k
    y, _ = sc.foot(back=True)
    w, h = r.uniform(60, 104) * k, min(r.uniform(80, 124) * k, y - 2)
    x = r.uniform(0, sc.W - w)
    box = (x, y - h, x + w, y)
    if h < 40 * k or not sc.fits(box, roles=("scenery",), max_overlap=0.2):
        return
    i = sc.add("building", box, 1 + y / sc.H, "scenery", tone=int(r.integers(3)))
    s = r.uniform(15, 20) * k
    slots = [(c, row) for row in range(2) for c in range(2)]
    for n, (c, row) in enumerate(slots[:int(r.integers(1, 5))]):
        if sc.room() == 0:
            break
        cx = x + w * (0.3 + 0.4 * c) + r.uniform(-2, 2) * k
        cy = y - h + h * (0.25 + 0.3 * row)
        j = _attach(sc, i, "window", (cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2), "part",
                    n + 1)
        if r.random() < 0.5:
            sc.rel(i, j, "has", "part")
        else:
            sc.rel(j, i, "of", "part")


def add_tree(sc: Scene) -> None:
    r, k = sc.rng, sc.k
    y, _ = sc.foot(back=True)
    w, h = r.uniform(52, 84) * k, min(r.uniform(82, 120) * k, y - 2)
    x = r.uniform(0, sc.W - w)
    box = (x, y - h, x + w, y)
    if h < 50 * k or not sc.fits(box, roles=("scenery",), max_overlap=0.3):
        return
    i = sc.add("tree", box, 1 + y / sc.H, "scenery", bar_x=x + w / 2)
    if sc.room() == 0 or r.random() >= 0.6:
        return
    bw, bh = r.uniform(17, 22) * k, r.uniform(13, 16) * k
    mode = str(r.choice(["in", "sitting on", "above"], p=[0.4, 0.35, 0.25]))
    cx = x + w * r.uniform(0.3, 0.7)
    top = y - h
    if mode == "in":
        cy = top + h * r.uniform(0.2, 0.4)
    elif mode == "sitting on":
        cy = top - bh / 2 + 2 * k
    else:
        cy = top - bh / 2 - r.uniform(8, 24) * k
    if cy - bh / 2 < 0:
        return
    j = _attach(sc, i, "bird", (cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2), "free", 1,
                flying=mode == "above", facing=int(r.choice([-1, 1])))
    sc.rel(j, i, mode, "geometric" if mode == "above" else "support")


def add_pole(sc: Scene) -> None:
    r, k = sc.rng, sc.k
    y, _ = sc.foot(back=True)
    h = min(r.uniform(90, 124) * k, y - 2)
    arm, f = 0.28 * h, int(r.choice([-1, 1]))
    bar = r.uniform(0.1, 0.9) * sc.W
    box = (min(bar, bar + f * arm) - 4 * k, y - h, max(bar, bar + f * arm) + 4 * k, y)
    if h < 60 * k or not sc.fits(box, roles=("scenery",), max_overlap=0.2):
        return
    i = sc.add("pole", box, 1 + y / sc.H, "scenery", bar_x=bar, facing=f)
    arm_y, end = y - h + 4 * k, bar + f * (arm - 6 * k)
    hanging = False
    if sc.room() > 0 and r.random() < 0.4:
        box_l = _item_box(sc, "lamp", end, 0)
        lh = box_l[3] - box_l[1]
        box_l = (box_l[0], arm_y + 7 * k, box_l[2], arm_y + 7 * k + lh)
        sc.rel(_attach(sc, i, "lamp", box_l, "free", 1, chain=True), i, "hanging from", "support")
        hanging = True
    if sc.room() > 0 and r.random() < 0.6:
        b = _item_box(sc, "sign", 0, 0)
        sw, sh = b[2] - b[0], b[3] - b[1]
        shape = int(r.integers(2))
        if not hanging and r.random() < 0.35:
            top = arm_y + 7 * k
            box_s = (end - sw / 2, top, end + sw / 2, top + sh)
            j = _attach(sc, i, "sign", box_s, "free", 2, chain=True, shape=shape)
            sc.rel(j, i, "hanging from", "support")
        else:
            cy = y - h * r.uniform(0.45, 0.65)
            x0 = bar + 3 * k if r.random() < 0.5 else bar - 3 * k - sw
            j = _attach(sc, i, "sign", (x0, cy - sh / 2, x0 + sw, cy + sh / 2), "free", 2,
                        chain=False, shape=shape)
            sc.rel(j, i, "attached to", "support")


def _on_top(sc: Scene, host: int, kinds, n: int, seat: float) -> None:
    """Up to ``n`` items of ``kinds`` standing on ``host`` at height ``seat`` (fraction of its
    box from the top)."""
    r, hb = sc.rng, sc.objs[host].box
    for rank in range(n):
        if sc.room() == 0:
            return
        cls = str(r.choice(kinds))
        b = _item_box(sc, cls, 0, 0)
        w, h = b[2] - b[0], b[3] - b[1]
        cx = r.uniform(hb[0] + w / 2 + 2, max(hb[0] + w / 2 + 3, hb[2] - w / 2 - 2))
        base = hb[1] + seat * (hb[3] - hb[1]) + 1
        j = _attach(sc, host, cls, (cx - w / 2, base - h, cx + w / 2, base), "free", 10 + rank)
        sc.rel(j, host, "on", "support")


def add_furniture(sc: Scene, cls: str) -> None:
    r, k = sc.rng, sc.k
    y, band = sc.foot()
    w = {"table": r.uniform(60, 96), "bench": r.uniform(66, 100), "bed": r.uniform(84, 120)}[cls]
    w *= k
    h = w * {"table": 0.45, "bench": 0.5, "bed": 0.45}[cls]
    x = r.uniform(0.06, 0.94) * sc.W
    box = (x - w / 2, y - h, x + w / 2, y)
    if not sc.fits(box):
        return
    i = sc.add(cls, box, 2 + y / sc.H, facing=int(r.choice([-1, 1])), tone=int(r.integers(3)))
    if band is not None:
        sc.rel(i, band, "on", "support")
    if cls == "table":
        _on_top(sc, i, ["cup", "book", "phone", "pizza", "bag"], int(r.integers(1, 4)), 0.0)
        return
    seat_v = 0.52 if cls == "bench" else 0.45
    seat = (r.uniform(box[0] + 0.3 * w, box[2] - 0.3 * w), box[1] + seat_v * h)
    lay = 2 + y / sc.H + 0.0005
    u = r.random()
    if u < (0.7 if cls == "bench" else 0.8):
        poses = ["sitting", "lying", "standing"]
        pose = str(r.choice(poses, p=[0.6, 0.2, 0.2] if cls == "bench" else [0.35, 0.65, 0]))
        if pose == "lying":
            seat = ((box[0] + box[2]) / 2, seat[1])
        add_person(sc, ref=seat, pose=pose, support=i, layer=lay)
    elif u < 0.88:
        add_dog(sc, ref=seat, support=i, layer=lay, pose="lying")
    else:
        _on_top(sc, i, ["bag", "book", "phone"], 1, seat_v)


def add_loose(sc: Scene) -> None:
    r = sc.rng
    spot = sc.foot()
    if spot[1] is None:
        return
    y, band = spot
    cls = str(r.choice(["ball", "bag", "book", "cup"], p=[0.4, 0.3, 0.15, 0.15]))
    b = _item_box(sc, cls, r.uniform(0.05, 0.95) * sc.W, 0)
    box = (b[0], y - (b[3] - b[1]), b[2], y)
    if not sc.fits(box):
        return
    in_grass = sc.objs[band].cls == "grass" and r.random() < 0.45
    i = sc.add(cls, box, 2 + y / sc.H, in_grass=in_grass)
    sc.rel(i, band, "in" if in_grass else "on", "support")


def add_gazes(sc: Scene) -> None:
    """Some persons not yet looking at anything turn (profile) to the nearest target ahead."""
    r = sc.rng
    for i, p in enumerate(list(sc.objs)):
        st = p.state
        if p.cls not in PERSONS or st["profile"] or st["pose"] == "lying" or r.random() > 0.4:
            continue
        hx, hy = person_point(p, "head")
        best, best_d = None, 1.6 * st["h"]
        for j, o in enumerate(sc.objs):
            cx, cy = (o.box[0] + o.box[2]) / 2, (o.box[1] + o.box[3]) / 2
            dx = (cx - hx) * st["facing"]
            if (j == i or o.cls not in GAZE_TARGETS or o.role not in ("free", "held")
                    or dx < head_radius(p) or not p.box[1] - 0.3 * st["h"] < cy
                    or cy > p.box[3] + 0.2 * st["h"] or any(
                        s == i and t == j for s, t, _, _ in sc.rels)):
                continue
            if dx < best_d:
                best, best_d = j, dx
        if best is not None:
            st["profile"] = True
            sc.rel(i, best, "looking at", "gaze")


def add_geometry(sc: Scene) -> None:
    """behind / in front of (occlusion), above / under, near for unrelated free objects."""
    r = sc.rng
    related = {frozenset((s, o)) for s, o, _, _ in sc.rels}
    free = [i for i, o in enumerate(sc.objs) if o.role in ("free", "scenery")]
    free.sort(key=lambda i: sc.objs[i].layer)
    for n, a in enumerate(free):
        for b in free[n + 1:]:  # a is drawn before b
            if frozenset((a, b)) in related:
                continue
            A, B = sc.objs[a].box, sc.objs[b].box
            if _inter(A, B) >= 0.12 * _area(A):
                if r.random() < 0.65:
                    sc.rel(a, b, "behind", "geometric")
                else:
                    sc.rel(b, a, "in front of", "geometric")
                continue
            hov = min(A[2], B[2]) - max(A[0], B[0])
            narrow = min(A[2] - A[0], B[2] - B[0])
            upper, lower = (a, b) if A[3] <= B[1] + 1 else (b, a) if B[3] <= A[1] + 1 else (0, 0)
            if upper != lower and hov >= 0.3 * narrow and (
                    sc.objs[lower].box[1] - sc.objs[upper].box[3] < 0.35 * sc.H):
                if r.random() < 0.6:
                    sc.rel(upper, lower, "above", "geometric")
                else:
                    sc.rel(lower, upper, "under", "geometric")
                continue
            d = np.hypot((A[0] + A[2] - B[0] - B[2]) / 2, (A[1] + A[3] - B[1] - B[3]) / 2)
            size = (np.hypot(A[2] - A[0], A[3] - A[1]) + np.hypot(B[2] - B[0], B[3] - B[1])) / 2
            if d < 0.75 * size:
                s, o = (a, b) if r.random() < 0.5 else (b, a)
                sc.rel(s, o, "near", "near")


def drop_hidden(sc: Scene, max_covered: float = 0.7, cell: int = 4) -> None:
    """Remove objects (with their relations) that are less than 60 % inside the image or whose
    box is covered more than ``max_covered`` by the boxes of objects drawn after them, and what
    they carry: an annotation must be visible, nothing floats."""
    gw, gh = -(-sc.W // cell), -(-sc.H // cell)
    covered = np.zeros((gh, gw), bool)
    keep = [_inter(o.box, (0, 0, sc.W, sc.H)) >= 0.6 * _area(o.box) for o in sc.objs]
    for i in sorted(range(len(sc.objs)), key=lambda i: -sc.objs[i].layer):
        x1, y1, x2, y2 = (np.clip(sc.objs[i].box, 0, [sc.W, sc.H, sc.W, sc.H]) / cell).round()
        x1, y1 = min(int(x1), gw - 1), min(int(y1), gh - 1)
        x2, y2 = max(int(x2), x1 + 1), max(int(y2), y1 + 1)
        if sc.objs[i].role != "ground":
            keep[i] = keep[i] and covered[y1:y2, x1:x2].mean() <= max_covered
            covered[y1:y2, x1:x2] = True
    for i in sorted(range(len(sc.objs)), key=lambda i: sc.objs[i].layer):
        owner = sc.objs[i].state.get("owner")
        if owner is not None and not keep[owner]:  # a hat without its person, a window...
            keep[i] = False
    if all(keep):
        return
    new = np.cumsum(keep) - 1
    sc.objs = [o for o, k in zip(sc.objs, keep) if k]
    for o in sc.objs:
        if o.state.get("owner") is not None:
            o.state["owner"] = int(new[o.state["owner"]])
    sc.rels = [(int(new[s]), int(new[o]), p, kind) for s, o, p, kind in sc.rels
               if keep[s] and keep[o]]
    sc.bands = [int(new[b]) for b in sc.bands if keep[b]]


# (placement, weight outdoors, weight indoors)
_GROUPS = (
    (add_person, 0.26, 0.35), (add_vehicle, 0.1, 0), (add_building, 0.07, 0),
    (add_tree, 0.08, 0), (add_pole, 0.08, 0), (add_bike, 0.1, 0), (add_dog, 0.1, 0.15),
    (add_horse, 0.05, 0), (lambda sc: add_furniture(sc, "table"), 0.06, 0.2),
    (lambda sc: add_furniture(sc, "bench"), 0.07, 0.1),
    (lambda sc: add_furniture(sc, "bed"), 0.0, 0.25), (add_loose, 0.05, 0),
)


def sample_scene(rng: np.random.Generator, width: int, height: int) -> Scene:
    """Lay out one image: ground, then groups of objects until the object budget is met."""
    sc = Scene(rng, width, height)
    place_ground(sc)
    target = int(rng.integers(MIN_OBJECTS, MAX_OBJECTS + 1))
    probs = np.array([g[2] if sc.indoor else g[1] for g in _GROUPS])
    probs /= probs.sum()
    for _ in range(40):
        if len(sc.objs) >= target:
            break
        _GROUPS[int(rng.choice(len(_GROUPS), p=probs))][0](sc)
    drop_hidden(sc)
    add_gazes(sc)
    add_geometry(sc)
    return sc


def annotate(sc: Scene) -> list[tuple[int, int, str]]:
    """VG's annotation bias: each true relation is written with probability P_ANNOTATE[kind],
    as its generic predicate with probability P_GENERIC, sometimes (P_DUPLICATE) twice."""
    r, out = sc.rng, []
    for s, o, pred, kind in sc.rels:
        if r.random() >= P_ANNOTATE[kind]:
            continue
        generic = GENERIC.get(pred)
        written = generic if generic and r.random() < P_GENERIC[pred] else pred
        out.append((s, o, written))
        if written != generic and generic and r.random() < P_DUPLICATE:
            out.append((s, o, generic))
    return out
