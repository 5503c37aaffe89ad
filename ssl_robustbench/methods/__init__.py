"""SSL methods, one file each: a module ``(backbone, cfg)`` whose ``forward(views) -> dict`` has ``"loss"``.

Each registered class carries its config dataclass as ``Config`` and its default views (``methods/base.py``).
"""

from ssl_robustbench.methods import acl, byol, deacl, dino, moco, redundancy, rocl, simclr, simsiam, swav  # noqa: F401  (registers)
from ssl_robustbench.methods.base import METHODS

__all__ = ["METHODS"]
