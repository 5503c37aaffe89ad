"""SSL methods, one file each: a module ``(backbone, cfg)`` whose ``forward(views) -> dict`` has ``"loss"``.

Each registered class carries its config dataclass as ``Config`` and its default views (``methods/base.py``).
"""

from ssl_robustbench.methods import (  # noqa: F401  (importing registers them)
    acl,
    advcl,
    byol,
    deacl,
    dino,
    dynacl_pp,
    moco,
    mocov3,
    redundancy,
    rocl,
    simclr,
    simsiam,
    swav,
)
from ssl_robustbench.methods.base import METHODS

__all__ = ["METHODS"]
