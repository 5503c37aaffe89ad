"""A small ResNet for 32–96 px images, the backbone of the embedded default and the bundled demo checkpoints."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ssl_robustbench.backbones.base import BACKBONES


class BasicBlock(nn.Module):
    """ResNet basic block (He et al., CVPR 2016): two 3×3 convs with a projection shortcut when shapes change."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class TinyResNet(nn.Module):
    """Stem (3×3 conv stride 2, 3×3 max-pool stride 2) then one basic block per stage, global average pool.

    Args:
        widths: channels of the stages; the first stage keeps the stem's resolution, the others halve it.
    """

    def __init__(self, widths: Sequence[int] = (32, 64, 128, 192)) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 2, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        stages, cin = [], widths[0]
        for i, width in enumerate(widths):
            stages.append(BasicBlock(cin, width, stride=1 if i == 0 else 2))
            cin = width
        self.stages = nn.Sequential(*stages)
        self.num_features = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B,3,H,W] → [B, widths[-1]]."""
        return self.stages(self.stem(x)).mean(dim=(2, 3))


@BACKBONES.register("tiny_resnet")
def tiny_resnet(variant: str | None, *, pool: str | None = None) -> nn.Module:
    """``tiny_resnet`` (widths 32-64-128-192) or ``tiny_resnet/16-32-64-128`` for other widths."""
    widths = tuple(int(w) for w in variant.split("-")) if variant else (32, 64, 128, 192)
    return TinyResNet(widths)
