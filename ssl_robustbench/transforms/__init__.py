"""Image transforms batched on tensors ([B,3,H,W] in [0,1]): SSL augmentations and Möbius warps (MPD);
corruptions join them with their suite."""

from ssl_robustbench.transforms import augment, mobius  # noqa: F401  (registers augmentations)
