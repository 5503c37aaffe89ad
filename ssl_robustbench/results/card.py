"""Result cards: one JSON file per (model, suite, protocol), the unit of the leaderboard.

A card carries the model's identity (zoo card fields and checkpoint sha256), the protocol (config hash,
dataset and split, preprocessing, probe recipe, subset size, seed, ε where attacks apply), the long rows, their
aggregates (``rank_by`` names the one that ranks), sanity flags, hardware and date, and ``rows_sha256`` — the
hash of its rows' canonical JSON — so a card whose rows were edited after the fact is refused. Validation never
raises anything but ``CardError``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

from ssl_robustbench.errors import UserError
from ssl_robustbench.results.rows import COLUMNS, ResultRow

SCHEMA_VERSION = 1
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
_HEX = re.compile(r"^[0-9a-f]+$")
_TEXT_LIMIT = 2000


class CardError(UserError):
    """A result card that does not satisfy the schema (the message names the field)."""


def rows_digest(rows: list[dict[str, Any]]) -> str:
    """sha256 of the rows' canonical JSON (sorted keys, no whitespace)."""
    text = json.dumps(rows, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def aggregate(suite: str, rows: list[ResultRow]) -> dict[str, float]:
    """The suite's aggregates (its Benchmark decides; the first ranks the leaderboard)."""
    from ssl_robustbench.benchmarks import BENCHMARKS
    from ssl_robustbench.benchmarks.base import Measurement

    measured = [Measurement(r.condition, r.severity, r.metric, r.value, r.n) for r in rows]
    return BENCHMARKS.get(suite)().aggregates(measured)


def card_filename(card: dict[str, Any]) -> str:
    """``<model id>__<suite>__<config hash[:8]>.json`` (all three are validated identifiers)."""
    return f"{card['model']['id']}__{card['suite']}__{card['protocol']['config_hash'][:8]}.json"


def cards_from_run(run_dir: Path) -> list[dict[str, Any]]:
    """Builds one card per suite from an eval run directory (config, environment, model record, probe, rows)."""
    import yaml

    from ssl_robustbench.probes.linear import load_probe_record
    from ssl_robustbench.results.rows import read_table

    run_dir = Path(run_dir)
    needed = ["config.yaml", "environment.json", "model.json", "results.json"]
    missing = [n for n in needed if not (run_dir / n).is_file()]
    if missing:
        raise UserError(f"{run_dir} is not a finished eval run directory (no {missing[0]})")
    config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    env = json.loads((run_dir / "environment.json").read_text(encoding="utf-8"))
    model = json.loads((run_dir / "model.json").read_text(encoding="utf-8"))
    probe = load_probe_record(run_dir / "probe.safetensors") if (run_dir / "probe.safetensors").is_file() else {}
    rows = read_table(run_dir / "results.json")
    sanity_file = run_dir / "adversarial" / "sanity.json"
    flags = json.loads(sanity_file.read_text(encoding="utf-8"))["flags"] if sanity_file.is_file() else []
    cards = []
    for suite in dict.fromkeys(r.suite for r in rows):
        suite_rows = [r for r in rows if r.suite == suite]
        records = [dataclasses.asdict(r) for r in suite_rows]
        m = model["card"]
        head = config.get("head", "probe")
        recipe = (probe.get("recipe", config["probe"]) if head == "probe"
                  else {k: probe.get(k) for k in ("source", "url", "sha256", "published_top1")})
        cards.append({
            "schema_version": SCHEMA_VERSION,
            "model": {"id": m["id"], "method": m["method"], "arch": m["arch"], "paper": m["paper"],
                      "license": m["license"], "pretrain_data": m["pretrain_data"],
                      "checkpoint_sha256": model["checkpoint_sha256"]},
            "suite": suite,
            "protocol": {"config_hash": suite_rows[0].config_hash, "dataset": config["data"]["name"],
                         "eval_split": config["data"]["eval_split"], "subset_size": config["data"]["eval_limit"],
                         "seed": config["run"]["seed"], "epsilon": _epsilon(suite_rows),
                         "preprocessing": {k: m[k] for k in ("input_size", "crop_pct", "interpolation")},
                         "probe": {"id": suite_rows[0].probe_id, "head": head, "recipe": recipe}},
            "rows": records,
            "rows_sha256": rows_digest(records),
            "aggregates": (aggregates := aggregate(suite, suite_rows)),
            "rank_by": next(iter(aggregates)),
            "sanity_flags": flags if suite == "adversarial" else [],
            "hardware": {k: env.get(k) for k in ("device", "gpu", "cpu_threads", "platform", "torch")},
            "version": env.get("ssl_robustbench", suite_rows[0].version),
            "created_at": max(r.created_at for r in suite_rows),
        })
    return cards


def _epsilon(rows: list[ResultRow]) -> float | None:
    """ε from condition names such as ``slf/pgd20 Linf eps=8/255`` (None for suites without attacks)."""
    for r in rows:
        match = re.search(r"eps=([0-9.]+)(?:/([0-9]+))?", r.condition)
        if match:
            return float(match.group(1)) / (float(match.group(2)) if match.group(2) else 1.0)
    return None


def _need(obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise CardError(f"{where}: missing field {key!r}")
    value = obj[key]
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise CardError(f"{where}: {key!r} must be a number, not a boolean")
    if not isinstance(value, kind):
        name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise CardError(f"{where}: {key!r} must be {name}, got {type(value).__name__}")
    if isinstance(value, str) and len(value) > _TEXT_LIMIT:
        raise CardError(f"{where}: {key!r} is longer than {_TEXT_LIMIT} characters")
    if isinstance(value, float) and not math.isfinite(value):
        raise CardError(f"{where}: {key!r} must be finite")
    return value


def _identifier(value: str, field: str, where: str) -> None:
    if not ID_PATTERN.match(value):
        raise CardError(f"{where}: {field} {value[:40]!r} must match {ID_PATTERN.pattern} (no paths, no markup)")


def validate_card(card: Any, *, where: str = "card") -> dict[str, Any]:
    """Checks a parsed card against the schema and its own hashes; returns it or raises CardError."""
    if not isinstance(card, dict):
        raise CardError(f"{where}: a card must be a JSON object")
    if _need(card, "schema_version", int, where) != SCHEMA_VERSION:
        raise CardError(f"{where}: schema_version {card['schema_version']} is not {SCHEMA_VERSION}")
    model = _need(card, "model", dict, where)
    for key in ("id", "method", "arch", "paper", "license", "pretrain_data", "checkpoint_sha256"):
        _need(model, key, str, f"{where}: model")
    _identifier(model["id"], "model id", where)
    if not (_HEX.match(model["checkpoint_sha256"]) and len(model["checkpoint_sha256"]) == 64):
        raise CardError(f"{where}: model.checkpoint_sha256 must be 64 hex digits")
    suite = _need(card, "suite", str, where)
    _identifier(suite, "suite", where)
    protocol = _need(card, "protocol", dict, where)
    config_hash = _need(protocol, "config_hash", str, f"{where}: protocol")
    if not (_HEX.match(config_hash) and len(config_hash) >= 8):
        raise CardError(f"{where}: protocol.config_hash must be hex digits")
    for key, kind in (("dataset", str), ("eval_split", str), ("seed", int), ("preprocessing", dict), ("probe", dict)):
        _need(protocol, key, kind, f"{where}: protocol")
    for key in ("subset_size", "epsilon"):
        if protocol.get(key) is not None:
            _need(protocol, key, (int, float), f"{where}: protocol")
    rows = _need(card, "rows", list, where)
    if not rows:
        raise CardError(f"{where}: rows must not be empty")
    for i, row in enumerate(rows):
        _validate_row(row, card, f"{where}: row {i}")
    if _need(card, "rows_sha256", str, where) != rows_digest(rows):
        raise CardError(f"{where}: rows_sha256 does not match the rows (edited after the run?)")
    aggregates = _need(card, "aggregates", dict, where)
    for key in aggregates:
        _need(aggregates, key, (int, float), f"{where}: aggregates")
    if _need(card, "rank_by", str, where) not in aggregates:
        raise CardError(f"{where}: rank_by must name one of the aggregates")
    flags = _need(card, "sanity_flags", list, where)
    if not all(isinstance(f, str) and len(f) <= 200 for f in flags):
        raise CardError(f"{where}: sanity_flags must be short strings")
    _need(card, "hardware", dict, where)
    _need(card, "version", str, where)
    try:
        dt.datetime.fromisoformat(_need(card, "created_at", str, where))
    except ValueError:
        raise CardError(f"{where}: created_at must be an ISO 8601 date") from None
    return card


def _validate_row(row: Any, card: dict[str, Any], where: str) -> None:
    if not isinstance(row, dict) or set(row) != set(COLUMNS):
        raise CardError(f"{where}: a row must have exactly the columns {', '.join(COLUMNS)}")
    kinds = {f.name: f.type for f in dataclasses.fields(ResultRow)}
    for key, kind in kinds.items():
        _need(row, key, {"int": int, "float": (int, float), "str": str}[kind], where)
    if row["model_id"] != card["model"]["id"] or row["suite"] != card["suite"]:
        raise CardError(f"{where}: model_id/suite differ from the card's")
    if row["config_hash"] != card["protocol"]["config_hash"]:
        raise CardError(f"{where}: config_hash differs from the card's protocol hash")


def load_card_json(path: Path) -> dict[str, Any]:
    """Parses a card file and validates it (malformed JSON, NaN/inf and bad fields are CardErrors)."""
    path = Path(path)
    try:
        card = json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse_constant)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        raise CardError(f"{path.name}: not valid JSON ({str(err).splitlines()[0][:120]})") from None
    return validate_card(card, where=path.name)


def read_card(path: Path) -> dict[str, Any]:
    """Reads a card from a store: valid, and filed under the name its contents give."""
    path = Path(path)
    card = load_card_json(path)
    if path.name != card_filename(card):
        raise CardError(f"{path.name}: file name must be {card_filename(card)}")
    return card


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed")
