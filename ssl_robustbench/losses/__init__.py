"""SSL losses as pure functions of embeddings, each tested against a naive reference implementation."""

from ssl_robustbench.losses.nt_xent import nt_xent

__all__ = ["nt_xent"]
