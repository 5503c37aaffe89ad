"""MPD and LCM for detection, segmentation and keypoints: ``torchvision.transforms.v2`` transforms that warp an
image with its boxes, masks and points under one sampled parameter set (MPD: Chhipa et al., ECCV 2024, whose
"MPD-OD" transforms boxes along with the image; LCM: ``transforms/lcm.py``).

Both maps are conformal with closed-form inverses, so every target is mapped exactly:

- images (and video frames) are resampled as the batched view generators do (``mobius_warp``, ``lcm_warp``:
  bilinear, corner-aligned); masks by index on the same grid (nearest: any id of any dtype stays that id);
- a point moves forward through the map: Möbius w = z·d / (1 − c·z) (the inverse of the sampling map
  z = w / (c w + d)); LCM w = log(1 + λ s z) / λ (inverse of z = (e^{λw} − 1) / (λ s));
- a box becomes the tight box of its warped region's visible part: the region is bounded by the image of its
  boundary (a conformal map sends boundary to boundary), traced densely, and its visible part's extreme points come
  from ``transforms/regions.py`` (no clipping, so no zero-area edge along a side). The LCM boundary is traced on a
  continuous branch of the logarithm (unwrapped, with every 2πi/λ copy the view can show; a box holding the branch
  point −1/(λs) becomes the unbounded region left of its lifted boundary); a Möbius box holding the pole 1/c
  becomes the outside of its image. Rotated boxes become the smallest rotated box of the visible region.
- a box that no warp can make valid (zero or negative size) stays degenerate (a zero-size box at its mapped
  corner); a box whose region leaves the image vanishes and is dropped with its label and detection mask, as
  ``SanitizeBoundingBoxes`` would drop it. Nothing else is dropped, and p = 0 returns the sample unchanged.

Key points are in torchvision's pixel-index coordinates (a point on pixel column i has x = i); boxes in any
``BoundingBoxFormat`` (edge coordinates, as torchvision keeps them). Parameters are plain floats (JSON).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from torch.utils._pytree import tree_flatten, tree_unflatten
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from ssl_robustbench.errors import UserError
from ssl_robustbench.transforms.lcm import lcm_grid
from ssl_robustbench.transforms.mobius import BACKGROUNDS, mobius_grid
from ssl_robustbench.transforms.regions import inside_polygon, smallest_rotated_box, tight_box, visible_points

#: PD's four views: the axis and sign of c (right: +real, left: −real, bottom: +imaginary, top: −imaginary)
VIEWS = {"right": (1.0, 0.0), "left": (-1.0, 0.0), "bottom": (0.0, 1.0), "top": (0.0, -1.0)}
STEP = 0.25  # pixels between traced boundary points, in the input and (after one refinement) in the output
_MAX_SPLIT = 64  # the most pieces one traced segment is split into where the map stretches it
Format = tv_tensors.BoundingBoxFormat


class Canvas:
    """Pixel-index ↔ normalized complex coordinates of an H × W image (corner-aligned: index 0 → −1, W − 1 → 1)."""

    def __init__(self, height: int, width: int) -> None:
        self.height, self.width = height, width
        self.kx, self.ky = max(width - 1, 1) / 2, max(height - 1, 1) / 2

    def to_norm(self, xy: np.ndarray) -> np.ndarray:
        return (xy[..., 0] / self.kx - 1) + 1j * (xy[..., 1] / self.ky - 1)

    def from_norm(self, z: np.ndarray) -> np.ndarray:
        return np.stack(((z.real + 1) * self.kx, (z.imag + 1) * self.ky), axis=-1)


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
        """One draw of the map's parameters as plain floats (from ``g``, else torch's global generator)."""
        raise NotImplementedError

    def grid(self, params: dict[str, Any], height: int, width: int, device: torch.device) -> torch.Tensor:
        """[1, H, W, 2] input coordinates of every output pixel."""
        raise NotImplementedError

    def forward_map(self, params: dict[str, Any], z: np.ndarray) -> np.ndarray:
        """Normalized input points (complex) → where they land in the output (principal branch)."""
        raise NotImplementedError

    def derivative(self, params: dict[str, Any], z: np.ndarray) -> np.ndarray:
        """f′ at normalized input points: the map's local rotation (arg) and scale (modulus)."""
        raise NotImplementedError

    def lifts(self, params: dict[str, Any], z: np.ndarray, canvas: Canvas) -> tuple[list[np.ndarray], bool]:
        """A traced closed boundary ``z`` → the closed output outlines (normalized, complex) whose insides make up
        the warped region, and whether the region is their outside instead (a pole inside)."""
        raise NotImplementedError

    # --- the v2 machinery ----------------------------------------------------------------------------------------
    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        _check_canvases(flat_inputs)
        return {"apply": bool(torch.rand(()) < self.p), **self.sample()}

    def forward(self, *inputs: Any) -> Any:
        sample = inputs if len(inputs) > 1 else inputs[0]
        flat, spec = tree_flatten(sample)
        self.check_inputs(flat)
        needs = self._needs_transform_list(flat)
        params = self.make_params([x for x, n in zip(flat, needs, strict=True) if n])
        if not params["apply"]:
            return sample
        out = [self.transform(x, params) if n else x for x, n in zip(flat, needs, strict=True)]
        return _drop_vanished(flat, out, spec)

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not params["apply"]:
            return inpt
        if isinstance(inpt, tv_tensors.BoundingBoxes):
            return self._boxes(inpt, params)
        if isinstance(inpt, tv_tensors.KeyPoints):
            moved = self.move_points(params, inpt.as_subclass(torch.Tensor), *inpt.canvas_size)
            return tv_tensors.wrap((moved if inpt.dtype.is_floating_point else moved.round()).to(inpt.dtype),
                                   like=inpt)
        if isinstance(inpt, tv_tensors.Mask):
            return tv_tensors.wrap(self._nearest(inpt.as_subclass(torch.Tensor), params), like=inpt)
        if isinstance(inpt, (tv_tensors.Image, tv_tensors.Video)):
            return tv_tensors.wrap(self._bilinear(_channels_first(inpt), params), like=inpt)
        if isinstance(inpt, torch.Tensor) and not isinstance(inpt, tv_tensors.TVTensor):  # a plain image tensor
            return self._bilinear(inpt, params) if inpt.ndim >= 2 else inpt
        if isinstance(inpt, PIL.Image.Image):
            return TF.to_pil_image(self._bilinear(TF.pil_to_tensor(inpt), params))
        return inpt

    # --- pixels ----------------------------------------------------------------------------------------------------
    def _grid_for(self, x: torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
        height, width = x.shape[-2:]
        if height == 0 or width == 0:
            raise UserError(f"a {height}×{width} image has nothing to warp")
        return self.grid(params, height, width, x.device)

    def _bilinear(self, x: torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
        """Resamples [..., H, W] bilinearly on the map's grid (integers rounded back; 32/64-bit in float64)."""
        shape, dtype = x.shape, x.dtype
        grid = self._grid_for(x, params)
        work = torch.float64 if dtype in (torch.int32, torch.int64, torch.float64) else torch.float32
        flat = x.reshape(-1, 1, *shape[-2:]).to(work)
        out = F.grid_sample(flat, grid.to(work).expand(len(flat), -1, -1, -1), mode="bilinear",
                            padding_mode="zeros", align_corners=True)
        if dtype == torch.bool:
            out = out > 0.5
        elif not dtype.is_floating_point:
            info = torch.iinfo(dtype)
            out = out.round().clamp(info.min, info.max)
        return out.to(dtype).reshape(shape)

    def _nearest(self, x: torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
        """Resamples [..., H, W] by index (the nearest input pixel, as ``grid_sample`` rounds): values are copied,
        never computed, so instance ids of any size survive; zeros where the grid leaves the image."""
        height, width = x.shape[-2:]
        grid = self._grid_for(x, params)[0].float()
        ix = torch.round((grid[..., 0] + 1) / 2 * (width - 1))
        iy = torch.round((grid[..., 1] + 1) / 2 * (height - 1))
        valid = (ix >= 0) & (ix <= width - 1) & (iy >= 0) & (iy <= height - 1)
        index = (iy.clamp(0, height - 1) * width + ix.clamp(0, width - 1)).long().reshape(-1)
        out = x.reshape(*x.shape[:-2], -1).index_select(-1, index).reshape(x.shape)
        return torch.where(valid, out, torch.zeros((), dtype=x.dtype, device=x.device))

    # --- points ----------------------------------------------------------------------------------------------------
    def move_points(self, params: dict[str, Any], xy: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Points [..., 2] in pixel-index coordinates of an image of ``height`` × ``width`` → where the map moves
        them (float64, on ``xy``'s device; a point at the map's pole becomes non-finite)."""
        canvas = Canvas(height, width)
        with np.errstate(all="ignore"):
            moved = canvas.from_norm(self.forward_map(params, canvas.to_norm(xy.detach().cpu().double().numpy())))
        return torch.from_numpy(moved).to(xy.device)

    def orient_points(self, params: dict[str, Any], xy: np.ndarray, angle: np.ndarray, height: int,
                      width: int) -> tuple[np.ndarray, np.ndarray]:
        """The new direction (radians, atan2 in pixel coordinates, y down) of a direction ``angle`` at each point,
        and the factor its scale is multiplied by: the pixel-space Jacobian D·J_f·D⁻¹ (D the per-axis pixel scale)
        applied to the direction; the scale factor √det = |f′| (exactly the local rotation arg f′ and scale |f′|
        where the image is square)."""
        canvas = Canvas(height, width)
        with np.errstate(all="ignore"):
            f1 = self.derivative(params, canvas.to_norm(xy))
        dx = f1.real * np.cos(angle) - f1.imag * np.sin(angle) * canvas.kx / canvas.ky
        dy = f1.imag * np.cos(angle) * canvas.ky / canvas.kx + f1.real * np.sin(angle)
        return np.arctan2(dy, dx), np.abs(f1)

    # --- boxes -----------------------------------------------------------------------------------------------------
    def _boxes(self, boxes: tv_tensors.BoundingBoxes, params: dict[str, Any]) -> tv_tensors.BoundingBoxes:
        height, width = boxes.canvas_size
        data = boxes.as_subclass(torch.Tensor)
        if not bool(torch.isfinite(data).all()):
            raise UserError("a bounding box has a non-finite coordinate (NaN or inf); drop or fix it first")
        rotated = tv_tensors.is_rotated_bounding_format(boxes.format)
        corner_format = Format.XYXYXYXY if rotated else Format.XYXY
        rows = data.detach().cpu().double().reshape(-1, data.shape[-1])
        corners = TF.convert_bounding_box_format(rows, old_format=boxes.format, new_format=corner_format).numpy()
        degenerate = _degenerate(rows, boxes.format).numpy()
        canvas = Canvas(height, width)
        out = np.zeros((len(rows), corners.shape[1]))
        for i, row in enumerate(corners):
            quad = row.reshape(4, 2) if rotated else row[[0, 1, 2, 1, 2, 3, 0, 3]].reshape(4, 2)
            if degenerate[i]:  # kept degenerate: a zero-size box where its first corner lands
                corner = canvas.from_norm(self.forward_map(params, canvas.to_norm(quad[:1] - 0.5)))[0] + 0.5
                out[i] = np.tile(np.nan_to_num(corner), len(row) // 2)
                continue
            visible = self.visible_region(params, quad, canvas)
            if rotated:
                rect = smallest_rotated_box(visible, self._width_direction(params, quad, canvas)) \
                    if len(visible) else None
                if rect is not None:
                    out[i] = rect.reshape(-1)
            else:
                box = tight_box(visible)
                if box is not None:
                    out[i] = box
        result = TF.convert_bounding_box_format(torch.from_numpy(out), old_format=corner_format,
                                                new_format=boxes.format)
        if not data.dtype.is_floating_point:
            result = result.round()
        return tv_tensors.wrap(result.to(data.dtype).reshape(data.shape).to(data.device), like=boxes)

    def _width_direction(self, params: dict[str, Any], quad: np.ndarray, canvas: Canvas) -> np.ndarray:
        """Where the map turns a rotated box's width direction (corner 1 → corner 2), at the box's centre."""
        edge = quad[1] - quad[0]
        angle, _ = self.orient_points(params, quad.mean(axis=0, keepdims=True) - 0.5,
                                      np.array([math.atan2(edge[1], edge[0])]), canvas.height, canvas.width)
        return np.array([math.cos(angle[0]), math.sin(angle[0])]) if np.isfinite(angle[0]) else edge

    def visible_region(self, params: dict[str, Any], polygon: np.ndarray, canvas: Canvas) -> np.ndarray:
        """The extreme points [K, 2] (output edge coordinates) of the visible part of the warped region of a simple
        ``polygon`` [N, 2] (input edge coordinates; a box's four corners in order)."""
        with np.errstate(all="ignore"):
            z = self._trace(params, polygon - 0.5, canvas)  # edge x ↔ index x − ½ of the pixel centres it holds
            outlines, outside = self.lifts(params, z, canvas)
            found = []
            for outline in outlines:
                xy = canvas.from_norm(outline) + 0.5
                xy = xy[np.isfinite(xy).all(axis=1)]
                found.append(visible_points(xy, canvas.width, canvas.height, outside=outside))
        return np.concatenate(found) if found else np.zeros((0, 2))

    def outline(self, params: dict[str, Any], polygon: np.ndarray, height: int, width: int, *,
                step: float) -> np.ndarray:
        """A polygon [N, 2] (edge coordinates) → its warped outline [M, 2], traced ``step`` pixels apart (straight
        edges become the map's curves; a point at the pole is left out)."""
        canvas = Canvas(height, width)
        with np.errstate(all="ignore"):
            moved = canvas.from_norm(self.forward_map(params, self._trace(params, polygon - 0.5, canvas, step)))
        return moved[np.isfinite(moved).all(axis=1)] + 0.5

    def _trace(self, params: dict[str, Any], polygon: np.ndarray, canvas: Canvas, step: float = STEP) -> np.ndarray:
        """The closed outline through ``polygon``'s corners (pixel-index coordinates) as normalized points, ``step``
        pixels apart in the input, and split again where the map stretches a step to more than ``step`` pixels."""
        ends = np.roll(polygon, -1, axis=0)
        pieces = []
        for a, b in zip(polygon, ends, strict=True):
            n = max(1, math.ceil(float(np.hypot(*(b - a))) / step))
            pieces.append(a + np.linspace(0.0, 1.0, n, endpoint=False)[:, None] * (b - a))
        z = canvas.to_norm(np.concatenate(pieces))
        moved = canvas.from_norm(self.forward_map(params, z))
        gap = np.hypot(*(np.roll(moved, -1, axis=0) - moved).T)
        splits = np.clip(np.ceil(np.nan_to_num(gap / step, nan=_MAX_SPLIT, posinf=_MAX_SPLIT)), 1, _MAX_SPLIT)
        splits = splits.astype(np.int64)
        owner = np.repeat(np.arange(len(z)), splits)
        t = (np.arange(len(owner)) - np.repeat(np.cumsum(splits) - splits, splits)) / np.repeat(splits, splits)
        return z[owner] + t * (np.roll(z, -1)[owner] - z[owner])


def _channels_first(image: torch.Tensor) -> torch.Tensor:
    """An Image/Video as [..., C, H, W]; a channels-last array wrapped as an Image is refused (it would be warped
    along the wrong axes)."""
    if image.ndim >= 3 and image.shape[-3] not in (1, 2, 3, 4) and image.shape[-1] in (1, 3, 4):
        raise UserError(f"an image of shape {tuple(image.shape)} looks channels-last (H, W, C); torchvision images "
                        "are (C, H, W): permute it (x.permute(2, 0, 1)) before wrapping it as an Image")
    return image.as_subclass(torch.Tensor)


def _check_canvases(flat_inputs: list[Any]) -> None:
    """Every image, video, mask, box set and key-point set of a sample must share one canvas: a box or mask made
    for another size would be warped by the wrong map."""
    sizes = []
    for x in flat_inputs:
        if isinstance(x, (tv_tensors.BoundingBoxes, tv_tensors.KeyPoints)):
            sizes.append((type(x).__name__, tuple(x.canvas_size)))
        elif isinstance(x, (tv_tensors.Image, tv_tensors.Video)):
            sizes.append((type(x).__name__, tuple(_channels_first(x).shape[-2:])))
        elif isinstance(x, torch.Tensor) and x.ndim >= 2:  # a mask, or the image as a plain tensor
            sizes.append((type(x).__name__, tuple(x.shape[-2:])))
        elif isinstance(x, PIL.Image.Image):
            sizes.append(("PIL image", (x.size[1], x.size[0])))
    if len({size for _, size in sizes}) > 1:
        listed = ", ".join(f"{name} {h}×{w}" for name, (h, w) in sizes)
        raise UserError(f"one sample must share one canvas (height×width), got {listed}")


def _degenerate(rows: torch.Tensor, fmt: Format) -> torch.Tensor:
    """Boxes [N, k] that hold no area in their own format (zero or negative width or height; XYXYXYXY: corners in
    the wrong turn or collinear)."""
    if fmt == Format.XYXY:
        return (rows[:, 2] <= rows[:, 0]) | (rows[:, 3] <= rows[:, 1])
    if fmt == Format.XYXYXYXY:
        x, y = rows[:, 0::2], rows[:, 1::2]
        return (x * y.roll(-1, 1) - x.roll(-1, 1) * y).sum(1) <= 0
    return (rows[:, 2] <= 0) | (rows[:, 3] <= 0)


def _drop_vanished(flat_in: list[Any], flat_out: list[Any], spec: Any) -> Any:
    """The output sample without the boxes the warp made vanish (valid before, no area after), and — where the
    sample holds one box set — without their labels (a ``labels`` entry) and detection masks ([N, H, W]), as
    ``SanitizeBoundingBoxes`` drops them. Degenerate boxes that came in stay in."""
    pairs = [(i, x, y) for i, (x, y) in enumerate(zip(flat_in, flat_out, strict=True))
             if isinstance(x, tv_tensors.BoundingBoxes)]
    drops = {}
    for i, before, after in pairs:
        gone = _degenerate(_rows(after), after.format) & ~_degenerate(_rows(before), before.format)
        if before.ndim == 2 and bool(gone.any()):
            drops[i] = ~gone
    if not drops:
        return tree_unflatten(flat_out, spec)
    out = list(flat_out)
    for i, keep in drops.items():
        out[i] = tv_tensors.wrap(out[i][keep.to(out[i].device)], like=out[i])
    if len(pairs) == 1:
        keep = next(iter(drops.values()))
        labels = {id(v) for v in _labels(tree_unflatten(flat_in, spec))}
        for j, item in enumerate(out):
            per_box = id(flat_in[j]) in labels or (isinstance(item, tv_tensors.Mask) and item.ndim == 3)
            if j not in drops and per_box and isinstance(item, torch.Tensor) and len(item) == len(keep):
                kept = item[keep.to(item.device)]
                out[j] = tv_tensors.wrap(kept, like=item) if isinstance(item, tv_tensors.TVTensor) else kept
    return tree_unflatten(out, spec)


def _rows(boxes: tv_tensors.BoundingBoxes) -> torch.Tensor:
    return boxes.as_subclass(torch.Tensor).reshape(-1, boxes.shape[-1]).cpu()


def _labels(sample: Any) -> list[torch.Tensor]:
    """The tensors under a ``labels`` key (any case) anywhere in the sample's dicts."""
    found, stack = [], [sample]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found += [v for k, v in item.items() if isinstance(k, str) and k.lower() == "labels"
                      and isinstance(v, torch.Tensor)]
            stack += list(item.values())
        elif isinstance(item, (list, tuple)):
            stack += list(item)
    return found


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
        if not 0 < low <= high or d == 0 or not math.isfinite(d) or not math.isfinite(high):
            raise UserError("MobiusPerspective needs 0 < low <= high and a finite, non-zero d")
        if view is not None and view not in VIEWS:
            raise UserError(f"view must be one of {', '.join(VIEWS)}, not {view!r}")
        self.low, self.high, self.d, self.view = low, high, d, view

    def sample(self, g: torch.Generator | None = None) -> dict[str, Any]:
        if self.view is not None:
            sx, sy = VIEWS[self.view]
            return {"c": [sx * self.high, sy * self.high]}
        u = torch.rand(3, generator=g).tolist()
        magnitude = self.low + u[0] * (self.high - self.low)
        sign = 1.0 if u[1] < 0.5 else -1.0
        return {"c": [sign * magnitude, 0.0] if u[2] < 0.5 else [0.0, sign * magnitude]}

    def grid(self, params: dict[str, Any], height: int, width: int, device: torch.device) -> torch.Tensor:
        c_real, c_imag = params["c"]
        return mobius_grid(torch.tensor([c_real], device=device), torch.tensor([c_imag], device=device), self.d,
                           height, width, padded=self.background == "padded")

    def forward_map(self, params: dict[str, Any], z: np.ndarray) -> np.ndarray:
        return z * self.d / (1 - complex(*params["c"]) * z)

    def derivative(self, params: dict[str, Any], z: np.ndarray) -> np.ndarray:
        return self.d / (1 - complex(*params["c"]) * z) ** 2

    def lifts(self, params: dict[str, Any], z: np.ndarray, canvas: Canvas) -> tuple[list[np.ndarray], bool]:
        c = complex(*params["c"])
        outline = self.forward_map(params, z)
        if c == 0:
            return [outline], False
        pole = np.array([[(1 / c).real, (1 / c).imag]])
        holds_pole = bool(inside_polygon(pole, np.stack((z.real, z.imag), axis=1))[0])
        return [outline], holds_pole


class LogConformal(_ConformalView):
    """LCM (log-conformal map) for images with boxes, masks and key points: |λ| ~ U(low, high) with a uniform
    direction, zoom r ~ U(zoom), rotation θ ~ U(−rotation, rotation) (radians); see ``transforms/lcm.py``."""

    def __init__(self, *, p: float = 1.0, low: float = 0.3, high: float = 0.8, zoom: tuple[float, float] = (1.0, 1.0),
                 rotation: float = 0.0, background: str = "black") -> None:
        super().__init__(p=p, background=background)
        zoom = tuple(float(v) for v in zoom)
        if not 0 <= low <= high or len(zoom) != 2 or not 0 < zoom[0] <= zoom[1] or not math.isfinite(high) \
                or not math.isfinite(zoom[1]) or not math.isfinite(rotation):
            raise UserError("LogConformal needs 0 <= low <= high and 0 < zoom[0] <= zoom[1], all finite")
        self.low, self.high, self.zoom, self.rotation = low, high, zoom, rotation

    def sample(self, g: torch.Generator | None = None) -> dict[str, Any]:
        u = torch.rand(4, generator=g).tolist()
        magnitude = self.low + u[0] * (self.high - self.low)
        angle = u[1] * 2 * math.pi
        return {"lam": [magnitude * math.cos(angle), magnitude * math.sin(angle)],
                "zoom": self.zoom[0] + u[2] * (self.zoom[1] - self.zoom[0]), "theta": (u[3] * 2 - 1) * self.rotation}

    def grid(self, params: dict[str, Any], height: int, width: int, device: torch.device) -> torch.Tensor:
        lam_real, lam_imag = params["lam"]
        return lcm_grid(torch.tensor([lam_real], device=device), torch.tensor([lam_imag], device=device), height,
                        width, zoom=params["zoom"], rotation=params["theta"], padded=self.background == "padded")

    @staticmethod
    def _constants(params: dict[str, Any]) -> tuple[complex, complex]:
        return complex(*params["lam"]), params["zoom"] * complex(math.cos(params["theta"]), math.sin(params["theta"]))

    def forward_map(self, params: dict[str, Any], z: np.ndarray) -> np.ndarray:
        lam, s = self._constants(params)
        return z * s if abs(lam) < 1e-6 else np.log(1 + lam * s * z) / lam

    def derivative(self, params: dict[str, Any], z: np.ndarray) -> np.ndarray:
        lam, s = self._constants(params)
        return np.full_like(z, s) if abs(lam) < 1e-6 else s / (1 + lam * s * z)

    def lifts(self, params: dict[str, Any], z: np.ndarray, canvas: Canvas) -> tuple[list[np.ndarray], bool]:
        """The boundary's logarithm u = log(1 + λ s z), unwrapped along the outline; the view shows u = λ w for w in
        the image, so every copy u + 2πik that can reach it is an outline. An outline that winds around the branch
        point (its unwrapped end is 2π off its start) bounds the region left of it, which every copy continues:
        the copies are joined into one rising curve and closed far to the left of the view."""
        lam, s = self._constants(params)
        if abs(lam) < 1e-6:
            return [z * s], False
        u = np.log(np.maximum(np.abs(1 + lam * s * z), 1e-300)) + 1j * np.unwrap(np.angle(1 + lam * s * z))
        closing = np.angle((1 + lam * s * z[0]) / (1 + lam * s * z[-1]))
        turns = round(float(u[-1].imag + closing - u[0].imag) / (2 * math.pi))
        corners = lam * (np.array([-1, 1, 1, -1]) * (1 + 1 / canvas.kx)
                         + 1j * np.array([-1, -1, 1, 1]) * (1 + 1 / canvas.ky))
        reach = float(np.abs(corners.imag).max())  # the view's u spans Im u ∈ [−reach, reach]
        copies = range(-math.ceil(reach / (2 * math.pi)) - 2, math.ceil(reach / (2 * math.pi)) + 3)
        if turns == 0:  # the copies that can reach the view's band of Im u
            low, high = float(u.imag.min()), float(u.imag.max())
            return [(u + 2j * math.pi * k) / lam for k in copies
                    if high + 2 * math.pi * k >= -reach and low + 2 * math.pi * k <= reach], False
        curve = np.concatenate([u + 2j * math.pi * turns * k for k in copies])
        left = min(float(curve.real.min()), float(corners.real.min())) - 1.0
        closed = np.concatenate((curve, [left + 1j * curve[-1].imag, left + 1j * curve[0].imag]))
        return [closed / lam], False
