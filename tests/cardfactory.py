"""Builders of valid result cards for the leaderboard tests."""

from __future__ import annotations

import json
from pathlib import Path

from ssl_robustbench.results.card import card_filename, rows_digest

INJECT = '<img src=x onerror="document.title=\'pwned\'">|**bold**'


def make_card(model="m-1", suite="clean", values=((("clean", 0), 0.5),), method="simclr", config="ab" * 8):
    rows = [{"model_id": model, "method": method, "arch": "tiny_resnet", "suite": suite, "condition": cond,
             "severity": sev, "metric": "top1", "value": value, "n": 100, "seed": 0, "probe_id": "p" * 16,
             "config_hash": config, "version": "0.1.0", "created_at": "2026-11-24T00:00:00+00:00"}
            for (cond, sev), value in values]
    return {"schema_version": 1,
            "model": {"id": model, "method": method, "arch": "tiny_resnet", "paper": "p", "license": "MIT",
                      "pretrain_data": "embedded", "checkpoint_sha256": "c" * 64},
            "suite": suite,
            "protocol": {"config_hash": config, "dataset": "embedded", "eval_split": "test", "subset_size": None,
                         "seed": 0, "epsilon": None, "preprocessing": {"input_size": 64}, "probe": {"id": "p"}},
            "rows": rows, "rows_sha256": rows_digest(rows),
            "aggregates": {"mean_top1": sum(v for _, v in values) / len(values)}, "rank_by": "mean_top1",
            "sanity_flags": [], "hardware": {"device": "cpu"}, "version": "0.1.0",
            "created_at": "2026-11-24T00:00:00+00:00"}


def write_store(root: Path, cards) -> Path:
    (root / "cards").mkdir(parents=True)
    for card in cards:
        (root / "cards" / card_filename(card)).write_text(json.dumps(card))
    return root
