"""``robustbench verify``: re-run a seeded random sample of a card's conditions and images from the weights the card
names, under its recorded protocol, and compare image by image with the card's evidence.

The model is rebuilt from the card's ``weights`` (a zoo id, or a URL with the zoo-card fields; the checkpoint's
sha256 must equal the card's) and the scored head from the submitted head file (pinned by sha256). The evaluation
data is rebuilt from the card's dataset, split and subset and must have the card's data identity (class list and
file-list digest), so a verifier with another copy of the data gets "cannot verify", never a false "failed".

Deterministic conditions (clean, perspective views, released trees, the corruptions that draw no random numbers,
the clean flags of the adversarial suite) must agree image by image up to ``FLIP_ALLOWANCE`` of the sample (float
noise across devices flips a few near-tied images). Stochastic ones (random corruptions, attacks) cannot agree
image by image: the card's per-image results on the sample are compared with the re-run's by a one-sided exact
binomial test on the discordant images (the card correct where the re-run is not, against the reverse) — a card
that claims more than its model does fails when p < ``STOCHASTIC_ALPHA``. Verification does not re-fit the head:
the submitted head is what is checked against the weights and the evidence.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
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
OUTCOMES = ("verified", "failed", "cannot verify", "private")


@dataclasses.dataclass
class Verification:
    """The outcome for one card and what was compared."""

    card: str
    outcome: str
    reason: str
    conditions: list[dict[str, Any]]
    record: dict[str, Any]


def verify_card(files: Any, *, images: int = 100, conditions: int = 3, seed: int = 0, data_root: str | None = None,
                overrides: tuple[str, ...] = (), device: str = "auto", cache_dir: str | None = None) -> Verification:
    """Verifies one card (``store.CardFiles``): see the module docstring."""
    card: ResultCard = files.card
    base = {"tool_version": _version(), "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "seed": seed, "images_per_condition": images, "evidence_sha256": card.evidence["sha256"],
            "rows_sha256": card.rows_sha256}

    def done(outcome: str, reason: str, compared: list[dict[str, Any]] | None = None) -> Verification:
        compared = compared or []
        record = base | {"outcome": outcome, "reason": reason, "conditions": compared}
        return Verification(card.filename, outcome, reason, compared, record)

    if card.model.weights["kind"] == "private":
        return done("private", "the card's weights are private: nothing to re-run")
    try:
        ctx, bench = _context(files, data_root=data_root, overrides=overrides, device=device, cache_dir=cache_dir)
    except _CannotVerify as err:
        return done("cannot verify", str(err))
    records = files.records
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(records), size=min(conditions, len(records)), replace=False).tolist())
    compared = []
    from ssl_robustbench.benchmarks.base import Condition

    for i in chosen:
        e = records[i]
        cond = Condition(e.key, e.severity, e.params)
        pick = np.sort(rng.choice(len(e.index), size=min(images, len(e.index)), replace=False))
        values, labels = bench.reproduce(cond, ctx, [int(p) for p in e.index[pick]])
        values, labels = np.asarray(values).reshape(-1), np.asarray(labels).reshape(-1)
        compared.append(_compare(e, pick, values, labels, bench.deterministic(cond, bench.settings(ctx.cfg))))
    failed = [c for c in compared if not c["passed"]]
    if failed:
        return done("failed", f"{failed[0]['condition']}: {failed[0]['why']}", compared)
    return done("verified", f"{len(compared)} condition(s), {sum(c['sample'] for c in compared)} images agree",
                compared)


def _compare(e: Any, pick: np.ndarray, values: np.ndarray, labels: np.ndarray, deterministic: bool) -> dict:
    claimed, claimed_labels = e.values[pick], e.labels[pick]
    out: dict[str, Any] = {"condition": e.column, "deterministic": deterministic, "sample": len(pick)}
    if not np.array_equal(labels, claimed_labels):
        return out | {"passed": False, "why": f"{int((labels != claimed_labels).sum())} labels differ from the "
                                                "evidence (another order or class list)"}
    ok_claimed = claimed == claimed_labels if e.kind == "pred" else claimed.astype(bool)
    ok_now = values == labels if e.kind == "pred" else values.astype(bool)
    b, c = int((ok_claimed & ~ok_now).sum()), int((~ok_claimed & ok_now).sum())
    out |= {"claimed_correct": int(ok_claimed.sum()), "rerun_correct": int(ok_now.sum()), "b": b, "c": c}
    if deterministic:
        mismatches = int((claimed != values).sum())
        allowed = max(1, math.floor(FLIP_ALLOWANCE * len(pick)))
        out |= {"mismatches": mismatches, "allowed": allowed, "passed": mismatches <= allowed}
        out["why"] = f"{mismatches} of {len(pick)} per-image results differ (allowed {allowed})"
        return out
    from scipy.stats import binomtest

    p = float(binomtest(b, b + c, 0.5, alternative="greater").pvalue) if b + c else 1.0
    out |= {"p_value": p, "passed": p >= STOCHASTIC_ALPHA,
            "why": f"the card is right on {b} images the re-run gets wrong and wrong on {c} it gets right "
                   f"(one-sided binomial p = {p:.2g} < {STOCHASTIC_ALPHA:g})"}
    return out


class _CannotVerify(UserError):
    pass


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
    else:
        _load_head(model, files, card, num_features=model.backbone.num_features, num_classes=num_classes)
    model = model.to(run_device).eval()
    ctx = EvalContext(model=model, clean=clean, train=_no_training, num_classes=len(clean.classes),
                      input_size=zoo.input_size, cfg=cfg, device=run_device, run_dir=Path(tempfile.gettempdir()),
                      preprocess=zoo.preprocess, dual_bn=loaded.dual_bn, eval_data=p.eval_data)
    return ctx, bench


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


# --- the store's record ---------------------------------------------------------------------------------------


def record_path(store: Path, card_filename: str) -> Path:
    return Path(store) / "verifications" / f"{Path(card_filename).stem}.json"


def record(store: Path, result: Verification) -> Path:
    """Appends ``result`` to the store's record of the card (``verifications/<card stem>.json``)."""
    from ssl_robustbench.fileio import atomic_write_text

    path = record_path(store, result.card)
    history = _history(path)
    history.append(result.record)
    atomic_write_text(path, json.dumps({"card": result.card, "records": history}, indent=1, allow_nan=False))
    return path


def _history(path: Path) -> list[dict[str, Any]]:
    if not path.exists() and not path.is_symlink():
        return []
    try:
        data = json.loads(read_regular_file(path, limit=4 << 20, what="verification record"))
        records = data["records"]
        return [r for r in records if isinstance(r, dict)] if isinstance(records, list) else []
    except (UserError, ValueError, KeyError, TypeError):
        return []


def statuses(store: Path, cards: list[ResultCard]) -> dict[str, str]:
    """Card file name → ``verified`` / ``failed`` / ``private`` / ``unverified``: the latest record of the store
    that checked this card's evidence and rows (a record of an earlier card under the same name does not count)."""
    out = {}
    for card in cards:
        if card.model.weights.get("kind") == "private":
            out[card.filename] = "private"
            continue
        rows = card.rows_sha256
        mine = [r for r in _history(record_path(store, card.filename))
                if r.get("evidence_sha256") == card.evidence["sha256"] and r.get("rows_sha256") == rows
                and r.get("outcome") in ("verified", "failed")]
        out[card.filename] = mine[-1]["outcome"] if mine else "unverified"
    return out


