"""The ``imagecorruptions`` package (the ImageNet-C reference) made importable on numpy 2 / scikit-image ≥ 0.19,
and a way to feed it the random draws our engine made, so stochastic corruptions compare pixel by pixel."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import types

import numpy as np
import pytest
import torch

from ssl_robustbench.transforms.corruptions.effects import Draws


def load_reference():
    """imports imagecorruptions.corruptions with the shims it needs (skips the test where it is not installed)."""
    pytest.importorskip("skimage")
    pytest.importorskip("cv2")
    if importlib.util.find_spec("imagecorruptions") is None:
        pytest.skip("imagecorruptions is not installed")
    if not hasattr(np, "float_"):
        np.float_ = np.float64
    if "pkg_resources" not in sys.modules:
        try:
            import pkg_resources  # noqa: F401
        except ImportError:
            shim = types.ModuleType("pkg_resources")
            shim.resource_filename = lambda module, path: os.path.join(
                os.path.dirname(importlib.import_module(module).__file__), path)
            sys.modules["pkg_resources"] = shim
    import skimage.filters

    ref = importlib.import_module("imagecorruptions.corruptions")
    original = skimage.filters.gaussian

    def gaussian(image, sigma=1, multichannel=None, **kwargs):
        if multichannel:
            kwargs["channel_axis"] = -1
        return original(image, sigma=sigma, **kwargs)

    ref.gaussian = gaussian
    return ref


class RecordingDraws(Draws):
    """Draws that keep every batched array, in call order."""

    def __init__(self, seed: int):
        super().__init__(torch.Generator().manual_seed(seed), torch.device("cpu"))
        self.calls: list[torch.Tensor] = []

    def _keep(self, value):
        self.calls.append(value.detach().cpu())
        return value

    def normal(self, *a, **k):
        return self._keep(super().normal(*a, **k))

    def uniform(self, *a, **k):
        return self._keep(super().uniform(*a, **k))

    def randint(self, *a, **k):
        return self._keep(super().randint(*a, **k))


@contextlib.contextmanager
def replay(draws: RecordingDraws, index: int):
    """Makes numpy's normal/uniform/randint return image ``index``'s recorded draws, in order."""
    queue = [c[index] for c in draws.calls]

    def take(size=None):
        value = queue.pop(0)
        if size is not None and value.ndim >= 2 and tuple(value.shape[1:]) == tuple(size):
            # one batched draw the reference makes row by row (glass blur's per-pixel offsets)
            if len(value) > 1:
                queue.insert(0, value[1:])
            value = value[0]
        if size is None or value.ndim == 0:
            return value.item()
        if value.ndim == 3 and value.shape[0] in (1, 3) and tuple(size)[-1] == value.shape[0]:
            value = value.permute(1, 2, 0)
        value = value.numpy()
        return (value.astype(np.float64) if value.dtype.kind == "f" else value).reshape(size)

    saved = np.random.normal, np.random.uniform, np.random.randint
    np.random.normal = lambda loc=0.0, scale=1.0, size=None: take(size)
    np.random.uniform = lambda low=0.0, high=1.0, size=None: take(size)
    np.random.randint = lambda low, high=None, size=None: take(size)
    try:
        yield
    finally:
        np.random.normal, np.random.uniform, np.random.randint = saved
    assert not queue, f"{len(queue)} recorded draws were not used by the reference"


def reference_batch(ref, name: str, severity: int, images: np.ndarray, draws: RecordingDraws | None = None
                    ) -> np.ndarray:
    """Runs the reference on uint8 [B, H, W, 3] images one at a time (as ``imagecorruptions.corrupt`` does)."""
    from PIL import Image

    out = []
    for i, img in enumerate(images):
        ctx = replay(draws, i) if draws is not None else contextlib.nullcontext()
        with ctx:
            out.append(np.uint8(getattr(ref, name)(Image.fromarray(img), severity)))
    return np.stack(out)
