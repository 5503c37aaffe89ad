"""The adversarial suite: SA (clean), RA (PGD-20) and AA (AutoAttack) of a finetuned head or backbone.

Protocols (``adv.protocol``): SLF, ALF, AFF (``adversarial_finetune.py``) or ``probe`` (the shared head).
Everything is measured on the same fixed subset of ``adv.n`` evaluation images. Each name in ``adv.attacks`` is a
registered attack (``attacks.ATTACKS``) run as its own cascade; rows are ``<protocol>/clean``,
``<protocol>/pgd20 Linf eps=8/255``, ``<protocol>/autoattack-standard Linf eps=8/255`` (ε and the norm in every
row) and the summary rows ``adversarial:all`` / ``sa``, ``ra``, ``aa`` the aggregates are read from. The
finetuned model, the per-sample attack state and the sanity flags are kept under ``<run dir>/adversarial/``, so an
interrupted run resumes.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from safetensors.torch import load_file, save

from ssl_robustbench import distributed as ddp
from ssl_robustbench.attacks import ATTACKS, sanity
from ssl_robustbench.attacks.base import ThreatModel, default_eps, require_eval_mode
from ssl_robustbench.attacks.pgd import pgd_attack
from ssl_robustbench.attacks.runner import run_cascade
from ssl_robustbench.benchmarks.adversarial_finetune import FinetuneRecipe, finetune, load_recipe
from ssl_robustbench.benchmarks.base import BENCHMARKS, Benchmark, Condition, EvalContext, Measurement
from ssl_robustbench.config import bounded, check_fields
from ssl_robustbench.data import fixed_subset, float_images
from ssl_robustbench.errors import UserError
from ssl_robustbench.fileio import atomic_write_bytes, atomic_write_json
from ssl_robustbench.probes.integrity import assert_unchanged, fingerprint
from ssl_robustbench.progress import console
from ssl_robustbench.results.evidence import image_evidence
from ssl_robustbench.stats import wilson_interval
from ssl_robustbench.suite_options import ADV_PROTOCOLS


def _images(ctx: EvalContext, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The evaluation images at ``indices`` as float [0, 1] tensors (datasets read from files give uint8) and
    their labels."""
    items = [ctx.clean[i] for i in indices]
    return float_images(torch.stack([x for x, _ in items])), torch.tensor([int(y) for _, y in items])


def _protocol_model(ctx: EvalContext, protocol: str, threat: ThreatModel) -> torch.nn.Module:
    """The classifier the protocol evaluates: the shared probe, or a finetuned copy (cached in the run dir)."""
    adv = ctx.cfg.adv
    if protocol == "probe":
        return ctx.model
    recipe = adv.recipe()
    model = copy.deepcopy(ctx.model)
    path = ctx.run_dir / "adversarial" / f"{protocol}.safetensors"
    if path.is_file():
        model.load_state_dict(load_file(str(path), device=str(ctx.device)))
        return model.eval()
    before = fingerprint(model.backbone)
    record = finetune(model, ctx.train(), recipe=recipe, threat=threat, num_classes=ctx.num_classes,
                      device=ctx.device, seed=ctx.cfg.run.seed, dual_bn=ctx.dual_bn)
    if protocol != "aff":
        assert_unchanged(model.backbone, before)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(path, save(state, metadata={"record": json.dumps(record)}))
    return model.eval()


AUTOATTACK_VERSIONS = ("standard", "plus", "rand", "none")
SUMMARY = "adversarial:all"  # condition of the summary rows (metrics sa, ra, aa: one per attack's metric)


@dataclasses.dataclass(frozen=True)
class AdversarialConfig:
    """The adversarial suite (section ``adv``): threat model, attacks, subset and finetuning protocol.

    ``eps`` None means RobustBench's budget (``attacks.base.default_eps``: L∞ 8/255 up to 96 px, 4/255 above; L2
    0.5 / 3.0); ``pgd_step_size`` None means ε/4.
    ``protocol`` is ``slf``, ``alf``, ``aff`` (recipes in ``benchmarks/adversarial/``) or ``probe`` (the shared
    head); ``epoch_scale`` k stretches the recipe k-fold (epochs and lr milestones × k; 1: as published — for a
    training set much smaller than the recipe's, where the published epochs leave the head underfit; the head's
    kind then reads e.g. ``slf x10 epochs``); ``epochs`` overrides the recipe's epochs. ``attacks``: registered
    attack names (``ATTACKS``), each run as its own cascade on the same subset; ``autoattack`` is the AutoAttack
    version (``none`` drops it).
    """

    norm: str = "Linf"
    eps: float | None = bounded(None, low=0.0, low_open=True)
    n: int = bounded(1000, low=1)
    attacks: tuple[str, ...] = ("pgd", "autoattack")
    pgd_steps: int = bounded(20, low=1)
    pgd_step_size: float | None = bounded(None, low=0.0, low_open=True)
    pgd_restarts: int = bounded(1, low=1)
    pgd_loss: str = "ce"
    autoattack: str = "standard"
    protocol: str = "slf"
    epochs: int | None = bounded(None, low=1)
    epoch_scale: int = bounded(1, low=1)
    batch_size: int = bounded(250, low=1)
    amp: bool = False

    def __post_init__(self) -> None:
        ThreatModel(self.norm, self.eps if self.eps is not None else 1.0)  # validates norm and ε
        check_fields(self, "adv")
        if self.autoattack not in AUTOATTACK_VERSIONS:
            raise UserError(f"adv.autoattack must be standard, plus, rand or none, not {self.autoattack!r}")
        if self.pgd_loss not in ("ce", "dlr"):
            raise UserError(f"adv.pgd_loss must be ce or dlr, not {self.pgd_loss!r}")
        if self.protocol not in ADV_PROTOCOLS:
            raise UserError(f"adv.protocol must be one of {', '.join(ADV_PROTOCOLS)}, not {self.protocol!r}")
        for name in self.attacks:
            ATTACKS.get(name)  # unknown names fail here, with close names

    def recipe(self) -> FinetuneRecipe:
        """The SLF/ALF/AFF recipe this config runs: its YAML file stretched ``epoch_scale``-fold, then ``epochs``."""
        return load_recipe(self.protocol, epochs=self.epochs, scale=self.epoch_scale)

    def attack_names(self) -> list[str]:
        return [a for a in self.attacks if not (a == "autoattack" and self.autoattack == "none")]


@BENCHMARKS.register("adversarial")
class AdversarialBenchmark(Benchmark):
    """SA / RA / AA under one threat model and one finetuning protocol."""

    name = "adversarial"
    clean_reference = 'SA: the attacked images unperturbed, the same (finetuned) head'
    clean_aggregate, condition_columns = "sa", False  # its summary rows (SA, RA, AA) are its conditions
    section = "adv"
    Config = AdversarialConfig

    def uses_probe(self, cfg) -> bool:
        return cfg.adv.protocol == "probe"  # SLF/ALF/AFF finetune their own head (recipe in the adv section)

    def head(self, cfg: Any) -> dict[str, Any] | None:
        if cfg.adv.protocol == "probe":
            return None
        scale = cfg.adv.epoch_scale
        kind = cfg.adv.protocol if scale == 1 else f"{cfg.adv.protocol} x{scale} epochs"
        return {"kind": kind, "recipe": dataclasses.asdict(cfg.adv.recipe())}

    def threat(self, cfg: Any, input_size: int) -> ThreatModel:
        adv = cfg.adv
        return ThreatModel(adv.norm, adv.eps if adv.eps is not None else default_eps(input_size, adv.norm))

    def card_details(self, cfg: Any, ctx: EvalContext | None) -> dict[str, Any]:
        details = super().card_details(cfg, ctx)
        threat = self.threat(cfg, ctx.input_size if ctx else 224)
        details["threat_model"] = {"norm": threat.norm, "eps": threat.eps, "label": threat.label}
        details["attacks"] = list(cfg.adv.attack_names())
        details["subset_size"] = min(cfg.adv.n, len(ctx.clean)) if ctx else cfg.adv.n
        if cfg.adv.protocol == "aff" and ctx is not None:
            details["aff_batchnorm"] = ("dual (clean → normal, adversarial → pgd, scored on pgd)" if ctx.dual_bn
                                        else "single")
        return details

    def sanity_flags(self, ctx: EvalContext) -> list[str]:
        path = ctx.run_dir / "adversarial" / "sanity.json"
        return list(json.loads(path.read_text(encoding="utf-8"))["flags"]) if path.is_file() else []

    def check(self, cfg: Any) -> None:
        if ddp.launched():
            raise UserError("the adversarial suite runs in one process (its resumable attack state is per sample); "
                            "run it without torchrun")
        if cfg.adv.protocol != "probe":
            cfg.adv.recipe()

    def rank_metrics(self) -> tuple[str, ...]:
        return ("aa", "ra", "sa")  # AA ranks, as in RobustBench; RA where AutoAttack was not run

    def measure(self, ctx: EvalContext, *, done: Mapping[tuple[str, int], float]) -> Iterator[Measurement]:
        adv = ctx.cfg.adv
        threat = self.threat(ctx.cfg, ctx.input_size)
        p = adv.protocol
        if (SUMMARY, 0) in done:
            return
        (ctx.run_dir / "adversarial").mkdir(parents=True, exist_ok=True)
        model = _protocol_model(ctx, p, threat)
        indices = fixed_subset(len(ctx.clean), adv.n)  # the first n of a fixed (seed 0) permutation
        x, y = _images(ctx, indices)
        flags = self._static_checks(model, x[:64].to(ctx.device), y[:64].to(ctx.device))
        state = ctx.run_dir / "adversarial"
        measured: list[Measurement] = []
        top1: dict[Condition, float] = {}
        before = fingerprint(model)
        for name in adv.attack_names():
            run = ATTACKS.get(name)(model, threat, adv, num_classes=ctx.num_classes, seed=ctx.cfg.run.seed,
                                    device=ctx.device)
            result = run_cascade(model, x, y, run.components, batch_size=adv.batch_size,
                                 state_path=state / f"{p}-{name}.state", device=ctx.device, description=run.label)
            assert_unchanged(model, before, what=f"model (during {run.label})")
            outcomes = [(Condition(f"{p}/clean", 0, {"attack": None}), result.clean)] if not measured else []
            outcomes.append((Condition(f"{p}/{run.label} {threat.label}", 0, {"attack": name, "metric": run.metric}),
                             result.robust))
            for cond, per_image in outcomes:
                evidence = image_evidence(cond.key, 0, "flag", per_image.long(), y, indices, cond.params)
                top1[cond] = evidence.top1()
                measured.append(Measurement(cond.key, 0, "top1", top1[cond], len(y), evidence))
            flags += self._attack_checks(name, model, threat, adv, x, y, result, ctx)
        summary = list(self.summarize(top1, n=len(y), data=ctx.eval_data))
        by_metric = {m.metric: m.value for m in summary}
        flags.append(sanity.pgd_far_above_autoattack(by_metric.get("ra"), by_metric.get("aa")))
        flags = sorted({f for f in flags if f})
        atomic_write_json(state / "sanity.json", {"flags": flags})
        for flag in flags:
            console.print(f"[yellow]warning: {flag} — the robust accuracy may be overestimated[/]")
        # after sanity.json, so a finished suite always has its flags on disk
        yield from (m for m in measured + summary if (m.condition, m.severity) not in done or m.condition == SUMMARY)

    def summarize(self, top1: Mapping[Condition, float], *, n: int,
                  data: Mapping[str, Any]) -> Iterator[Measurement]:
        """``adversarial:all`` rows: ``sa`` (the clean condition), then each attack's metric (``ra``, ``aa``)."""
        for cond, value in top1.items():
            yield Measurement(SUMMARY, 0, cond.params.get("metric") or "sa", value, n)

    def reproduce(self, condition: Condition, ctx: EvalContext, positions: list[int]) -> tuple[Any, Any]:
        """Clean or robust flags of the images at ``positions`` of the evaluation set, under the scored model
        (``ctx.model``: the shared head or the suite's finetuned head) — the attack re-run on them alone."""
        x, y = _images(ctx, positions)
        name = condition.params.get("attack")
        if name is None:
            with torch.no_grad():
                return (ctx.model(x.to(ctx.device)).argmax(1).cpu() == y).long(), y
        adv = ctx.cfg.adv
        run = ATTACKS.get(name)(ctx.model, self.threat(ctx.cfg, ctx.input_size), adv, num_classes=ctx.num_classes,
                                seed=ctx.cfg.run.seed, device=ctx.device)
        result = run_cascade(ctx.model, x, y, run.components, batch_size=adv.batch_size, device=ctx.device,
                             description=f"verify {run.label}")
        return result.robust.long(), y

    def deterministic(self, condition: Condition, settings: Any) -> bool:
        return condition.params.get("attack") is None  # attacks start from random points

    def ranked_columns(self, evidence: list[Any]) -> list[Any]:
        """The per-image flags of the ranking metric's attack (AutoAttack's, else PGD's, else clean)."""
        by_metric = {e.params.get("metric") or "sa": e for e in evidence}
        return next(([by_metric[m]] for m in self.rank_metrics() if m in by_metric), list(evidence))

    def own_clean(self, rows: list[Any]) -> float | None:
        return next((r.value for r in rows if r.condition == SUMMARY and r.metric == "sa"), None)

    @staticmethod
    def _attack_checks(name, model, threat, adv, x, y, result, ctx) -> list[str | None]:
        """Gradient-masking checks tied to one attack: more PGD steps must not help the model; AutoAttack's
        black-box Square must not beat its white-box attacks."""
        if name == "pgd":
            fewer = pgd_attack(model, threat, steps=max(1, adv.pgd_steps // 2), step_size=adv.pgd_step_size,
                               seed=ctx.cfg.run.seed)
            k = min(len(y), 200)
            half = run_cascade(model, x[:k], y[:k], [("pgd-half", fewer)], batch_size=adv.batch_size,
                               device=ctx.device, description="PGD (half the steps)")
            flags = [sanity.more_steps_help_model(half.accuracy["pgd-half"], float(result.robust[:k].float().mean()))]
            if "autoattack" not in adv.attack_names():  # PGD alone: a black-box check catches masked gradients
                flags.append(_square_check(model, threat, x, y, result.robust, ctx))
            return flags
        if name == "autoattack":
            return [sanity.black_box_beats_white_box(result.accuracy)]
        return []

    def aggregates(self, measured: list[Measurement]) -> dict[str, float]:
        """AA (ranks the leaderboard, as in RobustBench), RA and SA: the summary rows, read back exactly; each
        with its 95 % Wilson interval over the n attacked images (``<metric>_ci95_low`` / ``_high``), so two
        checkpoints are not ranked on noise (200 images: about ±4 points at 10 %)."""
        rows = {m.metric: m for m in measured if m.condition == SUMMARY}
        out = {k: rows[k].value for k in ("aa", "ra", "sa") if k in rows}
        out |= {k: m.value for k, m in rows.items() if k not in ("aa", "ra", "sa")}
        for k in ("aa", "ra", "sa"):
            if k in rows:
                out[f"{k}_ci95_low"], out[f"{k}_ci95_high"] = wilson_interval(rows[k].value, rows[k].n)
        return out

    @staticmethod
    def _static_checks(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[str | None]:
        require_eval_mode(model)
        return [sanity.nonfinite_outputs(model, x), sanity.randomized_forward(model, x),
                sanity.softmax_outputs(model, x), sanity.zero_gradients(model, x, y), sanity.batch_dependent(model, x)]


SQUARE_CHECK_IMAGES = 100
SQUARE_CHECK_QUERIES = 1000


def _square_check(model, threat, x, y, robust, ctx) -> str | None:
    """Square (Andriushchenko et al. 2020; AutoAttack's black-box member) with ``SQUARE_CHECK_QUERIES`` queries on
    up to ``SQUARE_CHECK_IMAGES`` images PGD left robust: it needs no gradient, so shattered or obfuscated
    gradients do not stop it (``sanity.black_box_breaks_pgd``)."""
    from ssl_robustbench.attacks.autoattack import build_autoattack

    idx = robust.nonzero().squeeze(1)[:SQUARE_CHECK_IMAGES]
    if len(idx) == 0:
        return None
    aa = build_autoattack(model, threat, num_classes=ctx.num_classes, seed=ctx.cfg.run.seed, device=ctx.device)
    aa.square.n_queries = SQUARE_CHECK_QUERIES
    xs, ys = x[idx].to(ctx.device), y[idx].to(ctx.device)
    aa.square.seed = ctx.cfg.run.seed
    x_adv = aa.square.perturb(xs, ys)
    with torch.no_grad():
        broken = int((model(x_adv).argmax(1) != ys).sum())
    return sanity.black_box_breaks_pgd(broken, len(idx))
