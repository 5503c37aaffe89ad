"""``robustbench verify``: re-run a fresh random sample of every condition of a card from the weights the card
names, under its recorded protocol, and compare image by image with the card's evidence.

The sample is drawn from fresh entropy at verification time (its seed is recorded, so a verification can be
replayed with ``--seed``), stratified: every condition is sampled. A forger cannot know which images will be
checked. The model is rebuilt from the card's ``weights`` (a zoo id, or a URL with the zoo-card fields; the
checkpoint's sha256 must equal the card's); a released head from the zoo card that publishes it; a k-NN head from
the training split; a probe from the submitted head file (pinned by sha256) — and with ``refit`` the probe is
re-fitted from the named training split under the recorded recipe and must agree with the submitted head on a
sample of the evaluation set (``REFIT_FLIP_BOUND``), so a head fitted on other data fails. The evaluation data is
rebuilt from the card's dataset, split and subset and must have the card's data identity, so a verifier with
another copy of the data gets "cannot verify", never a false "failed".

Deterministic conditions must agree image by image up to ``FLIP_ALLOWANCE`` of the sample (float noise across
devices). Stochastic ones (random corruptions, attacks) are compared by a one-sided exact binomial test on the
discordant images: a card that claims more than its model does fails when p < ``STOCHASTIC_ALPHA``.

Power: a card whose ranking score is inflated by ≥ δ points has some condition inflated by ≥ δ, i.e. ≥ ⌈δ·N⌉ of
its N images claimed right where the model is wrong; that condition passes only if at most its allowance of them
falls in its sample of m — a hypergeometric tail. The record states the largest such chance over the conditions
(``escape``, an upper bound on the chance the inflated card passes) for δ = ``POWER_DELTA``; by default each
condition's sample is the smallest that makes it ≤ 1 − ``TARGET_POWER``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import secrets
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ssl_robustbench.errors import UserError
from ssl_robustbench.results.card import ResultCard, num_classes_of
from ssl_robustbench.results.evidence import read_regular_file

FLIP_ALLOWANCE = 0.01  # share of a deterministic sample allowed to flip (float noise), at least one image
STOCHASTIC_ALPHA = 1e-3
REFIT_FLIP_BOUND = 0.02  # share of the refit sample on which the re-fitted head may differ, at least two images
POWER_DELTA = 0.02  # the inflation of a score (2 points) whose chance to pass the record states
TARGET_POWER = 0.95
OUTCOMES = ("verified", "failed", "cannot verify", "private")
#: where the scored head of a re-run comes from, by head kind (recorded in each verification)
HEAD_SOURCES = {"probe": "the submitted file (pinned by sha256); --refit re-fits it",
                "knn": "rebuilt from the named training split's features with the card's k and temperature",
                "released": "the zoo card's published head (pinned by sha256), never the submission",
                "own": "the submitted finetuned head (pinned by sha256); the suite's finetune is not re-run"}


@dataclasses.dataclass
class Verification:
    """The outcome for one card and what was compared; ``payload`` is what a signed record holds."""

    card: str
    outcome: str
    reason: str
    conditions: list[dict[str, Any]]
    payload: dict[str, Any]


def allowance(m: int, deterministic: bool) -> int:
    """How many forged images (claimed right, wrong on re-run) a sample of ``m`` may hold and still pass: the
    flip allowance of a deterministic condition; for a stochastic one, the largest count the binomial test passes
    when the re-run is right everywhere else (0.5^b ≥ alpha)."""
    if deterministic:
        return max(1, math.floor(FLIP_ALLOWANCE * m))
    return math.ceil(math.log(STOCHASTIC_ALPHA) / math.log(0.5)) - 1


def escape_chance(n: int, m: int, deterministic: bool, delta: float = POWER_DELTA) -> float:
    """The chance that a condition of ``n`` images with ⌈δ·n⌉ forged ones passes a sample of ``m``."""
    from scipy.stats import hypergeom

    forged = math.ceil(delta * n)
    return float(hypergeom.cdf(allowance(m, deterministic), n, forged, m))


def sample_size(n: int, deterministic: bool, *, power: float = TARGET_POWER, delta: float = POWER_DELTA) -> int:
    """The smallest sample (≤ n) whose escape chance is ≤ 1 − ``power`` (all n where none is)."""
    low, high = 1, n
    if escape_chance(n, n, deterministic, delta) > 1 - power:
        return n
    while low < high:  # escape is non-increasing in m apart from the allowance's steps: bisect, then walk up
        mid = (low + high) // 2
        low, high = (mid + 1, high) if escape_chance(n, mid, deterministic, delta) > 1 - power else (low, mid)
    while low < n and escape_chance(n, low, deterministic, delta) > 1 - power:
        low += 1
    return low


def verify_card(files: Any, *, images: int | None = None, seed: int | None = None, refit: bool = False,
                data_root: str | None = None, overrides: tuple[str, ...] = (), device: str = "auto",
                cache_dir: str | None = None, store_name: str | None = None) -> Verification:
    """Verifies one card (``store.CardFiles``): see the module docstring. ``images``: per condition (default: the
    sample size for ``TARGET_POWER``); ``seed``: replays a recorded verification (default: fresh entropy)."""
    from ssl_robustbench.results.trust import NAMESPACE, card_digest

    card: ResultCard = files.card
    seed = secrets.randbits(63) if seed is None else seed
    base = {"namespace": NAMESPACE, "store": store_name, "card": card.filename,
            "card_sha256": card_digest(files.path.read_bytes()), "tool_version": _version(),
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds"), "sample_seed": seed,
            "images_per_condition": images, "refit": refit, "power_delta": POWER_DELTA}

    def done(outcome: str, reason: str, compared: list[dict[str, Any]] | None = None) -> Verification:
        compared = compared or []
        escapes = [c["escape"] for c in compared if "escape" in c]
        payload = base | {"outcome": outcome, "reason": reason, "conditions": compared,
                          "escape": max(escapes) if escapes else None}
        return Verification(card.filename, outcome, reason, compared, payload)

    if card.model.weights["kind"] == "private":
        return done("private", "the card's weights are private: nothing to re-run")
    try:
        rerun, bench = _context(files, data_root=data_root, overrides=overrides, device=device,
                                cache_dir=cache_dir)
    except _CannotVerify as err:
        return done("cannot verify", str(err))
    ctx = rerun.ctx
    rng = np.random.default_rng(seed)
    compared = []
    from ssl_robustbench.benchmarks.base import Condition

    base["head"] = HEAD_SOURCES.get(card.protocol.head.kind, HEAD_SOURCES["own"])
    if refit and card.protocol.head.kind == "probe":
        try:
            compared.append(_refit_check(rerun, card, rng, images=images))
        except _CannotVerify as err:
            return done("cannot verify", f"refit: {err}")
        base["head"] = "re-fitted from the named training split under the card's recipe"
    settings = bench.settings(ctx.cfg)
    for e in files.records:  # stratified: every condition
        cond = Condition(e.key, e.severity, e.params)
        deterministic = bench.deterministic(cond, settings)
        m = min(images, len(e.index)) if images else sample_size(len(e.index), deterministic)
        pick = np.sort(rng.choice(len(e.index), size=m, replace=False))
        values, labels = bench.reproduce(cond, ctx, [int(p) for p in e.index[pick]])
        values, labels = np.asarray(values).reshape(-1), np.asarray(labels).reshape(-1)
        compared.append(_compare(e, pick, values, labels, deterministic))
    failed = [c for c in compared if not c["passed"]]
    if failed:
        return done("failed", f"{failed[0]['condition']}: {failed[0]['why']}", compared)
    escape = max(c["escape"] for c in compared if "escape" in c)
    return done("verified", f"{len(compared)} check(s), {sum(c['sample'] for c in compared):,} images agree; a "
                            f"score inflated by {100 * POWER_DELTA:g} points passes with chance ≤ {escape:.3f}",
                compared)


def _compare(e: Any, pick: np.ndarray, values: np.ndarray, labels: np.ndarray, deterministic: bool) -> dict:
    claimed, claimed_labels = e.values[pick], e.labels[pick]
    out: dict[str, Any] = {"condition": e.column, "deterministic": deterministic, "sample": len(pick),
                           "of": len(e.index), "escape": escape_chance(len(e.index), len(pick), deterministic)}
    if not np.array_equal(labels, claimed_labels):
        return out | {"passed": False, "why": f"{int((labels != claimed_labels).sum())} labels differ from the "
                                                "evidence (another order or class list)"}
    ok_claimed = claimed == claimed_labels if e.kind == "pred" else claimed.astype(bool)
    ok_now = values == labels if e.kind == "pred" else values.astype(bool)
    b, c = int((ok_claimed & ~ok_now).sum()), int((~ok_claimed & ok_now).sum())
    out |= {"claimed_correct": int(ok_claimed.sum()), "rerun_correct": int(ok_now.sum()), "b": b, "c": c}
    if deterministic:
        mismatches = int((claimed != values).sum())
        allowed = allowance(len(pick), True)
        out |= {"mismatches": mismatches, "allowed": allowed, "passed": mismatches <= allowed}
        out["why"] = f"{mismatches} of {len(pick)} per-image results differ (allowed {allowed})"
        return out
    from scipy.stats import binomtest

    p = float(binomtest(b, b + c, 0.5, alternative="greater").pvalue) if b + c else 1.0
    out |= {"p_value": p, "passed": p >= STOCHASTIC_ALPHA,
            "why": f"the card is right on {b} images the re-run gets wrong and wrong on {c} it gets right "
                   f"(one-sided binomial p = {p:.2g} < {STOCHASTIC_ALPHA:g})"}
    return out


def _refit_check(rerun: _Rerun, card: ResultCard, rng: np.random.Generator, *, images: int | None
                 ) -> dict[str, Any]:
    """Re-fits the probe from the named training split under the card's recipe and compares its predictions with
    the submitted head's on a sample of the evaluation set."""
    from ssl_robustbench.benchmarks.base import predictions
    from ssl_robustbench.data import eval_loader, subset
    from ssl_robustbench.evaluation import fit_or_load_probe

    ctx, submitted = rerun.ctx, rerun.ctx.model.head
    with tempfile.TemporaryDirectory() as tmp:
        try:
            probe = fit_or_load_probe(rerun.loaded, ctx.cfg, run_dir=Path(tmp), device=ctx.device,
                                      cache=rerun.cache, req=rerun.train_request, num_classes=ctx.num_classes)
        except UserError as err:
            raise _CannotVerify(f"the training split cannot be built here: {err}") from None
    if probe.record.get("train_data") != card.protocol.train_data:
        raise _CannotVerify("the training data here is not the card's (its data identity differs)")
    n = len(ctx.clean)
    m = min(images, n) if images else min(n, max(500, sample_size(n, True)))
    pick = sorted(rng.choice(n, size=m, replace=False).tolist())
    loader = eval_loader(subset(ctx.clean, pick), ctx.cfg.run)
    mine = predictions(ctx.model, loader, device=ctx.device, description="verify: submitted head")[0]
    ctx.model.head = probe.head.to(ctx.device)
    try:
        refit = predictions(ctx.model, loader, device=ctx.device, description="verify: re-fitted head")[0]
    finally:
        ctx.model.head = submitted
    differ = int((mine != refit).sum())
    allowed = max(2, math.floor(REFIT_FLIP_BOUND * m))
    return {"condition": "head refit", "deterministic": True, "sample": m, "of": n, "mismatches": differ,
            "allowed": allowed, "passed": differ <= allowed,
            "why": f"the head re-fitted on the named training split disagrees with the submitted head on {differ} "
                   f"of {m} images (allowed {allowed}): the submitted head was not fitted as the card says"}


class _CannotVerify(UserError):
    pass


@dataclasses.dataclass
class _Rerun:
    """What a re-run needs beyond the suite's context: the loaded model, the cache and the training split."""

    ctx: Any
    loaded: Any
    cache: Path
    train_request: Any


def _context(files: Any, *, data_root, overrides, device, cache_dir):
    """The scored model (weights + head), the evaluation data with the card's identity, and the suite."""
    from ssl_robustbench.benchmarks import BENCHMARKS
    from ssl_robustbench.benchmarks.base import EvalContext
    from ssl_robustbench.config import build, merge, parse_overrides
    from ssl_robustbench.data import DataRequest, build_dataset, dataset_identity, head_classes
    from ssl_robustbench.eval_config import EvalConfig
    from ssl_robustbench.runinfo import resolve_device
    from ssl_robustbench.zoo import get_card, load_model
    from ssl_robustbench.zoo.download import cache_root

    card: ResultCard = files.card
    p = card.protocol
    bench = BENCHMARKS.get(card.suite)()
    weights = card.model.weights
    if weights["kind"] == "zoo":
        try:
            zoo = get_card(weights["zoo_id"])
        except UserError as err:
            raise _CannotVerify(f"zoo card {weights['zoo_id']!r} is not in this zoo: {err}") from None
    else:
        from ssl_robustbench.zoo.card import parse_card as parse_zoo_card

        fields = dict(weights["zoo_card"])
        fields["source"] = {"url": weights["url"], "sha256": card.model.checkpoint_sha256}
        zoo = parse_zoo_card(fields, where=f"{card.filename} weights", card_dir=Path(tempfile.gettempdir()))
    size = p.preprocessing.get("input_size")
    if isinstance(size, int) and size != zoo.input_size:
        zoo = dataclasses.replace(zoo, input_size=size)
    cache = Path(cache_dir) if cache_dir else cache_root()
    try:
        loaded = load_model(zoo, cache_dir=cache, quiet=True)
    except UserError as err:
        raise _CannotVerify(f"the named weights cannot be loaded here: {err}") from None
    if loaded.sha256 != card.model.checkpoint_sha256:
        raise _CannotVerify(f"the named weights have sha256 {loaded.sha256[:16]}…, the card's checkpoint "
                            f"{card.model.checkpoint_sha256[:16]}…")
    settings = dict(p.details.get("settings") or {})
    settings.pop("tree_manifest", None)
    tree = settings.pop("tree", None)  # a released OOD set's file listing: the tree given must be the card's
    subset = p.eval_data.get("subset_of") is not None
    data = {"name": p.dataset, "eval_split": p.eval_split, "root": data_root,
            "eval_limit": p.eval_data.get("n") if subset else None}
    cfg_dict = {"model": zoo.id, "suites": [card.suite], "data": data,
                "run": {"device": device, "seed": p.seed, "cache_dir": str(cache)}}
    if bench.section:  # a released tree's root is recorded as True (its path is not part of the protocol)
        cfg_dict[bench.section] = {k: v for k, v in settings.items() if k != "root"}
        if settings.get("root") is True and not any(o.startswith(f"{bench.section}.root=") for o in overrides):
            raise _CannotVerify(f"the card ran on a released tree: give its location with --set "
                                f"{bench.section}.root=PATH")
    if p.train_data and p.train_data.get("label_fraction") is not None:
        cfg_dict["label_fraction"] = p.train_data["label_fraction"]
    if p.head.kind == "probe" and isinstance(p.head.recipe, dict):  # what --refit re-fits with
        cfg_dict["probe"] = dict(p.head.recipe)
    if p.head.kind == "released":
        cfg_dict["head"] = "released"
    train = p.train_data or {}
    if train.get("subset_of") is not None and train.get("label_fraction") is None:
        data["train_limit"] = train.get("n")
    knn = p.head.kind == "knn"
    if knn:  # rebuilt from the training split's features with the card's recipe
        recipe = p.head.recipe if isinstance(p.head.recipe, dict) else {}
        cfg_dict["head"] = "knn"
        cfg_dict["knn"] = {k: recipe[k] for k in ("k", "temperature") if k in recipe}
    cfg = build(EvalConfig, merge(cfg_dict, parse_overrides(list(overrides))))
    if tree is not None and bench.recorded_settings(cfg).get("tree") != tree:
        raise _CannotVerify(f"the {card.suite} tree given is not the card's (its file list differs)")
    run_device = resolve_device(cfg.run.device)
    req = DataRequest(split=cfg.data.train_split, preprocess=zoo.preprocess,
                      root=Path(data_root) if data_root else None, download=False, cache_dir=cache, seed=0)
    try:
        classes = head_classes(p.dataset, req) if p.head.kind == "probe" else None
        req = dataclasses.replace(req, split=p.eval_split, classes=tuple(classes) if classes else None)
        clean = build_dataset(p.dataset, req, limit=cfg.data.eval_limit)
    except UserError as err:
        raise _CannotVerify(f"the evaluation data cannot be built here: {err}") from None
    if dataset_identity(clean) != p.eval_data:
        raise _CannotVerify("the evaluation data here is not the card's (its data identity — class list, files, "
                            "subset — differs); give the card's data with --data-root")
    model = loaded.model
    num_classes = num_classes_of(p.eval_data) or len(clean.classes)
    if knn:
        _knn_head(model, loaded, cfg, card, device=resolve_device(cfg.run.device), cache=cache,
                  req=dataclasses.replace(req, split=cfg.data.train_split), num_classes=num_classes)
    elif p.head.kind == "released":
        _released_head(model, loaded, card, cache=cache, num_classes=num_classes)
    else:
        _load_head(model, files, card, num_features=model.backbone.num_features, num_classes=num_classes)
    model = model.to(run_device).eval()
    ctx = EvalContext(model=model, clean=clean, train=_no_training, num_classes=len(clean.classes),
                      input_size=zoo.input_size, cfg=cfg, device=run_device, run_dir=Path(tempfile.gettempdir()),
                      preprocess=zoo.preprocess, dual_bn=loaded.dual_bn, eval_data=p.eval_data)
    return _Rerun(ctx=ctx, loaded=loaded, cache=cache, train_request=dataclasses.replace(
        req, split=cfg.data.train_split, classes=req.classes)), bench


def _no_training():
    raise UserError("verification does not train: it scores the submitted head")


def _knn_head(model: torch.nn.Module, loaded: Any, cfg: Any, card: ResultCard, *, device, cache, req,
              num_classes: int) -> None:
    """A k-NN card's head, rebuilt: the training split's features from the named weights (the training data's
    identity must be the card's) with the card's k and temperature."""
    from ssl_robustbench.evaluation import knn_head

    try:
        probe = knn_head(loaded, cfg, device=device, cache=cache, req=req, num_classes=num_classes)
    except UserError as err:
        raise _CannotVerify(f"the training split cannot be built here: {err}") from None
    if probe.record["train_data"] != card.protocol.train_data or probe.record["recipe"] != card.protocol.head.recipe:
        raise _CannotVerify("the training features here are not the card's (training data or k-NN recipe differ)")
    model.head = probe.head


def _released_head(model: torch.nn.Module, loaded: Any, card: ResultCard, *, cache: Path, num_classes: int) -> None:
    """A released head comes from the zoo card that publishes it (its pinned file), never from the submission."""
    from ssl_robustbench.zoo import load_released_head

    try:
        head, record = load_released_head(loaded.card, num_features=model.backbone.num_features,
                                          num_classes=num_classes, cache_dir=cache)
    except UserError as err:
        raise _CannotVerify(f"the released head cannot be fetched from its zoo card: {err}") from None
    if card.protocol.head.recipe.get("sha256") != record["sha256"]:
        raise _CannotVerify("the card's released head is not the one its zoo card publishes (sha256 differs)")
    model.head = head


def _load_head(model: torch.nn.Module, files: Any, card: ResultCard, *, num_features: int, num_classes: int) -> None:
    """Puts the submitted head (pinned by the card's ``head_sha256``) into ``model``."""
    from safetensors.torch import load

    from ssl_robustbench.probes.linear import load_probe

    if files.head is None:
        raise _CannotVerify("the card names no head file")
    if card.protocol.head.kind in ("probe", "released"):
        model.head = load_probe(files.head, num_features=num_features, num_classes=num_classes).head
        return
    state = load(read_regular_file(files.head, limit=256 << 20, what="head file"))
    if any(k.startswith("head.") for k in state) and all(k.startswith("head.") for k in state):
        weight = state["head.weight"]
        model.head = torch.nn.Linear(weight.shape[1], weight.shape[0])
    else:
        model.head = torch.nn.Linear(num_features, num_classes)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(k.startswith("head.") for k in missing):
        raise _CannotVerify(f"the head file does not fit the model ({(unexpected or missing)[0]})")


def _version() -> str:
    import ssl_robustbench

    return ssl_robustbench.__version__
