"""Builders of valid (schema 3) result cards for the leaderboard tests: per-image evidence is made first (``n``
images, the first round(value · n) right), and the rows, aggregates and digests follow from it as an eval makes
them, so every card passes validation against its evidence."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ssl_robustbench.benchmarks import BENCHMARKS
from ssl_robustbench.benchmarks.base import Condition
from ssl_robustbench.results.card import Head, ModelIdentity, Protocol, ResultCard, aggregate
from ssl_robustbench.results.evidence import image_evidence, to_bytes
from ssl_robustbench.results.rows import ResultRow

INJECT = '<img src=x onerror="document.title=\'pwned\'">|**bold**'
EVIDENCE: dict[str, bytes] = {}  # evidence sha256 → bytes, for write_store
CREATED = "2026-11-24T00:00:00+00:00"


def _params(suite: str, key: str) -> dict:
    if suite == "c":
        return {"corruption": key.removeprefix("c:")} if key != "clean" else {}
    if suite == "pd" and key != "clean":
        view, _, background = key.removeprefix("pd:").partition("/")
        return {"view": view, "background": background or "black"}
    if suite == "e":
        return {"subset": key.removeprefix("e:")}
    if suite == "adversarial":
        return {"attack": None} if key.endswith("/clean") else {"attack": "autoattack",
                                                               "metric": key.rsplit("/", 1)[-1]}
    return {}


def evidence_of(suite: str, values, n: int = 100, seed: int = 0) -> list:
    """Per-image records with the given top-1 values (a seeded order of which images are right)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    kind = "flag" if suite == "adversarial" else "pred"
    records = []
    for (key, severity), value in values:
        right = np.zeros(n, dtype=bool)
        right[rng.permutation(n)[: round(value * n)]] = True
        values_ = right.astype(int) if kind == "flag" else np.where(right, labels, (labels + 1) % 10)
        records.append(image_evidence(key, severity, kind, values_, labels, params=_params(suite, key)))
    return records


def card_object(model="m-1", suite="clean", values=((("clean", 0), 0.5),), method="simclr", config="ab" * 8,
                flags=(), n=100, seed=0, weights=None, dataset="embedded", eval_n=2000) -> ResultCard:
    records = evidence_of(suite, values, n=n, seed=seed)
    data = to_bytes(records)
    digest = hashlib.sha256(data).hexdigest()
    EVIDENCE[digest] = data

    def row(cond, sev, metric, value, count):
        return ResultRow(model_id=model, method=method, arch="tiny_resnet", suite=suite, condition=cond,
                         severity=sev, metric=metric, value=value, n=count, seed=0, probe_id="p" * 16,
                         config_hash=config, version="0.1.0", created_at=CREATED)

    rows = [row(r.key, r.severity, "top1", r.top1(), n) for r in records]
    top1 = {Condition(r.key, r.severity, r.params): r.top1() for r in records}
    rows += [row(m.condition, m.severity, m.metric, m.value, m.n)
             for m in BENCHMARKS.get(suite)().summarize(top1, n=n, data={})]
    protocol = Protocol(config_hash=config, dataset=dataset, eval_split="test", subset_size=n, seed=0,
                        eval_data={"kind": "TensorImages", "n": eval_n, "num_classes": 10},
                        train_data={"n": 5000}, preprocessing={"input_size": 64},
                        head=Head(kind="probe", id="p" * 16, recipe={"solver": "lbfgs"}), details={"settings": {}})
    return ResultCard(model=ModelIdentity(id=model, method=method, arch="tiny_resnet", paper="p", license="MIT",
                                          pretrain_data="embedded", checkpoint_sha256="c" * 64,
                                          weights=weights or {"kind": "private"}),
                      suite=suite, protocol=protocol, rows=tuple(rows), aggregates=aggregate(suite, rows),
                      sanity_flags=tuple(flags), hardware={"device": "cpu"}, version="0.1.0", created_at=CREATED,
                      evidence={"sha256": digest, "head_sha256": None})


def make_card(*args, **kwargs) -> dict:
    """A valid card as parsed JSON (what a store file holds); its evidence is kept for ``write_store``."""
    return json.loads(card_object(*args, **kwargs).dumps())


def card_filename(card: dict) -> str:
    return f"{card['model']['id']}__{card['suite']}__{card['protocol']['config_hash'][:8]}.json"


def write_card(root: Path, card: dict, *, name: str | None = None) -> Path:
    """Writes ``card`` and its evidence under ``root`` (``cards/`` and ``evidence/``)."""
    name = name or card_filename(card)
    (root / "cards").mkdir(parents=True, exist_ok=True)
    (root / "evidence").mkdir(parents=True, exist_ok=True)
    (root / "cards" / name).write_text(json.dumps(card))
    data = EVIDENCE.get(card.get("evidence", {}).get("sha256", ""), b"")
    (root / "evidence" / f"{Path(name).stem}.parquet").write_bytes(data)
    return root / "cards" / name


def write_store(root: Path, cards) -> Path:
    (root / "cards").mkdir(parents=True, exist_ok=True)
    for card in cards:
        write_card(root, card)
    return root
