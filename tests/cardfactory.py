"""Builders of valid (schema 2) result cards for the leaderboard tests."""

from __future__ import annotations

import json
from pathlib import Path

from ssl_robustbench.results.card import Head, ModelIdentity, Protocol, ResultCard, aggregate
from ssl_robustbench.results.rows import ResultRow

INJECT = '<img src=x onerror="document.title=\'pwned\'">|**bold**'
#: the summary row each suite reads its ranking aggregate from
SUMMARY = {"pd": ("pd:all", "mean_top1"), "c": ("c:all", "mean_top1"), "e": ("e:all", "mean_top1"),
           "adversarial": ("adversarial:all", "aa")}


def card_object(model="m-1", suite="clean", values=((("clean", 0), 0.5),), method="simclr", config="ab" * 8,
                flags=()) -> ResultCard:
    def row(cond, sev, metric, value):
        return ResultRow(model_id=model, method=method, arch="tiny_resnet", suite=suite, condition=cond,
                         severity=sev, metric=metric, value=value, n=100, seed=0, probe_id="p" * 16,
                         config_hash=config, version="0.1.0", created_at="2026-11-24T00:00:00+00:00")

    rows = [row(cond, sev, "top1", value) for (cond, sev), value in values]
    if suite in SUMMARY:
        cond, metric = SUMMARY[suite]
        shifted = [v for (c, _), v in values if c != "clean"] or [v for _, v in values]
        rows.append(row(cond, 0, metric, sum(shifted) / len(shifted)))
    protocol = Protocol(config_hash=config, dataset="embedded", eval_split="test", subset_size=100, seed=0,
                        eval_data={"kind": "TensorImages", "n": 2000}, train_data={"n": 5000},
                        preprocessing={"input_size": 64}, head=Head(kind="probe", id="p" * 16, recipe={}),
                        details={"settings": {}})
    return ResultCard(model=ModelIdentity(id=model, method=method, arch="tiny_resnet", paper="p", license="MIT",
                                          pretrain_data="embedded", checkpoint_sha256="c" * 64),
                      suite=suite, protocol=protocol, rows=tuple(rows), aggregates=aggregate(suite, rows),
                      sanity_flags=tuple(flags), hardware={"device": "cpu"}, version="0.1.0",
                      created_at="2026-11-24T00:00:00+00:00")


def make_card(*args, **kwargs) -> dict:
    """A valid card as parsed JSON (what a store file holds)."""
    return json.loads(card_object(*args, **kwargs).dumps())


def card_filename(card: dict) -> str:
    return f"{card['model']['id']}__{card['suite']}__{card['protocol']['config_hash'][:8]}.json"


def write_store(root: Path, cards) -> Path:
    (root / "cards").mkdir(parents=True)
    for card in cards:
        (root / "cards" / card_filename(card)).write_text(json.dumps(card))
    return root
