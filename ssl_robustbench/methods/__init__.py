"""SSL methods, one file each: a module ``(backbone, cfg)`` whose ``forward(views) -> dict`` has ``"loss"``.

Each registered class carries its config dataclass as ``Config`` and the number of views it needs.
"""

from ssl_robustbench.methods import simclr  # noqa: F401  (registers)
from ssl_robustbench.methods.base import METHODS

__all__ = ["METHODS"]
