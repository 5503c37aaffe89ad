"""The ``imagecorruptions`` package (the ImageNet-C reference) made importable on numpy 2 / scikit-image ≥ 0.19,
and a way to feed it the random draws our engine made, so stochastic corruptions compare pixel by pixel."""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import sys
import types

import numpy as np
import pytest
import torch

from ssl_robustbench.transforms.corruptions.effects import Draws


def _shim_common():
    """numpy 2 / setuptools-free shims both references need: ``np.float_`` and ``pkg_resources``."""
    pytest.importorskip("skimage")
    pytest.importorskip("cv2")
    if not hasattr(np, "float_"):
        np.float_ = np.float64
    if "pkg_resources" not in sys.modules:
        try:
            import pkg_resources  # noqa: F401
        except ImportError:
            sys.modules["pkg_resources"] = types.ModuleType("pkg_resources")
    shim = sys.modules["pkg_resources"]
    if not getattr(shim, "_robustbench_shim", False) and not hasattr(shim, "resource_filename"):
        shim.resource_filename = _resource_filename
        shim._robustbench_shim = True


def _resource_filename(module: str, path: str) -> str:
    """pkg_resources.resource_filename; the ``imagenet_c`` wheel ships without its frost textures, so those come
    from ``imagecorruptions`` (the same six files: ``test_frost_textures_are_hendrycks_files``)."""
    here = os.path.join(os.path.dirname(importlib.import_module(module).__file__), path)
    if os.path.exists(here) or not os.path.basename(path).startswith("frost"):
        return here
    spec = importlib.util.find_spec("imagecorruptions")
    return os.path.join(next(iter(spec.submodule_search_locations)), "frost", os.path.basename(path))


def _gaussian_shim(ref) -> None:
    """scikit-image ≥ 0.19 renamed ``multichannel=True`` to ``channel_axis=-1``."""
    import skimage.filters

    original = skimage.filters.gaussian

    def gaussian(image, sigma=1, multichannel=None, **kwargs):
        if multichannel:
            kwargs["channel_axis"] = -1
        return original(image, sigma=sigma, **kwargs)

    ref.gaussian = gaussian


def load_reference():
    """imports imagecorruptions.corruptions with the shims it needs (skips the test where it is not installed)."""
    _shim_common()
    if importlib.util.find_spec("imagecorruptions") is None:
        pytest.skip("imagecorruptions is not installed")
    ref = importlib.import_module("imagecorruptions.corruptions")
    _gaussian_shim(ref)
    return ref


@functools.cache
def wand_missing() -> str | None:
    """Why ImageMagick (through Wand) cannot run here, or None; answered once, before ``load_hendrycks`` puts
    stand-in ``wand`` modules in ``sys.modules`` (which would import fine afterwards)."""
    try:
        import wand.image  # noqa: F401
    except ImportError as error:
        return f"Wand / ImageMagick unavailable ({error}); apt-get install libmagickwand-dev && pip install Wand"
    return None


def load_hendrycks():
    """imports Hendrycks' own ``imagenet_c.corruptions`` (the code of make_imagenet_c.py, 224² images only) with
    the shims it needs on numpy 2 / scipy / scikit-image; without Wand its ImageMagick corruptions are unusable
    (the caller skips them) but the others still run."""
    _shim_common()
    if importlib.util.find_spec("imagenet_c") is None:
        pytest.skip("imagenet_c (Hendrycks' reference) is not installed: pip install --no-deps imagenet_c==0.0.3")
    if wand_missing():
        for name in ("wand", "wand.image", "wand.api", "wand.color"):
            sys.modules.setdefault(name, types.ModuleType(name))
        sys.modules["wand.image"].Image = object
        sys.modules["wand.api"].library = types.SimpleNamespace(MagickMotionBlurImage=types.SimpleNamespace())
    import scipy.ndimage

    sys.modules.setdefault("scipy.ndimage.interpolation", scipy.ndimage)
    ref = importlib.import_module("imagenet_c.corruptions")
    _gaussian_shim(ref)
    # numpy 2 removed fromstring's binary mode, which the module uses to decode ImageMagick's PNG
    names = {k: getattr(np, k) for k in dir(np) if not k.startswith("__")}
    ref.np = types.SimpleNamespace(**{**names, "fromstring": lambda data, dtype: np.frombuffer(data, dtype)})
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
