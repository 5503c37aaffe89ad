"""Peer implementations timed side by side with ours, installed by ``make perf`` into their own folder
(``.perf-peers/``, from ``perf/requirements-peers.txt``): they are not project dependencies."""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

DEFAULT_ROOT = Path(__file__).resolve().parents[1] / ".perf-peers"


def load_imaug(root: Path = DEFAULT_ROOT):
    """``imagecorruptions-imaug`` (numba glass blur) as module ``imagecorruptions_imaug``: its package is named
    ``imagecorruptions`` too, so it is loaded from ``root`` under another name, beside the reference package.
    None where it is not installed."""
    init = Path(root) / "imagecorruptions" / "__init__.py"
    if not init.exists():
        return None
    if str(root) not in sys.path:
        sys.path.append(str(root))  # numba, llvmlite; appended, so numpy & co. still come from the environment
    spec = importlib.util.spec_from_file_location("imagecorruptions_imaug", init,
                                                  submodule_search_locations=[str(init.parent)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def pil_jpeg_roundtrip(image: np.ndarray, quality: int = 85) -> np.ndarray:
    """One uint8 HWC image saved and reloaded as JPEG by PIL, as ``make_imagenet_c.py`` stores each image."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer))
