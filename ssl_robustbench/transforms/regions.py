"""Plane geometry for warped regions (used by ``transforms/geometric.py`` and COCO-PD): the visible part of a region
given by its boundary polygon, its tight axis-aligned box and its smallest rotated box.

A warped box's visible region is R ∩ S, R the inside (or, when the map's pole lies inside the box, the outside) of
the mapped boundary and S = [0, W] × [0, H] the image. R ∩ S is bounded by pieces of R's boundary inside S and
pieces of S's sides inside R, so the extreme points of R ∩ S — everything its tight box and its convex hull depend
on — are among (1) the polygon's vertices inside S, (2) the polygon's crossings with S's sides and (3) S's corners
inside R (``visible_points``). Nothing is clipped, so no zero-area edge along a side can stretch a box, as a
Sutherland–Hodgman clip of a non-convex polygon does.
"""

from __future__ import annotations

import numpy as np


def inside_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd test of ``points`` [M, 2] against the closed ``polygon`` [N, 2] (its last vertex joins its first)."""
    a, b = polygon, np.roll(polygon, -1, axis=0)
    px, py = points[:, None, 0], points[:, None, 1]
    straddles = (a[None, :, 1] > py) != (b[None, :, 1] > py)
    dy = np.where(b[:, 1] == a[:, 1], 1.0, b[:, 1] - a[:, 1])
    x_at = a[None, :, 0] + (py - a[None, :, 1]) * (b[None, :, 0] - a[None, :, 0]) / dy[None, :]
    return (straddles & (px < x_at)).sum(axis=1) % 2 == 1


def visible_points(polygon: np.ndarray, width: float, height: float, *, outside: bool = False) -> np.ndarray:
    """The extreme-point candidates [K, 2] of R ∩ [0, width] × [0, height], R the inside of the closed ``polygon``
    (``outside``: its outside); [0, 2] when R ∩ S is empty."""
    poly = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    if len(poly) < 3:
        return np.zeros((0, 2))
    in_s = (poly[:, 0] >= 0) & (poly[:, 0] <= width) & (poly[:, 1] >= 0) & (poly[:, 1] <= height)
    a, b = poly, np.roll(poly, -1, axis=0)
    found = [poly[in_s]]
    for axis, bound, extent in ((0, 0.0, height), (0, width, height), (1, 0.0, width), (1, height, width)):
        da, db = a[:, axis] - bound, b[:, axis] - bound
        crosses = (da * db <= 0) & (da != db)
        t = np.where(crosses, da / np.where(da == db, 1.0, da - db), 0.0)
        other = a[:, 1 - axis] + t * (b[:, 1 - axis] - a[:, 1 - axis])
        keep = crosses & (other >= 0) & (other <= extent)
        point = np.empty((int(keep.sum()), 2))
        point[:, axis], point[:, 1 - axis] = bound, other[keep]
        found.append(point)
    corners = np.array([[0.0, 0.0], [width, 0.0], [width, height], [0.0, height]])
    found.append(corners[inside_polygon(corners, poly) != outside])
    return np.concatenate(found)


def tight_box(points: np.ndarray) -> list[float] | None:
    """[x1, y1, x2, y2] of a point set; None when it has no area (a vanished region)."""
    if len(points) == 0:
        return None
    lo, hi = points.min(axis=0), points.max(axis=0)
    if hi[0] - lo[0] <= 0 or hi[1] - lo[1] <= 0:
        return None
    return [float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])]


def convex_hull(points: np.ndarray) -> np.ndarray:
    """The convex hull's vertices in order (Andrew's monotone chain)."""
    pts = np.unique(np.asarray(points, dtype=np.float64), axis=0)
    if len(pts) < 3:
        return pts

    def half(seq):
        chain: list[np.ndarray] = []
        for p in seq:
            while len(chain) >= 2 and _turn(chain[-2], chain[-1], p) <= 0:
                chain.pop()
            chain.append(p)
        return chain[:-1]

    return np.array(half(pts) + half(pts[::-1]))


def _turn(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """The z-component of (a − o) × (b − o): positive for a left turn."""
    return float((a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]))


def smallest_rotated_box(points: np.ndarray, width_direction: np.ndarray) -> np.ndarray | None:
    """The smallest-area rectangle holding ``points`` (rotating calipers over the hull's edges) as corners
    [4, 2] in torchvision's XYXYXYXY order: corner 1, then along the rectangle's width, across, back. Of its four
    side directions, the one closest to ``width_direction`` is the width, and the height runs at +90° from it
    (y down), as torchvision's rotated formats do. None when the points span no area."""
    hull = convex_hull(points)
    if len(hull) < 3:
        return None
    edges = np.roll(hull, -1, axis=0) - hull
    lengths = np.hypot(edges[:, 0], edges[:, 1])
    units = edges[lengths > 0] / lengths[lengths > 0, None]
    normals = np.stack((-units[:, 1], units[:, 0]), axis=1)
    along, across = hull @ units.T, hull @ normals.T  # [hull point, direction]
    areas = np.ptp(along, axis=0) * np.ptp(across, axis=0)
    best = int(np.argmin(areas))
    if areas[best] <= 0:
        return None
    e = units[best]
    candidates = np.array([e, [-e[1], e[0]], -e, [e[1], -e[0]]])
    u = candidates[int(np.argmax(candidates @ np.asarray(width_direction, dtype=np.float64)))]
    v = np.array([-u[1], u[0]])
    s, t = hull @ u, hull @ v
    origin = u * s.min() + v * t.min()
    w, h = s.max() - s.min(), t.max() - t.min()
    return np.array([origin, origin + w * u, origin + w * u + h * v, origin + h * v])


def polygon_area(points: np.ndarray) -> float:
    """Shoelace area of a closed polygon [N, 2]."""
    x, y = points[:, 0], points[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)) / 2)


def clip_polygon(points: np.ndarray, width: float, height: float) -> np.ndarray:
    """The part of a polygon [N, 2] inside [0, width] × [0, height] as one outline (Sutherland–Hodgman), for COCO
    segmentations, which must stay polygons: where the polygon leaves and re-enters, the outline runs along the
    side, an edge of zero area that leaves the polygon's area and pixels unchanged (a box is taken from
    ``visible_points``, never from this outline). [0, 2] when nothing is inside."""
    poly = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    for axis, bound, sign in ((0, 0.0, 1.0), (0, width, -1.0), (1, 0.0, 1.0), (1, height, -1.0)):
        if len(poly) == 0:
            break
        inside = sign * (poly[:, axis] - bound) >= 0
        if inside.all():
            continue
        prev, prev_in = np.roll(poly, 1, axis=0), np.roll(inside, 1)
        crossing = inside != prev_in
        step = poly[:, axis] - prev[:, axis]
        t = np.where(crossing, (bound - prev[:, axis]) / np.where(crossing, step, 1.0), 0.0)
        cut = prev + t[:, None] * (poly - prev)
        cut[crossing, axis] = bound
        pairs = np.stack((cut, poly), axis=1).reshape(-1, 2)
        poly = pairs[np.stack((crossing, inside), axis=1).reshape(-1)]
    return poly
