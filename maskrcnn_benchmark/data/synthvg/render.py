"""Pillow drawing of a SynthVG scene: cluttered background, then every object in layer order.

Each class has its own shape, colour and texture; the states set by the world (pose, profile
head, held-item arm, strap, parked/moving (driver, streaks), leaning bike, chain, wings, in-grass, play arcs) are
drawn so that the specific predicates have a visible cue.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .world import Obj, Scene, head_radius, person_point, person_torso

SKIN = ((240, 200, 160), (200, 150, 110), (140, 95, 60), (250, 215, 185))
BASE = {
    "man": (35, 55, 150), "woman": (200, 40, 90), "child": (245, 185, 35), "dog": (150, 100, 55),
    "horse": (115, 60, 30), "car": (200, 30, 30), "bus": (245, 205, 20), "bike": (30, 150, 60),
    "wheel": (25, 25, 25), "window": (160, 210, 245), "street": (75, 75, 80),
    "grass": (70, 150, 55), "table": (135, 85, 40), "bench": (50, 110, 70),
    "bed": (240, 240, 245), "tree": (40, 110, 40), "pole": (140, 140, 150),
    "cup": (245, 245, 245), "phone": (20, 20, 25), "pizza": (240, 200, 80),
    "bag": (190, 145, 90), "ball": (240, 120, 20), "hat": (60, 30, 90), "shirt": (20, 170, 160),
    "umbrella": (150, 40, 180), "lamp": (250, 230, 90),
}
BUILDING_TONES = ((165, 75, 55), (205, 185, 145), (125, 125, 140))
BOOK_COLOURS = ((200, 40, 40), (40, 90, 200), (40, 150, 70), (220, 150, 30))


def _jit(rng, c, amount=18):
    return tuple(np.clip(np.asarray(c) + rng.integers(-amount, amount + 1, 3), 0, 255).tolist())


def _dark(c, f=0.6):
    return tuple(int(v * f) for v in c)


def background(sc: Scene) -> Image.Image:
    """Sky/wall gradient above the horizon, ground or floor below, low-contrast blobs and
    high-contrast specks (clutter that belongs to no class)."""
    r, W, H = sc.rng, sc.W, sc.H
    hz = int(sc.horizon)
    top = np.array(_jit(r, (200, 190, 175) if sc.indoor else (150, 190, 235), 30), np.float32)
    low = np.array(_jit(r, (150, 110, 80) if sc.indoor else (140, 130, 110), 30), np.float32)
    t = np.linspace(0, 1, H, dtype=np.float32)[:, None]
    col = np.where(np.arange(H)[:, None] < hz, top * (1 - 0.3 * t), low * (0.8 + 0.3 * t))
    img = Image.fromarray(col[:, None, :].clip(0, 255).astype(np.uint8)).resize((W, H),
                                                                                 Image.NEAREST)
    d = ImageDraw.Draw(img)
    if sc.indoor:
        for x in range(int(r.integers(4, 12)), W, int(r.integers(10, 20))):
            d.line([(x, 0), (x, hz)], fill=_jit(r, tuple(top.astype(int)), 12), width=2)
        for y in range(hz, H, int(r.integers(8, 14))):
            d.line([(0, y), (W, y)], fill=_dark(tuple(low.astype(int)), 0.85), width=1)
    for _ in range(int(r.integers(6, 14))):
        x, y, s = r.uniform(0, W), r.uniform(0, H), r.uniform(10, 40) * sc.k
        base = top if y < hz else low
        d.ellipse([x - s, y - s / 2, x + s, y + s / 2], fill=_jit(r, tuple(base.astype(int)), 25))
    for _ in range(int(r.integers(20, 45))):
        x, y, s = r.uniform(0, W), r.uniform(0, H), r.uniform(2, 7) * sc.k
        c = tuple(int(v) for v in r.integers(0, 256, 3))
        kind = r.integers(3)
        if kind == 0:
            d.line([(x, y), (x + r.uniform(-3, 3) * s, y + r.uniform(-3, 3) * s)], fill=c,
                   width=1)
        elif kind == 1:
            d.rectangle([x, y, x + s, y + s * r.uniform(0.3, 1)], fill=c)
        else:
            d.polygon([(x, y), (x + s, y + s / 2), (x + r.uniform(-s, s), y + s)], fill=c)
    return img


def _person(d, o: Obj, rng):
    st, h, f = o.state, o.state["h"], o.state["facing"]
    (rx, ry), lay = st["ref"], st["layout"]
    colour = _jit(rng, BASE[o.cls])
    skin = SKIN[int(rng.integers(len(SKIN)))]
    legs = {"man": (50, 50, 60), "woman": skin, "child": (50, 80, 160)}[o.cls]
    lw = max(2, int(0.07 * h))
    hx, hy = person_point(o, "head")
    rad = head_radius(o)
    x1, y1, x2, y2 = person_torso(o)
    X = lambda u: rx + f * u * h  # noqa: E731
    if lay in ("standing", "walking"):
        spread = 0.07 if lay == "standing" else 0.2
        for s in (-1, 1):
            d.line([(rx + s * 0.05 * h, ry - 0.42 * h), (rx + s * spread * h, ry)], fill=legs,
                   width=lw)
    elif lay == "sitting":
        knee = (X(0.3), ry - 0.03 * h)
        d.line([(rx, ry - 0.03 * h), knee], fill=legs, width=lw + 1)
        d.line([knee, (knee[0], ry + 0.3 * h)], fill=legs, width=lw)
    elif lay == "sitting_flat":
        d.line([(rx, ry - 0.03 * h), (X(0.52), ry - 0.03 * h)], fill=legs, width=lw + 1)
    else:
        for dy in (-0.06, -0.12):
            d.line([(X(0), ry + dy * h), (X(-0.5), ry + dy * h)], fill=legs, width=lw)
    if o.cls == "woman" and lay != "lying":  # long hair behind the head, dress
        d.rectangle(sorted_box(hx - f * 1.1 * rad, hy, hx - f * 0.1 * rad, hy + 2 * rad),
                    fill=(90, 50, 20))
        d.polygon([(x1, y1), (x2, y1), (x2 + 0.07 * h, y2 + 0.05 * h),
                   (x1 - 0.07 * h, y2 + 0.05 * h)], fill=colour)
    else:
        d.rectangle([x1, y1, x2, y2], fill=colour)
    if lay != "lying":
        aw = max(2, int(0.05 * h))
        back = (x1 if f > 0 else x2, y1 + 0.03 * h)
        front = (x2 if f > 0 else x1, y1 + 0.03 * h)
        rest = person_point(o, "rest")
        d.line([back, (2 * rx - rest[0] if lay != "sitting" else back[0] - f * 0.04 * h,
                       rest[1])], fill=skin, width=aw)
        d.line([front, person_point(o, st["arm"])], fill=skin, width=aw)
        if st.get("strap"):
            d.line([front, (x1 if f > 0 else x2, y2)], fill=(90, 60, 30), width=aw)
    d.ellipse([hx - rad, hy - rad, hx + rad, hy + rad], fill=skin)
    hair = (40, 25, 15) if o.cls != "child" else (200, 150, 50)
    if st["profile"]:  # side view: hair at the back, one eye and the nose ahead
        d.pieslice([hx - rad, hy - rad, hx + rad, hy + rad], 90 if f > 0 else 270,
                   270 if f > 0 else 450, fill=hair)
        e = max(1.0, 0.22 * rad)
        d.ellipse([hx + f * 0.5 * rad - e, hy - 0.2 * rad - e, hx + f * 0.5 * rad + e,
                   hy - 0.2 * rad + e], fill=(0, 0, 0))
        d.polygon([(hx + f * 0.9 * rad, hy - 0.1 * rad), (hx + f * 1.35 * rad, hy + 0.2 * rad),
                   (hx + f * 0.9 * rad, hy + 0.4 * rad)], fill=skin)
    else:  # frontal: hair cap and two eyes
        d.chord([hx - rad, hy - rad, hx + rad, hy + rad], 180, 360, fill=hair)
        e = max(1.0, 0.18 * rad)
        for s in (-1, 1):
            d.ellipse([hx + s * 0.4 * rad - e, hy + 0.1 * rad - e, hx + s * 0.4 * rad + e,
                       hy + 0.1 * rad + e], fill=(0, 0, 0))


def _quadruped(d, o: Obj, rng):
    x1, y1, x2, y2 = o.box
    w, h, f, st = x2 - x1, y2 - y1, o.state["facing"], o.state
    U = lambda u: x1 + w * u if f > 0 else x2 - w * u  # noqa: E731
    c = _jit(rng, BASE[o.cls], 20)
    horse = o.cls == "horse"
    lw = max(2, int(w * (0.06 if horse else 0.08)))
    if st["pose"] == "lying":
        d.ellipse(sorted_box(U(0.05), y1 + 0.3 * h, U(0.8), y2), fill=c)
        hx, hy, hr = U(0.85), y1 + 0.35 * h, 0.3 * h
    else:
        body_top, body_bot = (0.22, 0.55) if horse else (0.25, 0.65)
        spread = 0.0 if st["pose"] == "standing" else 0.07
        for u, s in ((0.22, -1), (0.3, 1), (0.62, -1), (0.7, 1)):
            d.line([(U(u), y1 + body_bot * h - 2), (U(u + s * spread), y2)], fill=_dark(c),
                   width=lw)
        d.ellipse(sorted_box(U(0.1), y1 + body_top * h, U(0.8), y1 + body_bot * h), fill=c)
        d.line([(U(0.12), y1 + (body_top + 0.05) * h), (U(0.0), y1 + (body_top + 0.2) * h)],
               fill=_dark(c), width=max(1, lw // 2 + 1))
        if horse:
            d.line([(U(0.72), y1 + 0.32 * h), (U(0.86), y1 + 0.1 * h)], fill=c, width=int(0.1 * w))
            d.line([(U(0.7), y1 + 0.25 * h), (U(0.82), y1 + 0.03 * h)], fill=(30, 20, 10),
                   width=max(2, int(0.03 * w)))
            hx, hy, hr = U(0.9), y1 + 0.1 * h, 0.09 * w
        elif st.get("head_down"):
            hx, hy, hr = U(0.88), y1 + 0.68 * h, 0.12 * w
        else:
            hx, hy, hr = U(0.86), y1 + 0.22 * h, 0.12 * w
    d.ellipse([hx - hr, hy - hr * 0.8, hx + hr, hy + hr * 0.8], fill=c)
    d.polygon([(hx - f * 0.2 * hr, hy - 0.6 * hr), (hx - f * 0.7 * hr, hy - 1.3 * hr),
               (hx - f * 0.9 * hr, hy - 0.3 * hr)], fill=_dark(c, 0.5))
    d.ellipse([hx + f * 0.4 * hr - 1.5, hy - 0.3 * hr - 1.5, hx + f * 0.4 * hr + 1.5,
               hy - 0.3 * hr + 1.5], fill=(0, 0, 0))


def sorted_box(xa, ya, xb, yb):
    return [min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb)]


def _bird(d, o: Obj, rng):
    x1, y1, x2, y2 = o.box
    w, h, f = x2 - x1, y2 - y1, o.state["facing"]
    c = _jit(rng, (40, 90, 210) if rng.random() < 0.6 else (210, 50, 40))
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    if o.state["flying"]:
        for s in (-1, 1):
            d.polygon([(cx - s * 0.05 * w, cy), (cx + s * 0.45 * w, y1), (cx + s * 0.2 * w, cy)],
                      fill=_dark(c, 0.7))
        d.ellipse([cx - 0.3 * w, cy - 0.15 * h, cx + 0.3 * w, y2 - 0.15 * h], fill=c)
    else:
        d.ellipse([x1 + 0.1 * w, y1 + 0.25 * h, x2 - 0.15 * w, y2 - 0.1 * h], fill=c)
        d.ellipse([cx - 0.15 * w, cy - 0.05 * h, cx + 0.25 * w, y2 - 0.2 * h], fill=_dark(c, 0.7))
    hx = cx + f * 0.3 * w
    d.ellipse([hx - 0.15 * w, y1 + 0.1 * h, hx + 0.15 * w, y1 + 0.1 * h + 0.3 * w], fill=c)
    bx = hx + f * 0.15 * w
    d.polygon([(bx, y1 + 0.2 * h), (bx + f * 0.18 * w, y1 + 0.3 * h), (bx, y1 + 0.4 * h)],
              fill=(250, 160, 20))


def _vehicle(d, o: Obj, rng, sc: Scene):
    x1, y1, x2, y2 = o.box
    w, h, f, k = x2 - x1, y2 - y1, o.state["facing"], sc.k
    c = _jit(rng, BASE[o.cls], 25)
    if o.cls == "car":
        d.rounded_rectangle([x1, y1 + 0.38 * h, x2, y2 - 0.15 * h], radius=0.12 * h, fill=c)
        d.polygon([(x1 + 0.22 * w, y1 + 0.4 * h), (x1 + 0.32 * w, y1), (x2 - 0.3 * w, y1),
                   (x2 - 0.18 * w, y1 + 0.4 * h)], fill=c)
        for a, b in ((0.33, 0.48), (0.52, 0.68)):
            d.rectangle([x1 + a * w, y1 + 0.08 * h, x1 + b * w, y1 + 0.36 * h], fill=BASE["window"])
    else:
        d.rounded_rectangle([x1, y1, x2, y2 - 0.12 * h], radius=0.1 * h, fill=c)
        n = max(3, int(w / (18 * k)))
        for j in range(n):
            a = x1 + 0.06 * w + j * 0.88 * w / n
            d.rectangle([a, y1 + 0.12 * h, a + 0.7 * 0.88 * w / n, y1 + 0.42 * h],
                        fill=BASE["window"])
        d.line([(x1, y1 + 0.6 * h), (x2, y1 + 0.6 * h)], fill=_dark(c), width=2)
    front = x2 - 0.03 * w if f > 0 else x1 + 0.03 * w
    moving = o.state["moving"]
    lamp = (255, 250, 120) if moving else (110, 110, 110)
    d.ellipse([front - 3 * k, y1 + 0.5 * h - 3 * k, front + 3 * k, y1 + 0.5 * h + 3 * k], fill=lamp)
    if moving:  # a driver behind the front window, motion streaks behind the vehicle
        u = (0.6 if f > 0 else 0.4) if o.cls == "car" else (0.85 if f > 0 else 0.15)
        hx, hy, r = x1 + u * w, y1 + (0.24 if o.cls == "car" else 0.3) * h, 0.1 * h
        d.ellipse([hx - r, hy - r, hx + r, hy + r], fill=SKIN[int(rng.integers(len(SKIN)))])
        d.chord([hx - r, hy - r, hx + r, hy + r], 180, 360, fill=(40, 25, 15))
        back = x1 if f > 0 else x2
        for j in range(3):
            yy = y1 + (0.45 + 0.15 * j) * h
            d.line([(back - f * 3 * k, yy), (back - f * (16 + 7 * j) * k, yy)],
                   fill=(250, 250, 250), width=max(2, int(2 * k)))


def _bike(d, o: Obj, rng):
    x1, y1, x2, y2 = o.box
    w, h, lean = x2 - x1, y2 - y1, o.state["lean"]
    s = 0.3 * h if lean else 0.0

    def P(u, v):
        shift = s * (1 - v) if lean > 0 else s * v
        return x1 + shift + u * (w - s), y1 + v * h
    c = _jit(rng, BASE["bike"], 40)
    rad = 0.3 * h
    for u in (0.2, 0.8):
        cx, cy = P(u * (w - s - 2 * rad) / (w - s) + rad / (w - s), 0.7)
        d.ellipse([cx - rad, cy - rad, cx + rad, cy + rad], outline=(20, 20, 20),
                  width=max(2, int(0.06 * h)))
    pts = [P(0.25, 0.7), P(0.45, 0.3), P(0.72, 0.3), P(0.5, 0.7), P(0.25, 0.7)]
    d.line(pts, fill=c, width=max(2, int(0.07 * h)))
    d.line([P(0.72, 0.3), P(0.75, 0.7)], fill=c, width=max(2, int(0.06 * h)))
    d.line([P(0.4, 0.2), P(0.5, 0.2)], fill=(30, 30, 30), width=max(2, int(0.08 * h)))
    d.line([P(0.66, 0.12), P(0.8, 0.1)], fill=(30, 30, 30), width=max(2, int(0.05 * h)))


def _plain(d, o: Obj, rng, sc: Scene):
    """Scenery, furniture and items."""
    x1, y1, x2, y2 = o.box
    w, h, k, cls = x2 - x1, y2 - y1, sc.k, o.cls
    c = _jit(rng, BASE.get(cls, (128, 128, 128)))
    if cls == "street":
        d.rectangle([x1, y1, x2, y2], fill=c)
        d.line([(x1, y1 + 1), (x2, y1 + 1)], fill=(170, 170, 170), width=max(2, int(2 * k)))
        ym, dash = (y1 + y2) / 2, 14 * k
        col = (250, 250, 250) if rng.random() < 0.6 else (240, 200, 40)
        for x in np.arange(x1 + rng.uniform(0, dash), x2, 2 * dash):
            d.line([(x, ym), (x + dash, ym)], fill=col, width=max(2, int(2 * k)))
    elif cls == "grass":
        d.rectangle([x1, y1, x2, y2], fill=c)
        _blades(d, rng, o.box, int(w * h / (40 * k * k)))
    elif cls == "building":
        tone = _jit(rng, BUILDING_TONES[o.state["tone"]])
        d.rectangle([x1, y1, x2, y2], fill=tone)
        for y in np.arange(y1 + 4 * k, y2, 5 * k):
            d.line([(x1, y), (x2, y)], fill=_dark(tone, 0.85), width=1)
        d.rectangle([x1, y1, x2, y1 + 5 * k], fill=_dark(tone, 0.6))
        d.rectangle([x1 + 0.4 * w, y2 - 0.2 * h, x1 + 0.6 * w, y2], fill=(60, 40, 30))
    elif cls == "window":
        d.rectangle([x1, y1, x2, y2], fill=c, outline=(250, 250, 250), width=max(1, int(2 * k)))
        d.line([((x1 + x2) / 2, y1), ((x1 + x2) / 2, y2)], fill=(250, 250, 250), width=1)
        d.line([(x1, (y1 + y2) / 2), (x2, (y1 + y2) / 2)], fill=(250, 250, 250), width=1)
    elif cls == "wheel":
        d.ellipse([x1, y1, x2, y2], fill=c)
        d.ellipse([x1 + 0.3 * w, y1 + 0.3 * h, x2 - 0.3 * w, y2 - 0.3 * h], fill=(170, 170, 170))
    elif cls == "tree":
        d.rectangle([x1 + 0.42 * w, y1 + 0.5 * h, x1 + 0.58 * w, y2], fill=(100, 65, 30))
        for _ in range(5):
            cx, cy = x1 + w * rng.uniform(0.3, 0.7), y1 + h * rng.uniform(0.22, 0.42)
            rr = min(w * 0.3, h * 0.22)
            d.ellipse([cx - rr, cy - rr, cx + rr, cy + rr], fill=_jit(rng, BASE["tree"], 20))
    elif cls == "pole":
        bx, f = o.state["bar_x"], o.state["facing"]
        d.rectangle([bx - 3 * k, y1, bx + 3 * k, y2], fill=c)
        d.rectangle(sorted_box(bx, y1 + 2 * k, x2 if f > 0 else x1, y1 + 6 * k), fill=c)
    else:
        _furniture_or_item(d, o, rng, c, k)


def _blades(d, rng, box, n):
    x1, y1, x2, y2 = box
    n = max(0, n)
    x, y = rng.uniform(x1, x2, n), rng.uniform(y1 + 3, y2, n)
    x2_, y2_ = x + rng.uniform(-2, 2, n), y - rng.uniform(3, 7, n)
    cols = np.clip(np.array([40, 110, 35]) + rng.integers(-25, 26, (n, 3)), 0, 255).tolist()
    for a, b, c, e, col in zip(x.tolist(), y.tolist(), x2_.tolist(), y2_.tolist(), cols):
        d.line([(a, b), (c, e)], fill=tuple(col), width=1)


def _furniture_or_item(d, o: Obj, rng, c, k):
    x1, y1, x2, y2 = o.box
    w, h, cls = x2 - x1, y2 - y1, o.cls
    if cls == "table":
        d.rectangle([x1, y1, x2, y1 + 0.2 * h], fill=c)
        for u in (0.06, 0.88):
            d.rectangle([x1 + u * w, y1 + 0.2 * h, x1 + (u + 0.06) * w, y2], fill=_dark(c, 0.7))
    elif cls == "bench":
        for v in (0.05, 0.22):
            d.rectangle([x1, y1 + v * h, x2, y1 + (v + 0.1) * h], fill=c)
        d.rectangle([x1, y1 + 0.48 * h, x2, y1 + 0.6 * h], fill=c)
        for u in (0.1, 0.85):
            d.rectangle([x1 + u * w, y1, x1 + (u + 0.05) * w, y2], fill=_dark(c, 0.6))
    elif cls == "bed":
        f = o.state["facing"]
        head = (x1, x1 + 0.08 * w) if f > 0 else (x2 - 0.08 * w, x2)
        d.rectangle([head[0], y1, head[1], y2], fill=(100, 60, 30))
        d.rectangle([x1, y1 + 0.45 * h, x2, y1 + 0.8 * h], fill=c)
        blanket = [x1 + 0.4 * w, y1 + 0.45 * h, x2, y1 + 0.8 * h] if f > 0 else \
            [x1, y1 + 0.45 * h, x2 - 0.4 * w, y1 + 0.8 * h]
        d.rectangle(blanket, fill=_jit(rng, (120, 140, 220), 40))
        px = x1 + 0.18 * w if f > 0 else x2 - 0.18 * w
        d.ellipse([px - 0.08 * w, y1 + 0.3 * h, px + 0.08 * w, y1 + 0.47 * h], fill=(250, 250, 250))
        d.rectangle([x1, y1 + 0.8 * h, x2, y2], fill=(100, 60, 30))
    elif cls in ("sign", "lamp"):
        if o.state.get("chain"):
            for u in ((0.3, 0.7) if cls == "sign" else (0.5,)):
                d.line([(x1 + u * w, y1 - 7 * k), (x1 + u * w, y1)], fill=(40, 40, 40),
                       width=max(2, int(1.5 * k)))
        if cls == "lamp":
            d.polygon([(x1 + 0.2 * w, y1), (x2 - 0.2 * w, y1), (x2, y1 + 0.4 * h),
                       (x1, y1 + 0.4 * h)], fill=(40, 40, 40))
            d.ellipse([x1 + 0.15 * w, y1 + 0.3 * h, x2 - 0.15 * w, y2], fill=c)
        elif o.state["shape"] == 0:
            cx, cy, rr = (x1 + x2) / 2, (y1 + y2) / 2, w / 2
            d.regular_polygon((cx, cy, rr), 8, rotation=22.5, fill=_jit(rng, (210, 30, 30)))
            d.rectangle([x1 + 0.2 * w, cy - 0.08 * h, x2 - 0.2 * w, cy + 0.08 * h], fill="white")
        else:
            d.rectangle([x1, y1, x2, y2], fill=_jit(rng, (30, 70, 190)), outline="white")
            d.polygon([(x1 + 0.2 * w, y1 + 0.4 * h), (x1 + 0.6 * w, y1 + 0.4 * h),
                       (x1 + 0.6 * w, y1 + 0.25 * h), (x2 - 0.1 * w, y1 + 0.5 * h),
                       (x1 + 0.6 * w, y1 + 0.75 * h), (x1 + 0.6 * w, y1 + 0.6 * h),
                       (x1 + 0.2 * w, y1 + 0.6 * h)], fill="white")
    elif cls == "cup":
        d.polygon([(x1 + 0.1 * w, y1), (x2 - 0.3 * w, y1), (x2 - 0.38 * w, y2),
                   (x1 + 0.18 * w, y2)], fill=c)
        d.arc([x2 - 0.45 * w, y1 + 0.2 * h, x2, y1 + 0.65 * h], 270, 90, fill=c, width=2)
        d.rectangle([x1 + 0.13 * w, y1 + 0.3 * h, x2 - 0.33 * w, y1 + 0.45 * h],
                    fill=_jit(rng, (40, 120, 200), 50))
    elif cls == "phone":
        d.rounded_rectangle([x1, y1, x2, y2], radius=0.2 * w, fill=c)
        d.rectangle([x1 + 0.15 * w, y1 + 0.12 * h, x2 - 0.15 * w, y2 - 0.18 * h],
                    fill=(90, 170, 240))
    elif cls == "book":
        col = BOOK_COLOURS[int(rng.integers(len(BOOK_COLOURS)))]
        d.rectangle([x1, y1, x2, y2], fill=col)
        d.rectangle([x2 - 0.18 * w, y1 + 0.1 * h, x2, y2 - 0.1 * h], fill=(245, 245, 230))
        d.line([(x1 + 0.12 * w, y1), (x1 + 0.12 * w, y2)], fill=_dark(col, 0.5), width=2)
    elif cls == "pizza":
        d.polygon([(x1, y1), (x2, y1), ((x1 + x2) / 2, y2)], fill=c)
        d.line([(x1, y1), (x2, y1)], fill=(170, 100, 40), width=max(2, int(3 * k)))
        for u, v in ((0.35, 0.25), (0.62, 0.3), (0.5, 0.55)):
            d.ellipse([x1 + u * w - 2 * k, y1 + v * h - 2 * k, x1 + u * w + 2 * k,
                       y1 + v * h + 2 * k], fill=(200, 40, 30))
    elif cls == "bag":
        d.arc([x1 + 0.25 * w, y1, x2 - 0.25 * w, y1 + 0.7 * h], 180, 360, fill=_dark(c),
              width=max(2, int(2 * k)))
        d.rectangle([x1, y1 + 0.35 * h, x2, y2], fill=c)
        d.line([(x1, y1 + 0.55 * h), (x2, y1 + 0.55 * h)], fill=_dark(c), width=1)
    elif cls == "ball":
        d.ellipse([x1, y1, x2, y2], fill=c)
        d.line([(x1, (y1 + y2) / 2), (x2, (y1 + y2) / 2)], fill=(40, 20, 10), width=1)
        d.arc([x1 + 0.25 * w, y1, x2 - 0.25 * w, y2], 0, 360, fill=(40, 20, 10), width=1)
    elif cls == "hat":
        d.rectangle([x1 + 0.22 * w, y1, x2 - 0.22 * w, y2 - 0.25 * h], fill=c)
        d.ellipse([x1, y2 - 0.4 * h, x2, y2], fill=c)
        d.rectangle([x1 + 0.22 * w, y2 - 0.5 * h, x2 - 0.22 * w, y2 - 0.35 * h],
                    fill=(230, 200, 60))
    elif cls == "shirt":
        d.rectangle([x1, y1, x2, y2], fill=c)
        for y in np.arange(y1 + 2 * k, y2, 4 * k):
            d.line([(x1, y), (x2, y)], fill=(250, 250, 250), width=1)
    elif cls == "umbrella":
        cy = y1 + 0.35 * h
        d.pieslice([x1, y1, x2, y1 + 0.7 * h], 180, 360, fill=c)
        for u in (0.25, 0.5, 0.75):
            d.line([((x1 + x2) / 2, y1 + 0.02 * h), (x1 + u * w, cy)], fill=_dark(c), width=1)
        mx = (x1 + x2) / 2
        d.line([(mx, cy), (mx, y2)], fill=(40, 40, 40), width=max(2, int(1.5 * k)))


def draw_scene(sc: Scene) -> Image.Image:
    """The image of a scene (RGB, sc.W x sc.H)."""
    img = background(sc)
    d = ImageDraw.Draw(img)
    rng = sc.rng
    for o in sorted(sc.objs, key=lambda o: o.layer):
        if o.cls in ("man", "woman", "child"):
            _person(d, o, rng)
        elif o.cls in ("dog", "horse"):
            _quadruped(d, o, rng)
        elif o.cls == "bird":
            _bird(d, o, rng)
        elif o.cls in ("car", "bus"):
            _vehicle(d, o, rng, sc)
        elif o.cls == "bike":
            _bike(d, o, rng)
        else:
            _plain(d, o, rng, sc)
        if o.state.get("in_grass"):
            x1, y1, x2, y2 = o.box
            _blades(d, rng, (x1 - 2, (y1 + y2) / 2, x2 + 2, y2 + 2), int(3 * (x2 - x1)))
        if o.state.get("arcs"):
            x1, y1, x2, y2 = o.box
            m = 4 * sc.k
            for a0 in (200, 20):
                d.arc([x1 - m, y1 - m, x2 + m, y2 + m], a0, a0 + 50, fill=(255, 255, 255),
                      width=max(1, int(1.5 * sc.k)))
    return img
