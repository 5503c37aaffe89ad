"""MPD and LCM for detection, segmentation and keypoints: ``torchvision.transforms.v2`` transforms that warp an
image with its boxes, masks and points under one sampled parameter set (MPD: Chhipa et al., ECCV 2024, whose
"MPD-OD" transforms boxes along with the image; LCM: ``transforms/lcm.py``).

Both maps are conformal bijections with closed-form inverses, so nothing is approximated:

- the image (and video frames) is resampled exactly as the batched view generators do (``mobius_warp``,
  ``lcm_warp``: bilinear, corner-aligned), masks by nearest neighbour on the same grid;
- a point moves forward through the map: Möbius z = w·d / (1 − c·w) for the input point w (the inverse of the
  sampling map w = z / (c z + d)); LCM w = log(1 + λ s z) / λ (inverse of z = (e^{λw} − 1) / (λ s));
- a box becomes the tight box of its warped region: the region's image under a conformal map is bounded by the
  image of its boundary (the coordinates are harmonic), so the box of the densely mapped boundary, clipped to the
  image, is the box of the warped region; a box whose region leaves the image vanishes and is dropped with its
  label (``SanitizeBoundingBoxes``).

Key points are in torchvision's pixel-index coordinates (a point on pixel column i has x = i); boxes in any
``BoundingBoxFormat`` (edge coordinates, as torchvision keeps them).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from ssl_robustbench.errors import UserError
from ssl_robustbench.transforms.lcm import lcm_grid
from ssl_robustbench.transforms.mobius import BACKGROUNDS, mobius_grid

#: PD's four views: the axis and sign of c (right: +real, left: −real, bottom: +imaginary, top: −imaginary)
VIEWS = {"right": (1.0, 0.0), "left": (-1.0, 0.0), "bottom": (0.0, 1.0), "top": (0.0, -1.0)}
_BOUNDARY_STEP = 0.25  # pixels between the boundary points a box's edges are sampled at


def _to_norm(xy: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pixel-index coordinates [..., 2] → complex normalized coordinates (corner-aligned, [-1, 1])."""
    x = 2 * xy[..., 0] / max(width - 1, 1) - 1
    y = 2 * xy[..., 1] / max(height - 1, 1) - 1
    return torch.complex(x.double(), y.double())


def _from_norm(z: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return torch.stack(((z.real + 1) * (width - 1) / 2, (z.imag + 1) * (height - 1) / 2), dim=-1)


class _ConformalView(v2.Transform):
    """One sampled map per call, applied to every image, video, mask, box set and key-point set of the sample."""

    def __init__(self, *, p: float, background: str) -> None:
        super().__init__()
        if not 0 <= p <= 1:
            raise UserError(f"p must be in [0, 1], not {p}")
        if background not in BACKGROUNDS:
            raise UserError(f"background must be one of {', '.join(BACKGROUNDS)}, not {background!r}")
        self.p, self.background = p, background

    # --- what a subclass defines -------------------------------------------------------------------------------
    def sample(self, g: torch.Generator | None = None) -> dict[str, Any]:
        """One draw of the map's parameters (from ``g``, else torch's global generator, as v2 transforms do)."""
        raise NotImplementedError

    def grid(self, params: dict[str, Any], height: int, width: int) -> torch.Tensor:
        """[1, H, W, 2] input coordinates of every output pixel."""
        raise NotImplementedError

    def forward_map(self, params: dict[str, Any], w: torch.Tensor) -> torch.Tensor:
        """Normalized input points (complex) → where they land in the output (complex)."""
        raise NotImplementedError

    # --- the v2 machinery ----------------------------------------------------------------------------------------
    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        return {"apply": bool(torch.rand(()) < self.p), **self.sample()}

    def forward(self, *inputs: Any) -> Any:
        out = super().forward(*inputs)
        flat = list(out) if isinstance(out, (list, tuple)) else [out]
        has_boxes = any(isinstance(x, tv_tensors.BoundingBoxes) for x in _nodes(flat))
        has_labels = any(isinstance(x, dict) and "labels" in x for x in _nodes(flat))
        if has_boxes and has_labels:  # vanished boxes (under 1 px) go, with their labels
            return v2.SanitizeBoundingBoxes(min_size=1)(out)
        return out

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not params["apply"]:
            return inpt
        if isinstance(inpt, tv_tensors.BoundingBoxes):
            return self._boxes(inpt, params)
        if isinstance(inpt, tv_tensors.KeyPoints):
            return self._points(inpt, params)
        if isinstance(inpt, tv_tensors.Mask):
            return tv_tensors.wrap(self._resample(inpt, params, mode="nearest"), like=inpt)
        if isinstance(inpt, (tv_tensors.Image, tv_tensors.Video)):
            return tv_tensors.wrap(self._resample(inpt, params, mode="bilinear"), like=inpt)
        if isinstance(inpt, torch.Tensor) and not isinstance(inpt, tv_tensors.TVTensor):  # a plain image tensor
            return self._resample(inpt, params, mode="bilinear")
        if hasattr(inpt, "size") and hasattr(inpt, "mode"):  # a PIL image
            return TF.to_pil_image(self._resample(TF.pil_to_tensor(inpt), params, mode="bilinear"))
        return inpt

    def _resample(self, x: torch.Tensor, params: dict[str, Any], *, mode: str) -> torch.Tensor:
        """Resamples [..., H, W] on the map's grid (uint8 stays uint8: rounded; masks: nearest)."""
        shape, dtype = x.shape, x.dtype
        flat = x.reshape(-1, 1, *shape[-2:])  # every channel (and frame) on the same grid
        grid = self.grid(params, shape[-2], shape[-1]).to(torch.float32)
        work = flat.float() if not dtype.is_floating_point else flat
        out = F.grid_sample(work, grid.to(work.dtype).expand(len(work), -1, -1, -1), mode=mode,
                            padding_mode="zeros", align_corners=True)
        if dtype == torch.bool:
            out = out > 0.5
        elif not dtype.is_floating_point:
            info = torch.iinfo(dtype)
            out = out.round().clamp(info.min, info.max)
        return out.to(dtype).reshape(shape)

    def move_points(self, params: dict[str, Any], xy: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Points [..., 2] in pixel-index coordinates of an image of ``height`` × ``width`` → where the map moves
        them (float64; a point at the map's pole becomes non-finite)."""
        return _from_norm(self.forward_map(params, _to_norm(xy, height, width)), height, width)

    def _points(self, points: tv_tensors.KeyPoints, params: dict[str, Any]) -> tv_tensors.KeyPoints:
        height, width = points.canvas_size
        moved = self.move_points(params, points.as_subclass(torch.Tensor), height, width)
        return tv_tensors.wrap(moved.to(points.dtype), like=points)

    def _boxes(self, boxes: tv_tensors.BoundingBoxes, params: dict[str, Any]) -> tv_tensors.BoundingBoxes:
        height, width = boxes.canvas_size
        xyxy = TF.convert_bounding_box_format(boxes, new_format=tv_tensors.BoundingBoxFormat.XYXY)
        out = []
        for x1, y1, x2, y2 in xyxy.as_subclass(torch.Tensor).double().tolist():
            # the boundary, in pixel-index coordinates of the pixel centres it encloses (edge x ↔ index x − ½)
            edge = _boundary(x1 - 0.5, y1 - 0.5, x2 - 0.5, y2 - 0.5)
            moved = self.move_points(params, edge, height, width) + 0.5
            if not bool(torch.isfinite(moved).all()):
                out.append([0.0, 0.0, 0.0, 0.0])  # the region passes through the map's pole: nothing of it shows
                continue
            visible = _clip_polygon(moved.numpy(), width, height)  # the warped region's part inside the image
            if len(visible) == 0:
                out.append([0.0, 0.0, 0.0, 0.0])
                continue
            lo, hi = visible.min(axis=0), visible.max(axis=0)
            out.append([float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])])
        warped = tv_tensors.BoundingBoxes(torch.tensor(out, dtype=torch.float32).reshape(-1, 4),
                                          format=tv_tensors.BoundingBoxFormat.XYXY, canvas_size=(height, width))
        result = TF.convert_bounding_box_format(warped, new_format=boxes.format)
        return tv_tensors.wrap(result.to(boxes.dtype if boxes.dtype.is_floating_point else torch.float32),
                               like=boxes)


def _boundary(x1: float, y1: float, x2: float, y2: float) -> torch.Tensor:
    """A rectangle's boundary as a closed polygon in order (top, right, bottom, left edge), its points
    ``_BOUNDARY_STEP`` pixels apart: mapped point by point, it stays the boundary of the warped region."""
    nx = max(2, int(math.ceil((x2 - x1) / _BOUNDARY_STEP)) + 1)
    ny = max(2, int(math.ceil((y2 - y1) / _BOUNDARY_STEP)) + 1)
    xs = torch.linspace(x1, x2, nx, dtype=torch.float64)
    ys = torch.linspace(y1, y2, ny, dtype=torch.float64)
    edges = [torch.stack((xs, torch.full_like(xs, y1)), 1), torch.stack((torch.full_like(ys, x2), ys), 1)[1:],
             torch.stack((xs.flip(0), torch.full_like(xs, y2)), 1)[1:],
             torch.stack((torch.full_like(ys, x1), ys.flip(0)), 1)[1:-1]]
    return torch.cat(edges)


def _clip_polygon(points: list[list[float]] | np.ndarray, width: float, height: float) -> np.ndarray:
    """The part of a simple polygon ([N, 2]) inside [0, width] × [0, height] (Sutherland–Hodgman, one side at a
    time, each side vectorized over the polygon's edges); [0, 2] when nothing is inside."""
    poly = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    for axis, bound, sign in ((0, 0.0, 1.0), (0, width, -1.0), (1, 0.0, 1.0), (1, height, -1.0)):
        if len(poly) == 0:
            break
        inside = sign * (poly[:, axis] - bound) >= 0
        if inside.all():
            continue
        prev, prev_in = np.roll(poly, 1, axis=0), np.roll(inside, 1)
        crossing = inside != prev_in
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (bound - prev[:, axis]) / (poly[:, axis] - prev[:, axis])
        cut = prev + t[:, None] * (poly - prev)
        # each edge (prev → current) contributes its crossing point (if it crosses) then the current point (if in)
        pairs = np.stack((cut, poly), axis=1).reshape(-1, 2)
        keep = np.stack((crossing, inside), axis=1).reshape(-1)
        poly = pairs[keep]
    return poly


def _nodes(items):
    """Every item of a (nested) sample and, depth first, everything inside its dicts, lists and tuples."""
    for item in items:
        yield item
        if isinstance(item, dict):
            yield from _nodes(item.values())
        elif isinstance(item, (list, tuple)):
            yield from _nodes(item)


class MobiusPerspective(_ConformalView):
    """MPD (Möbius perspective distortion) for images with boxes, masks and key points.

    Args:
        p: probability of warping a sample.
        low: the smallest |c| (|c| ~ U(low, high); the authors' DINO preset 0.1–0.3 with d = 1; SimCLR 0.2–0.4,
            d = 0.75).
        high: the largest |c| (and a fixed view's).
        d: d of f(z) = z / (c z + d).
        view: ``left``, ``right``, ``top`` or ``bottom`` for a fixed PD view of |c| = ``high`` (ImageNet-PD's
            views); None: c real or imaginary (½ each) with a random sign, as MPD draws it.
        background: ``black`` (zeros outside) or ``padded`` (border pixels).
    """

    def __init__(self, *, p: float = 1.0, low: float = 0.1, high: float = 0.3, d: float = 1.0,
                 view: str | None = None, background: str = "black") -> None:
        super().__init__(p=p, background=background)
        if not 0 < low <= high or d == 0 or not math.isfinite(d):
            raise UserError("MobiusPerspective needs 0 < low <= high and a finite, non-zero d")
        if view is not None and view not in VIEWS:
            raise UserError(f"view must be one of {', '.join(VIEWS)}, not {view!r}")
        self.low, self.high, self.d, self.view = low, high, d, view

    def sample(self, g: torch.Generator | None = None) -> dict[str, Any]:
        if self.view is not None:
            sx, sy = VIEWS[self.view]
            return {"c": complex(sx * self.high, sy * self.high)}
        u = torch.rand(3, generator=g).tolist()
        magnitude = self.low + u[0] * (self.high - self.low)
        sign = 1.0 if u[1] < 0.5 else -1.0
        real = u[2] < 0.5
        return {"c": complex(sign * magnitude, 0.0) if real else complex(0.0, sign * magnitude)}

    def grid(self, params: dict[str, Any], height: int, width: int) -> torch.Tensor:
        c = params["c"]
        return mobius_grid(torch.tensor([c.real]), torch.tensor([c.imag]), self.d, height, width,
                           padded=self.background == "padded")

    def forward_map(self, params: dict[str, Any], w: torch.Tensor) -> torch.Tensor:
        c = complex(params["c"])
        return w * self.d / (1 - c * w)


class LogConformal(_ConformalView):
    """LCM (log-conformal map) for images with boxes, masks and key points: |λ| ~ U(low, high) with a uniform
    direction, zoom r ~ U(zoom), rotation θ ~ U(−rotation, rotation) (radians); see ``transforms/lcm.py``."""

    def __init__(self, *, p: float = 1.0, low: float = 0.3, high: float = 0.8, zoom: tuple[float, float] = (1.0, 1.0),
                 rotation: float = 0.0, background: str = "black") -> None:
        super().__init__(p=p, background=background)
        if not 0 <= low <= high or zoom[0] <= 0 or zoom[0] > zoom[1]:
            raise UserError("LogConformal needs 0 <= low <= high and 0 < zoom[0] <= zoom[1]")
        self.low, self.high, self.zoom, self.rotation = low, high, tuple(zoom), rotation

    def sample(self, g: torch.Generator | None = None) -> dict[str, Any]:
        u = torch.rand(4, generator=g).tolist()
        magnitude = self.low + u[0] * (self.high - self.low)
        angle = u[1] * 2 * math.pi
        zoom = self.zoom[0] + u[2] * (self.zoom[1] - self.zoom[0])
        theta = (u[3] * 2 - 1) * self.rotation
        return {"lam": complex(magnitude * math.cos(angle), magnitude * math.sin(angle)), "zoom": zoom,
                "theta": theta}

    def grid(self, params: dict[str, Any], height: int, width: int) -> torch.Tensor:
        lam = params["lam"]
        return lcm_grid(torch.tensor([lam.real]), torch.tensor([lam.imag]), height, width, zoom=params["zoom"],
                        rotation=params["theta"], padded=self.background == "padded")

    def forward_map(self, params: dict[str, Any], z: torch.Tensor) -> torch.Tensor:
        lam, s = complex(params["lam"]), params["zoom"] * complex(math.cos(params["theta"]),
                                                                  math.sin(params["theta"]))
        if abs(lam) < 1e-6:
            return z * s
        return torch.log(1 + lam * s * z) / lam
