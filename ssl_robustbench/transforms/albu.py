"""MPD and LCM as Albumentations transforms (optional: ``pip install albumentations``), with the same boxes,
masks and key-point support as the torchvision ones (``transforms/geometric.py``), as the authors' ``mobius-mpd``
offers Albumentations for images. Parameters are drawn from Albumentations' own generator, so its ``seed``
reproduces a pipeline.

    import albumentations as A
    from ssl_robustbench.transforms.albu import AlbuMobiusPerspective
    pipeline = A.Compose([AlbuMobiusPerspective(p=0.8)], bbox_params=A.BboxParams(format="coco"),
                         keypoint_params=A.KeypointParams(format="xy"))
"""

from __future__ import annotations

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


class _AlbuConformal(A.DualTransform):
    """Runs a ``_ConformalView`` on Albumentations' targets (HWC arrays, normalized boxes, pixel key points)."""

    view_class: type[_ConformalView]

    def __init__(self, p: float = 0.5, **settings: Any) -> None:
        super().__init__(p=p)
        self.settings = settings
        self.view = self.view_class(p=1.0, **settings)

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        g = torch.Generator().manual_seed(int(self.random_generator.integers(2**62)))
        return {"map": {"apply": True, **self.view.sample(g)}}

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        return self._warp_hwc(img, tv_tensors.Image, params)

    def apply_to_mask(self, mask: np.ndarray, **params: Any) -> np.ndarray:
        return self._warp_hwc(mask, tv_tensors.Mask, params)

    def _warp_hwc(self, array: np.ndarray, kind: type, params: dict[str, Any]) -> np.ndarray:
        """An Albumentations HW or HWC array through the view as ``kind`` (Image: bilinear; Mask: nearest)."""
        x = torch.from_numpy(np.ascontiguousarray(array))
        x = x.permute(2, 0, 1) if x.ndim == 3 else x[None]
        out = self.view.transform(kind(x), params["map"]).as_subclass(torch.Tensor)
        return (out.permute(1, 2, 0) if array.ndim == 3 else out[0]).numpy()

    def apply_to_bboxes(self, bboxes: np.ndarray, **params: Any) -> np.ndarray:
        if len(bboxes) == 0:
            return bboxes
        height, width = params["shape"][:2]
        scale = np.array([width, height, width, height], dtype=np.float64)
        boxes = tv_tensors.BoundingBoxes(torch.from_numpy(bboxes[:, :4] * scale), format="XYXY",
                                         canvas_size=(height, width))
        moved = self.view.transform(boxes, params["map"]).as_subclass(torch.Tensor).double().numpy() / scale
        out = bboxes.copy()
        out[:, :4] = moved  # a vanished box has zero area: Albumentations' BboxParams filtering drops it
        return out

    def apply_to_keypoints(self, keypoints: np.ndarray, **params: Any) -> np.ndarray:
        if len(keypoints) == 0:
            return keypoints
        height, width = params["shape"][:2]
        points = tv_tensors.KeyPoints(torch.from_numpy(keypoints[:, :2].astype(np.float64)),
                                      canvas_size=(height, width))
        out = keypoints.copy()
        out[:, :2] = self.view.transform(points, params["map"]).as_subclass(torch.Tensor).numpy()
        return out

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("settings",)


class AlbuMobiusPerspective(_AlbuConformal):
    """MPD for Albumentations (``MobiusPerspective``'s settings: low, high, d, view, background)."""

    view_class = MobiusPerspective


class AlbuLogConformal(_AlbuConformal):
    """LCM for Albumentations (``LogConformal``'s settings: low, high, zoom, rotation, background)."""

    view_class = LogConformal
