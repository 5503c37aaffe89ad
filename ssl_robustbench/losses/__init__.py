"""SSL losses as pure functions of embeddings, each tested against a naive reference implementation."""

from ssl_robustbench.losses.cosine import byol_loss, negative_cosine
from ssl_robustbench.losses.dino import dino_loss, updated_center
from ssl_robustbench.losses.info_nce import info_nce
from ssl_robustbench.losses.nt_xent import nt_xent
from ssl_robustbench.losses.redundancy import barlow_twins_loss, vicreg_loss
from ssl_robustbench.losses.supcon import multiview_contrastive
from ssl_robustbench.losses.swav import sinkhorn, swav_loss

__all__ = ["barlow_twins_loss", "byol_loss", "dino_loss", "info_nce", "multiview_contrastive", "negative_cosine",
           "nt_xent", "sinkhorn", "swav_loss", "updated_center", "vicreg_loss"]
