"""The methods registry and the projector shared by methods."""

from __future__ import annotations

from torch import nn

from ssl_robustbench.registry import Registry

METHODS: Registry[type[nn.Module]] = Registry("method")


def mlp(dims: list[int], *, last_bn: bool = False) -> nn.Sequential:
    """Linear-BN-ReLU layers through ``dims``, the last Linear without ReLU (optionally with BN)."""
    layers: list[nn.Module] = []
    for i in range(len(dims) - 1):
        last = i == len(dims) - 2
        layers.append(nn.Linear(dims[i], dims[i + 1], bias=last and not last_bn))
        if not last:
            layers += [nn.BatchNorm1d(dims[i + 1]), nn.ReLU(inplace=True)]
        elif last_bn:
            layers.append(nn.BatchNorm1d(dims[i + 1], affine=False))
    return nn.Sequential(*layers)
