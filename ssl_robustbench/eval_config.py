"""``robustbench eval``'s configuration: the core sections (model, data, probe, run) and one section per
registered benchmark suite, whose name, type and defaults the suite itself declares (``Benchmark.Config``)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from ssl_robustbench.config import DataConfig, KNNConfig, ProbeConfig, RunConfig, bounded, check_fields
from ssl_robustbench.errors import UserError


def suite_sections() -> dict[str, type]:
    """Section name → config dataclass of every registered suite that has settings."""
    from ssl_robustbench.benchmarks import BENCHMARKS

    return {b.section: b.Config for b in (BENCHMARKS.get(n) for n in BENCHMARKS.names()) if b.section and b.Config}


#: the shared head every suite scores (unless it trains its own): a fitted linear probe, the authors' released
#: linear head, or weighted k-NN on the training features
HEADS = ("probe", "released", "knn")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """``robustbench eval``: a model (zoo id or checkpoint file), data, probe recipe, suites and their sections.

    ``ignore_keys``: extra regexes of checkpoint keys to drop (e.g. a classifier ``fc\\..*``); ``checkpoint_key``
    the dotted path of the weights inside the checkpoint (e.g. ``state_dict``, DINO's ``teacher``);
    ``strip_prefixes``: key prefixes to strip (e.g. ``backbone.``); ``input_size``
    overrides the card's input side; ``head``: ``probe`` (fit a linear probe) or ``released`` (the linear head the
    method's authors published, named in the zoo card; no probe is fitted) or ``knn`` (DINO's weighted k-NN on
    the training features, section ``knn``). ``label_fraction``: the fraction of
    the training labels every head is fitted on — the probe and the SLF/ALF/AFF finetunes — as a class-balanced
    seed-0 subset (0.01 and 0.1: the semi-supervised protocols; 1: all). ``sections``: each suite's settings,
    read from the top-level key of its name (``adv:``, ``c:`` …) and reachable as ``cfg.<name>``.
    """

    model: str = "embedded-simclr-tinyresnet"
    arch: str | None = None
    ignore_keys: tuple[str, ...] = ()
    checkpoint_key: str | None = None
    strip_prefixes: tuple[str, ...] = ()
    input_size: int | None = bounded(None, low=8, high=4096)
    head: str = "probe"
    label_fraction: float = bounded(1.0, low=0.0, low_open=True, high=1.0)
    data: DataConfig = DataConfig()
    probe: ProbeConfig = ProbeConfig()
    knn: KNNConfig = KNNConfig()
    suites: tuple[str, ...] = ("clean",)
    run: RunConfig = RunConfig()
    sections: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @staticmethod
    def config_sections() -> dict[str, type]:
        return suite_sections()

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise UserError(f"head must be one of {', '.join(HEADS)}, not {self.head!r}")
        check_fields(self, "")
        for pattern in self.ignore_keys:
            try:
                re.compile(pattern)
            except re.error as err:
                raise UserError(f"ignore_keys: bad regex {pattern!r}: {err}") from None
        defaults = {name: kind() for name, kind in suite_sections().items() if name not in self.sections}
        object.__setattr__(self, "sections", {**defaults, **self.sections})

    def __getattr__(self, name: str) -> Any:
        sections = self.__dict__.get("sections", {})
        if name in sections:
            return sections[name]
        raise AttributeError(name)
