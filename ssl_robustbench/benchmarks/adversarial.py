"""The adversarial suite: SA (clean), RA (PGD-20) and AA (AutoAttack) of a finetuned head or backbone.

Protocols (``adv.protocol``): SLF, ALF, AFF (``probes/finetune.py``) or ``probe`` (the shared L-BFGS head).
Everything is measured on the same fixed subset of ``adv.n`` evaluation images. Conditions are named
``<protocol>/clean``, ``<protocol>/pgd20 Linf eps=8/255`` and ``<protocol>/autoattack-standard Linf eps=8/255``,
so ε and the norm are in every row. The finetuned model, the per-sample attack state and the sanity flags are
kept under ``<run dir>/adversarial/``, so an interrupted run resumes.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from safetensors.torch import load_file, save

from ssl_robustbench.attacks import sanity
from ssl_robustbench.attacks.autoattack import autoattack_components
from ssl_robustbench.attacks.base import ThreatModel, default_eps
from ssl_robustbench.attacks.pgd import pgd_attack
from ssl_robustbench.attacks.runner import run_cascade
from ssl_robustbench.benchmarks.base import BENCHMARKS, Benchmark, EvalContext, Measurement
from ssl_robustbench.data import fixed_subset
from ssl_robustbench.errors import UserError
from ssl_robustbench.fileio import atomic_write_bytes, atomic_write_json
from ssl_robustbench.probes.finetune import finetune, load_recipe
from ssl_robustbench.probes.integrity import assert_unchanged, fingerprint
from ssl_robustbench.progress import console
from ssl_robustbench.training import distributed as ddp


def _subset(ctx: EvalContext, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` images of a fixed (seed 0) permutation of the evaluation set, as tensors."""
    items = [ctx.clean[i] for i in fixed_subset(len(ctx.clean), n)]
    return torch.stack([x for x, _ in items]), torch.tensor([int(y) for _, y in items])


def _protocol_model(ctx: EvalContext, protocol: str, threat: ThreatModel) -> torch.nn.Module:
    """The classifier the protocol evaluates: the shared probe, or a finetuned copy (cached in the run dir)."""
    adv = ctx.cfg.adv
    if protocol == "probe":
        return ctx.model
    recipe = load_recipe(protocol, epochs=adv.epochs)
    model = copy.deepcopy(ctx.model)
    path = ctx.run_dir / "adversarial" / f"{protocol}.safetensors"
    if path.is_file():
        model.load_state_dict(load_file(str(path), device=str(ctx.device)))
        return model.eval()
    before = fingerprint(model.backbone)
    record = finetune(model, ctx.train(), recipe=recipe, threat=threat, num_classes=ctx.num_classes,
                      device=ctx.device, seed=ctx.cfg.run.seed)
    if protocol != "aff":
        assert_unchanged(model.backbone, before)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(path, save(state, metadata={"record": json.dumps(record)}))
    return model.eval()


@BENCHMARKS.register("adversarial")
class AdversarialBenchmark(Benchmark):
    """SA / RA / AA under one threat model and one finetuning protocol."""

    name = "adversarial"
    section = "adv"

    def uses_probe(self, cfg) -> bool:
        return cfg.adv.protocol == "probe"  # SLF/ALF/AFF finetune their own head (recipe in the adv section)

    def check(self, cfg: Any) -> None:
        if ddp.launched():
            raise UserError("the adversarial suite runs in one process (its resumable attack state is per sample); "
                            "run it without torchrun")
        adv = cfg.adv
        ThreatModel(adv.norm, adv.eps if adv.eps is not None else 1.0)  # validates norm and ε
        if adv.n < 1 or adv.pgd_steps < 1 or adv.batch_size < 1 or adv.pgd_restarts < 1:
            raise UserError("adv.n, adv.pgd_steps, adv.pgd_restarts and adv.batch_size must be ≥ 1")
        if adv.autoattack not in ("standard", "plus", "rand", "none"):
            raise UserError(f"adv.autoattack must be standard, plus, rand or none, not {adv.autoattack!r}")
        if adv.pgd_loss not in ("ce", "dlr"):
            raise UserError(f"adv.pgd_loss must be ce or dlr, not {adv.pgd_loss!r}")
        if adv.protocol != "probe":
            load_recipe(adv.protocol, epochs=adv.epochs)

    def measure(self, ctx: EvalContext, *, done: Mapping[tuple[str, int], float]) -> Iterator[Measurement]:
        adv = ctx.cfg.adv
        threat = ThreatModel(adv.norm, adv.eps if adv.eps is not None else default_eps(ctx.input_size))
        p = adv.protocol
        names = [f"{p}/clean", f"{p}/pgd{adv.pgd_steps} {threat.label}"]
        if adv.autoattack != "none":
            names.append(f"{p}/autoattack-{adv.autoattack} {threat.label}")
        if all((name, 0) in done for name in names):
            return
        (ctx.run_dir / "adversarial").mkdir(parents=True, exist_ok=True)
        model = _protocol_model(ctx, p, threat)
        x, y = _subset(ctx, adv.n)
        flags = self._static_checks(model, x[:64].to(ctx.device), y[:64].to(ctx.device))
        state = ctx.run_dir / "adversarial"
        pgd = pgd_attack(model, threat, steps=adv.pgd_steps, step_size=adv.pgd_step_size,
                         restarts=adv.pgd_restarts, loss=adv.pgd_loss, seed=ctx.cfg.run.seed, amp=adv.amp)
        ra = run_cascade(model, x, y, [(f"pgd{adv.pgd_steps}", pgd)], batch_size=adv.batch_size,
                         state_path=state / f"{p}-pgd.state", device=ctx.device, description="PGD")
        measured = [Measurement(names[0], 0, "top1", ra.accuracy["clean"], len(y)),
                    Measurement(names[1], 0, "top1", ra.accuracy[f"pgd{adv.pgd_steps}"], len(y))]
        fewer = pgd_attack(model, threat, steps=max(1, adv.pgd_steps // 2), step_size=adv.pgd_step_size,
                           seed=ctx.cfg.run.seed)
        k = min(len(y), 200)
        half = run_cascade(model, x[:k], y[:k], [("pgd-half", fewer)], batch_size=adv.batch_size,
                           device=ctx.device, description="PGD (half the steps)")
        flags.append(sanity.more_steps_help_model(half.accuracy["pgd-half"], float(ra.robust[:k].float().mean())))
        if adv.autoattack != "none":
            components = autoattack_components(model, threat, version=adv.autoattack, num_classes=ctx.num_classes,
                                               seed=ctx.cfg.run.seed, device=ctx.device)
            aa = run_cascade(model, x, y, components, batch_size=adv.batch_size,
                             state_path=state / f"{p}-autoattack.state", device=ctx.device, description="AutoAttack")
            flags.append(sanity.black_box_beats_white_box(aa.accuracy))
            measured.append(Measurement(names[2], 0, "top1", aa.accuracy[components[-1][0]], len(y)))
        flags = sorted({f for f in flags if f})
        atomic_write_json(state / "sanity.json", {"flags": flags})
        for flag in flags:
            console.print(f"[yellow]warning: {flag} — the robust accuracy may be overestimated[/]")
        # after sanity.json, so a finished suite always has its flags on disk
        yield from (m for m in measured if (m.condition, m.severity) not in done)

    def aggregates(self, measured: list[Measurement]) -> dict[str, float]:
        """AA (ranks the leaderboard, as in RobustBench), RA and SA."""
        out = {}
        for key, marker in (("aa", "/autoattack"), ("ra", "/pgd"), ("sa", "/clean")):
            values = [m.value for m in measured if marker in m.condition]
            if values:
                out[key] = values[0]
        return out

    @staticmethod
    def _static_checks(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[str | None]:
        if model.training:
            raise UserError("the model is in train mode: attacks must run in eval mode")
        return [sanity.randomized_forward(model, x), sanity.softmax_outputs(model, x),
                sanity.zero_gradients(model, x, y)]
