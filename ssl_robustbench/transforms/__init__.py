"""Image transforms batched on tensors ([B,3,H,W] in [0,1]): SSL augmentations, view generation, Möbius (MPD)
and log-conformal (LCM) warps, and the ImageNet-C corruption engine."""

from ssl_robustbench.transforms import augment, lcm, mobius  # noqa: F401  (registers augmentations)
