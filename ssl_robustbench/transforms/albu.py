"""MPD and LCM as Albumentations transforms (optional: ``pip install albumentations``), with the same boxes,
masks and key-point support as the torchvision ones (``transforms/geometric.py``), as the authors' ``mobius-mpd``
offers Albumentations for images. Parameters are drawn from Albumentations' own generator, so its ``seed``
reproduces a pipeline; they are plain floats, so ``ReplayCompose`` records are JSON, and ``A.to_dict`` /
``A.from_dict`` round-trip the settings. Key points keep their orientation and scale through the map (formats
``xya``, ``xys``, ``xyas``, ``xysa``): the angle turns by the map's local rotation and the scale grows by its local
scale (``_ConformalView.orient_points``; exact where the image is square).

    import albumentations as A
    from ssl_robustbench.transforms.albu import AlbuMobiusPerspective
    pipeline = A.Compose([AlbuMobiusPerspective(p=0.8)], bbox_params=A.BboxParams(format="coco"),
                         keypoint_params=A.KeypointParams(format="xyas"))
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors

from ssl_robustbench.errors import UserError
from ssl_robustbench.transforms.geometric import LogConformal, MobiusPerspective, _ConformalView

try:
    import albumentations as A
except ImportError as error:  # pragma: no cover - the optional dependency's message
    raise UserError("the Albumentations binding needs albumentations: pip install albumentations") from error

_ANGLE, _SCALE = 3, 4  # columns of Albumentations' internal key-point array [x, y, z, angle (rad), scale, ...]


class _AlbuConformal(A.DualTransform):
    """Runs a ``_ConformalView`` on Albumentations' targets (HWC arrays, normalized boxes, pixel key points)."""

    conformal: _ConformalView
    settings: tuple[str, ...]

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        g = torch.Generator().manual_seed(int(self.random_generator.integers(2**62)))
        return {"map": {"apply": True, **self.conformal.sample(g)}}

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        return self._warp_hwc(img, tv_tensors.Image, params)

    def apply_to_mask(self, mask: np.ndarray, **params: Any) -> np.ndarray:
        return self._warp_hwc(mask, tv_tensors.Mask, params)

    def _warp_hwc(self, array: np.ndarray, kind: type, params: dict[str, Any]) -> np.ndarray:
        """An Albumentations HW or HWC array through the view as ``kind`` (Image: bilinear; Mask: by index)."""
        x = torch.from_numpy(np.ascontiguousarray(array))
        x = x.permute(2, 0, 1) if x.ndim == 3 else x[None]
        out = self.conformal.transform(kind(x), params["map"]).as_subclass(torch.Tensor)
        return (out.permute(1, 2, 0) if array.ndim == 3 else out[0]).numpy()

    def apply_to_bboxes(self, bboxes: np.ndarray, **params: Any) -> np.ndarray:
        if len(bboxes) == 0:
            return bboxes
        height, width = params["shape"][:2]
        scale = np.array([width, height, width, height], dtype=np.float64)
        boxes = tv_tensors.BoundingBoxes(torch.from_numpy(bboxes[:, :4] * scale), format="XYXY",
                                         canvas_size=(height, width))
        moved = self.conformal.transform(boxes, params["map"]).as_subclass(torch.Tensor).double().numpy() / scale
        out = bboxes.copy()
        out[:, :4] = moved  # a vanished box has zero area: Albumentations' BboxParams filtering drops it
        return out

    def apply_to_keypoints(self, keypoints: np.ndarray, **params: Any) -> np.ndarray:
        if len(keypoints) == 0:
            return keypoints
        height, width = params["shape"][:2]
        xy = keypoints[:, :2].astype(np.float64)
        out = keypoints.copy()
        moved = self.conformal.move_points(params["map"], torch.from_numpy(xy), height, width).numpy()
        out[:, :2] = moved
        if keypoints.shape[1] > _SCALE:
            angle, factor = self.conformal.orient_points(params["map"], xy, keypoints[:, _ANGLE].astype(np.float64),
                                                    height, width)
            out[:, _ANGLE] = np.mod(angle, 2 * math.pi)
            out[:, _SCALE] = keypoints[:, _SCALE] * factor
        return out

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return self.settings


class AlbuMobiusPerspective(_AlbuConformal):
    """MPD for Albumentations: ``MobiusPerspective``'s settings (low, high, d, view, background)."""

    settings = ("low", "high", "d", "view", "background")

    def __init__(self, low: float = 0.1, high: float = 0.3, d: float = 1.0, view: str | None = None,
                 background: str = "black", p: float = 0.5) -> None:
        super().__init__(p=p)
        self.low, self.high, self.d, self.view, self.background = low, high, d, view, background
        self.conformal = MobiusPerspective(p=1.0, low=low, high=high, d=d, view=view, background=background)


class AlbuLogConformal(_AlbuConformal):
    """LCM for Albumentations: ``LogConformal``'s settings (low, high, zoom, rotation, background)."""

    settings = ("low", "high", "zoom", "rotation", "background")

    def __init__(self, low: float = 0.3, high: float = 0.8, zoom: tuple[float, float] = (1.0, 1.0),
                 rotation: float = 0.0, background: str = "black", p: float = 0.5) -> None:
        super().__init__(p=p)
        self.conformal = LogConformal(p=1.0, low=low, high=high, zoom=zoom, rotation=rotation,
                                      background=background)
        self.low, self.high, self.zoom, self.rotation = low, high, list(self.conformal.zoom), rotation
        self.background = background
