"""View generation for joint-embedding SSL: image → augmentations → views (the JEAM frame).

A ``ViewGenerator`` is built from a list of view specs (e.g. SimCLR's two global crops, or DINO's two global and
several local crops). Each view's pipeline is RandomResizedCrop(size, scale) + flip, colour jitter, grayscale, and
any registered augmentation inserted at a named place: ``before_crop`` (on the full image, as MPD does for SimCLR),
``after_crop`` (on the crop, as MPD does for DINO), or ``end``. Everything runs batched on the training device.
"""

from __future__ import annotations

import dataclasses

import torch

from ssl_robustbench.errors import UserError
from ssl_robustbench.transforms.augment import AUGMENTATIONS, AugmentStep, compose

PLACES = ("before_crop", "after_crop", "end")


@dataclasses.dataclass(frozen=True)
class AugInsert:
    """A registered augmentation (``name`` with ``args``) inserted at ``at`` (one of ``PLACES``)."""

    name: str
    at: str = "before_crop"
    args: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class ViewSpec:
    """``count`` views of side ``size`` (None: ``size_fraction`` of the run's view size, e.g. 0.4 for local
    crops) cropped with RandomResizedCrop ``scale`` — or, with ``pad``, RandomCrop(padding ``pad``) at the input's
    own size (DeACL's weak views)."""

    name: str = "global"
    count: int = 2
    size: int | None = None
    size_fraction: float = 1.0
    scale: tuple[float, float] = (0.2, 1.0)
    color_strength: float | None = None
    jitter_p: float = 0.8
    gray_p: float = 0.2
    insert: tuple[AugInsert, ...] = ()
    pad: int | None = None


#: Where robust view generation goes by default, per method (the MPD authors' presets; LCM follows MPD's place).
PRESETS = {
    ("mpd", "simclr"): AugInsert("mpd", "before_crop", {"p": 0.8, "low": 0.2, "high": 0.4, "d": 0.75}),
    ("mpd", "dino"): AugInsert("mpd", "after_crop", {"p": 0.8, "low": 0.1, "high": 0.3, "d": 1.0}),
    ("lcm", "simclr"): AugInsert("lcm", "before_crop", {"p": 0.8, "low": 0.3, "high": 0.8}),
    ("lcm", "dino"): AugInsert("lcm", "after_crop", {"p": 0.8, "low": 0.3, "high": 0.6}),
}


def preset(name: str, method: str) -> AugInsert:
    """The insertion of augmentation ``name`` for ``method`` (``--aug mpd``): the method's preset, else DINO's
    (after the crop) for multi-crop methods and SimCLR's (before the crop) for the others."""
    AUGMENTATIONS.get(name)  # an unknown name is a UserError with close matches
    family = method if (name, method) in PRESETS else ("dino" if method in ("dino", "swav") else "simclr")
    return PRESETS.get((name, family), AugInsert(name))


class ViewGenerator:
    """Builds every view of a batch: ``generator(x, g)`` → list of [B, 3, s, s] tensors in [0, 1], in spec order."""

    def __init__(self, specs: list[ViewSpec], *, default_size: int, color_strength: float,
                 extra: tuple[AugInsert, ...] = ()) -> None:
        if not specs:
            raise UserError("a view generator needs at least one view spec")
        self.specs = specs
        self.pipelines = []
        for spec in specs:
            if spec.count < 1:
                raise UserError(f"view {spec.name!r}: count must be ≥ 1")
            inserts = (*spec.insert, *extra)
            for ins in inserts:
                if ins.at not in PLACES:
                    raise UserError(f"augmentation {ins.name!r}: 'at' must be one of {', '.join(PLACES)}")
            self.pipelines.append(compose(steps(spec, default_size=default_size, color_strength=color_strength,
                                                inserts=inserts)))

    @property
    def num_views(self) -> int:
        return sum(s.count for s in self.specs)

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> list[torch.Tensor]:
        return [pipeline(x, g) for spec, pipeline in zip(self.specs, self.pipelines, strict=True)
                for _ in range(spec.count)]


def steps(spec: ViewSpec, *, default_size: int, color_strength: float,
          inserts: tuple[AugInsert, ...] = ()) -> list[AugmentStep]:
    """The ordered augmentation steps of one view."""
    s = spec.color_strength if spec.color_strength is not None else color_strength
    at = {place: [AugmentStep(i.name, dict(i.args)) for i in inserts if i.at == place] for place in PLACES}
    size = spec.size or max(8, round(default_size * spec.size_fraction))
    crop = (AugmentStep("padded_crop", {"pad": spec.pad}) if spec.pad is not None else
            AugmentStep("random_resized_crop", {"size": size, "scale": tuple(spec.scale)}))
    jitter = AugmentStep("color_jitter", {"brightness": 0.8 * s, "contrast": 0.8 * s, "saturation": 0.8 * s,
                                          "hue": 0.2 * s, "p": spec.jitter_p})
    gray = AugmentStep("grayscale", {"p": spec.gray_p})
    return [*at["before_crop"], crop, *at["after_crop"], jitter, gray, *at["end"]]
