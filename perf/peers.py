"""Peer implementations timed side by side with ours, installed by ``make perf`` into their own folder
(``.perf-peers/``, from ``perf/requirements-peers.txt``): they are not project dependencies."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

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

