"""Backbones: ``build_backbone(arch)`` returns a module mapping [B,3,H,W] normalized pixels to [B, D] features.

Arch names: ``tiny_resnet`` (the embedded default), ``torchvision/<resnet name>``, ``cifar_resnet/<resnet name>``
(CIFAR stem), ``timm/<any timm model>``, ``data2vec2/<vit>`` (data2vec 2.0's post-norm image encoder) and
``transformers/<model_type>`` (built from a checkpoint folder).
"""

from ssl_robustbench.backbones import adapters, data2vec2, tiny  # noqa: F401  (registers builders)
from ssl_robustbench.backbones.base import BACKBONES, ImageClassifier, build_backbone, check_feature_settings

__all__ = ["BACKBONES", "ImageClassifier", "build_backbone", "check_feature_settings"]
