"""The ``robustbench eval`` options each benchmark suite adds, known without importing torch, so that
``robustbench eval --help`` starts light. The suites (``ssl_robustbench/benchmarks/``) take their ``options`` from
this table; ``tests/cli/test_startup.py`` keeps the registered suites and the table equal."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class SuiteOption:
    """A ``robustbench eval`` option a suite adds: ``--flag VALUE`` sets ``<section>.<field>``. Suites declaring the
    same flag share one option (``--n-shift`` sets the ``limit`` of c, pd and e)."""

    flag: str
    field: str
    help: str
    type: Any = str
    choices: tuple[str, ...] = ()


#: ``--n-shift``: images per condition of every shift suite that declares it (each sets its own ``limit``).
SHIFT_LIMIT = SuiteOption("--n-shift", "limit", "Images per condition of every shift suite (c, pd, e, v2, r, a, "
                                                "sketch, 3dcc; a fixed subset; default all).", int)
#: the adversarial suite's finetuning protocols (Zhang et al., ICLR 2023: SLF, ALF, AFF) and the plain probe
ADV_PROTOCOLS = ("slf", "alf", "aff", "probe")
ROOT_HELP = "Released tree of the {} dataset (see docs/suites/ood.md for its layout)."


def _released(name: str, title: str) -> tuple[SuiteOption, ...]:
    return SuiteOption(f"--{name}-root", "root", ROOT_HELP.format(title)), SHIFT_LIMIT


#: suite name → the options it adds
SUITE_OPTIONS: dict[str, tuple[SuiteOption, ...]] = {
    "clean": (),
    "adversarial": (SuiteOption("--n-adv", "n", "Images attacked by the adversarial suite (default 1000).", int),
                    SuiteOption("--protocol", "protocol", "Adversarial suite's finetuning protocol (default slf).",
                                str, ADV_PROTOCOLS)),
    "c": (SuiteOption("--c-root", "root", "Released ImageNet-C tree (default: corruptions generated on the fly)."),
          SHIFT_LIMIT),
    "pd": (SuiteOption("--pd-root", "root", "Released ImageNet-PD tree with PD-L … PD-BI (default: generated)."),
           SHIFT_LIMIT),
    "e": (SuiteOption("--e-root", "root", "Released ImageNet-E tree (labels.txt, ori/, …)."), SHIFT_LIMIT),
    "v2": _released("v2", "ImageNet-V2"),
    "sketch": _released("sketch", "ImageNet-Sketch"),
    "r": _released("r", "ImageNet-R"),
    "a": _released("a", "ImageNet-A"),
    "3dcc": _released("3dcc", "ImageNet-3DCC"),
}
