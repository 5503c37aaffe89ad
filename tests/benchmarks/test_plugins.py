"""The extension points the design promises: every registered suite meets one contract (looped over the registry,
as timm's tests loop over models); a new suite and a new attack are one file each — here, one test module."""

from __future__ import annotations

import contextlib
import dataclasses
import json

import click
import pytest
import torch
from click.testing import CliRunner

from ssl_robustbench.attacks import ATTACKS
from ssl_robustbench.attacks.base import AttackRun
from ssl_robustbench.benchmarks import BENCHMARKS
from ssl_robustbench.benchmarks.base import CLEAN, Benchmark, Condition, Measurement, SuiteOption
from ssl_robustbench.cli import main
from ssl_robustbench.config import build, to_dict
from ssl_robustbench.eval_config import EvalConfig
from ssl_robustbench.results.card import parse_card

FAST = ["--set", "data.train_limit=200", "--set", "data.eval_limit=100", "--device", "cpu"]


@pytest.mark.parametrize("name", BENCHMARKS.names())
def test_every_registered_suite_meets_the_contract(name):
    bench = BENCHMARKS.get(name)()
    assert bench.name == name
    cfg = EvalConfig()
    if bench.section:
        settings = bench.settings(cfg)
        assert isinstance(settings, bench.Config) and dataclasses.is_dataclass(settings)
        again = build(EvalConfig, to_dict(cfg))  # the section round-trips through YAML-able data
        assert bench.settings(again) == settings
        for opt in bench.options:  # every CLI option names a field of the suite's own config
            assert opt.field in {f.name for f in dataclasses.fields(bench.Config)}, opt.flag
    conditions = bench.conditions(cfg) if name != "adversarial" else []
    assert len({(c.key, c.severity) for c in conditions}) == len(conditions), "condition keys must be unique"
    assert all(isinstance(c, Condition) and isinstance(c.params, dict) for c in conditions)
    assert bench.rank_metrics() and bench.aggregates([]) == {} or name == "clean"
    assert "settings" in bench.card_details(cfg, None)


def test_unknown_section_keys_are_named():
    from ssl_robustbench.errors import UserError

    with pytest.raises(UserError, match="unknown config key 'pd.colour'"):
        build(EvalConfig, {"pd": {"colour": 1}})
    with pytest.raises(UserError, match="'pd.magnitude' must be > 0"):
        build(EvalConfig, {"pd": {"magnitude": -1}})


# --- a toy suite: one class, registered; nothing else in the package changes ---------------------------------


@dataclasses.dataclass(frozen=True)
class BrightnessConfig:
    factors: tuple[float, ...] = (0.5,)


class BrightnessBenchmark(Benchmark):
    """Top-1 on images scaled by each factor."""

    name = "toy-brightness"
    section = "toy"
    Config = BrightnessConfig
    options = (SuiteOption("--toy-factor", "factors", "Brightness factors of the toy suite.", float),)

    def conditions(self, cfg):
        return [CLEAN] + [Condition(f"toy:x{f}", 0, {"factor": f}) for f in cfg.toy.factors]

    def transform(self, condition, ctx):
        factor = condition.params.get("factor")
        return None if factor is None else (lambda x, g: (x * factor).clamp(0, 1))

    def summarize(self, top1, *, n, data):
        shifted = [v for c, v in top1.items() if "factor" in c.params]
        yield Measurement("toy:all", 0, "mean_top1", sum(shifted) / len(shifted), n)

    def aggregates(self, measured):
        return {m.metric: m.value for m in measured if m.condition == "toy:all"}


@contextlib.contextmanager
def registered(registry, name, obj):
    """``obj`` under ``name`` in ``registry`` for the duration of a test."""
    registry.register(name)(obj)
    try:
        yield
    finally:
        del registry._items[name]


@pytest.fixture()
def toy_suite():
    with registered(BENCHMARKS, "toy-brightness", BrightnessBenchmark):
        yield


def test_a_registered_suites_options_become_eval_flags(toy_suite):
    """A plug-in suite registered before ``eval`` is built gets its ``options`` as flags, beside the built-in ones."""
    from ssl_robustbench.cli.eval import _suite_options

    command = click.command()(_suite_options(lambda **kw: None))
    flags = {flag for param in command.params for flag in param.opts}
    assert {"--toy-factor", "--c-root", "--n-shift", "--protocol"} <= flags


def test_a_toy_suite_is_one_class(toy_suite, tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["eval", "--suite", "clean,toy-brightness", "--set", "toy.factors=[0.25]",
                                       "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    card = parse_card(json.loads((out / "cards" / "toy-brightness.json").read_text()))
    assert {r.condition for r in card.rows} == {"clean", "toy:x0.25", "toy:all"}
    assert card.protocol.details["settings"] == {"factors": [0.25]} and card.rank_metric == "mean_top1"
    clean = json.loads((out / "protocol.json").read_text())["suites"]["clean"]
    alone = tmp_path / "alone"
    assert CliRunner().invoke(main, ["eval", "--out", str(alone), *FAST]).exit_code == 0
    assert json.loads((alone / "protocol.json").read_text())["suites"]["clean"] == clean


# --- a toy attack: one registered factory ---------------------------------------------------------------------


def _sign_noise_run(model, threat, settings, *, num_classes, seed, device):
    def perturb(x, y):
        g = torch.Generator(device=x.device).manual_seed(seed)
        noise = torch.randint(0, 2, x.shape, generator=g, device=x.device).float() * 2 - 1
        return threat.project(x + threat.eps * noise, x)

    return AttackRun(label="sign-noise", metric="noise", components=[("sign-noise", perturb)], version="test")


@pytest.fixture()
def toy_attack():
    with registered(ATTACKS, "sign-noise", _sign_noise_run):
        yield


def test_a_toy_attack_is_one_function(toy_attack, tmp_path):
    out = tmp_path / "adv"
    result = CliRunner().invoke(main, ["eval", "--suite", "adversarial", "--n-adv", "30", "--protocol", "probe",
                                       "--set", "adv.attacks=[sign-noise, pgd]", "--set", "adv.pgd_steps=2",
                                       "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    card = parse_card(json.loads((out / "cards" / "adversarial.json").read_text()))
    rows = {r.condition: r.value for r in card.rows if r.metric == "top1"}
    assert set(rows) == {"probe/clean", "probe/sign-noise Linf eps=8/255", "probe/pgd2 Linf eps=8/255"}
    intervals = {f"{m}_ci95_{end}" for m in ("ra", "sa") for end in ("low", "high")}
    assert set(card.aggregates) == {"ra", "sa", "noise"} | intervals and card.rank_metric == "ra"
    assert card.protocol.details["attacks"] == ["sign-noise", "pgd"] and card.protocol.head.kind == "probe"
