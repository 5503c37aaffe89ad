"""Result cards: one per (model, suite, protocol), the unit of the leaderboard — a dataclass, built in memory by
the evaluation from what ran, serialized and parsed here and nowhere else.

A card (``schema_version`` 2) says who the model is (zoo card fields, checkpoint sha256), what protocol ran (the
suite's protocol hash, data identity, subset size, preprocessing, the head that was scored with its recipe, the
suite's settings, threat model and attacks, engine mode, seed), the rows, the aggregates, sanity flags, hardware
and date. ``rows_sha256`` pins the rows. Validation never trusts a card's word: aggregates are recomputed from the
rows by the suite, the ranking metric is the suite's, every string is checked against a pattern (no control
characters, no paths or markup in identifiers). Version-1 cards are read and migrated. Only ``CardError`` is raised.
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

SCHEMA_VERSION = 2
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
_HEX = re.compile(r"^[0-9a-f]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")  # incl. bidi overrides
_TEXT_LIMIT = 2000
_LABEL_LIMIT = 200
_MAX_DEPTH = 6


class CardError(UserError):
    """A result card that does not satisfy the schema (the message names the field)."""


@dataclasses.dataclass(frozen=True)
class ModelIdentity:
    id: str
    method: str
    arch: str
    paper: str
    license: str
    pretrain_data: str
    checkpoint_sha256: str


@dataclasses.dataclass(frozen=True)
class Head:
    """The head whose accuracy the rows report: ``probe`` (with its solver recipe), ``released`` (the authors'),
    or a suite's own finetune (``slf``, ``alf``, ``aff`` with its recipe)."""

    kind: str
    id: str
    recipe: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Protocol:
    """What must match for two cards to be compared (``config_hash`` digests it all)."""

    config_hash: str
    dataset: str
    eval_split: str
    subset_size: int
    seed: int
    eval_data: dict[str, Any]
    train_data: dict[str, Any] | None
    preprocessing: dict[str, Any]
    head: Head
    details: dict[str, Any]  # the suite's card_details: settings, threat model, attacks, engine …


@dataclasses.dataclass(frozen=True)
class ResultCard:
    model: ModelIdentity
    suite: str
    protocol: Protocol
    rows: tuple[ResultRow, ...]
    aggregates: dict[str, float]
    sanity_flags: tuple[str, ...]
    hardware: dict[str, Any]
    version: str
    created_at: str
    schema_version: int = SCHEMA_VERSION

    @property
    def rank_metric(self) -> str | None:
        """The aggregate that ranks this card: the suite's choice (``Benchmark.rank_metrics``)."""
        from ssl_robustbench.benchmarks import BENCHMARKS

        return BENCHMARKS.get(self.suite)().rank_metric(self.aggregates)

    @property
    def filename(self) -> str:
        """``<model id>__<suite>__<protocol hash[:8]>.json`` (all three are validated identifiers)."""
        return f"{self.model.id}__{self.suite}__{self.protocol.config_hash[:8]}.json"

    def to_json(self) -> dict[str, Any]:
        rows = [dataclasses.asdict(r) for r in self.rows]
        out = dataclasses.asdict(self) | {"rows": rows, "rows_sha256": rows_digest(rows),
                                          "rank_by": self.rank_metric, "sanity_flags": list(self.sanity_flags)}
        return out

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, sort_keys=True, allow_nan=False, ensure_ascii=False)


def rows_digest(rows: list[dict[str, Any]]) -> str:
    """sha256 of the rows' canonical JSON (sorted keys, no whitespace)."""
    text = json.dumps(rows, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def aggregate(suite: str, rows: list[ResultRow]) -> dict[str, float]:
    """The suite's aggregates, recomputed from its rows by its Benchmark."""
    from ssl_robustbench.benchmarks import BENCHMARKS
    from ssl_robustbench.benchmarks.base import Measurement

    measured = [Measurement(r.condition, r.severity, r.metric, r.value, r.n) for r in rows]
    return BENCHMARKS.get(suite)().aggregates(measured)


def _rows_digest_of(rows: Any, where: str) -> str:
    try:
        return rows_digest(rows)
    except (TypeError, ValueError, RecursionError):
        raise CardError(f"{where}: rows are not JSON data (NaN, infinity or objects)") from None


# --- validation -----------------------------------------------------------------------------------------------


def _text(value: Any, where: str, *, limit: int = _TEXT_LIMIT) -> str:
    if not isinstance(value, str):
        raise CardError(f"{where} must be a string, got {type(value).__name__}")
    if len(value) > limit:
        raise CardError(f"{where} is longer than {limit} characters")
    if _CONTROL.search(value):
        raise CardError(f"{where} holds control or bidi characters")
    return value


def _number(value: Any, where: str, *, kind: type | tuple[type, ...] = (int, float)) -> Any:
    if isinstance(value, bool) or not isinstance(value, kind):
        raise CardError(f"{where} must be a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise CardError(f"{where} must be finite")
    if abs(value) > 1e12:
        raise CardError(f"{where} is out of range")
    return value


def _identifier(value: Any, where: str) -> str:
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        shown = value[:40] if isinstance(value, str) else type(value).__name__
        raise CardError(f"{where} {shown!r} must match {ID_PATTERN.pattern} (no paths, no markup)")
    return value


def _hexdigest(value: Any, where: str, *, exact: int | None = None) -> str:
    if not isinstance(value, str) or not _HEX.match(value) or len(value) < 8 or (exact and len(value) != exact):
        raise CardError(f"{where} must be {exact or '≥ 8'} hex digits")
    return value


def _plain(value: Any, where: str, depth: int = 0) -> Any:
    """A JSON tree of bounded depth whose keys and strings pass ``_text`` and whose numbers are finite."""
    if depth > _MAX_DEPTH:
        raise CardError(f"{where} is nested too deeply")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return _number(value, where)
    if isinstance(value, str):
        return _text(value, where)
    if isinstance(value, list):
        return [_plain(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value[:1000])]
    if isinstance(value, dict):
        return {_text(k, f"{where} key", limit=_LABEL_LIMIT): _plain(v, f"{where}.{k}", depth + 1)
                for k, v in value.items()}
    raise CardError(f"{where} must be JSON data")


def _mapping(obj: Any, where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise CardError(f"{where} must be an object")
    return obj


def _fields(obj: Any, cls: type, where: str) -> dict[str, Any]:
    obj = _mapping(obj, where)
    names = {f.name for f in dataclasses.fields(cls)}
    missing = sorted(names - set(obj))
    if missing:
        raise CardError(f"{where}: missing field {missing[0]!r}")
    return {k: obj[k] for k in names}


def _row(obj: Any, where: str) -> ResultRow:
    if not isinstance(obj, dict) or set(obj) != set(COLUMNS):
        raise CardError(f"{where}: a row must have exactly the columns {', '.join(COLUMNS)}")
    for key in ("model_id", "suite"):
        _identifier(obj[key], f"{where}.{key}")
    for key in ("method", "arch", "condition", "metric", "probe_id", "version", "created_at"):
        _text(obj[key], f"{where}.{key}", limit=_LABEL_LIMIT)
    for key in ("severity", "n", "seed"):
        if _number(obj[key], f"{where}.{key}", kind=int) < 0:
            raise CardError(f"{where}.{key} must be ≥ 0")
    _number(obj["value"], f"{where}.value")
    _hexdigest(obj["config_hash"], f"{where}.config_hash")
    return ResultRow(**obj)


def parse_card(obj: Any, *, where: str = "card") -> ResultCard:
    """A validated ``ResultCard`` from parsed JSON (schema 1 is migrated first); raises ``CardError``."""
    from ssl_robustbench.benchmarks import BENCHMARKS

    obj = _mapping(obj, where)
    version = obj.get("schema_version")
    if version == 1:
        obj = migrate_v1(obj, where=where)
    elif version != SCHEMA_VERSION:
        raise CardError(f"{where}: schema_version {version!r} is not 1 or {SCHEMA_VERSION}")
    f = _fields(obj, ResultCard, where)
    m = _fields(f["model"], ModelIdentity, f"{where}: model")
    _identifier(m["id"], f"{where}: model id")
    for key in ("method", "arch", "paper", "license", "pretrain_data"):
        _text(m[key], f"{where}: model.{key}")
    _hexdigest(m["checkpoint_sha256"], f"{where}: model.checkpoint_sha256", exact=64)
    suite = _identifier(f["suite"], f"{where}: suite")
    if suite not in BENCHMARKS:
        raise CardError(f"{where}: suite {suite!r} is not a registered benchmark; its aggregates cannot be checked")
    p = _fields(f["protocol"], Protocol, f"{where}: protocol")
    _hexdigest(p["config_hash"], f"{where}: protocol.config_hash")
    for key in ("dataset", "eval_split"):
        _text(p[key], f"{where}: protocol.{key}", limit=_LABEL_LIMIT)
    for key in ("subset_size", "seed"):
        if _number(p[key], f"{where}: protocol.{key}", kind=int) < 0:
            raise CardError(f"{where}: protocol.{key} must be ≥ 0")
    h = _fields(p["head"], Head, f"{where}: protocol.head")
    head = Head(kind=_text(h["kind"], f"{where}: head.kind", limit=_LABEL_LIMIT),
                id=_text(h["id"], f"{where}: head.id", limit=_LABEL_LIMIT),
                recipe=_plain(_mapping(h["recipe"], f"{where}: head.recipe"), f"{where}: head.recipe"))
    protocol = Protocol(**{k: p[k] for k in ("config_hash", "dataset", "eval_split", "subset_size", "seed")},
                        eval_data=_plain(_mapping(p["eval_data"], f"{where}: eval_data"), f"{where}: eval_data"),
                        train_data=None if p["train_data"] is None else _plain(
                            _mapping(p["train_data"], f"{where}: train_data"), f"{where}: train_data"),
                        preprocessing=_plain(_mapping(p["preprocessing"], f"{where}: preprocessing"),
                                             f"{where}: preprocessing"),
                        head=head, details=_plain(_mapping(p["details"], f"{where}: details"), f"{where}: details"))
    raw_rows = f["rows"]
    if not isinstance(raw_rows, list) or not raw_rows:
        raise CardError(f"{where}: rows must be a non-empty list")
    if obj.get("rows_sha256") != _rows_digest_of(raw_rows, where):
        raise CardError(f"{where}: rows_sha256 does not match the rows (edited after the run?)")
    rows = tuple(_row(r, f"{where}: row {i}") for i, r in enumerate(raw_rows))
    for i, r in enumerate(rows):
        if (r.model_id, r.suite, r.config_hash) != (m["id"], suite, p["config_hash"]):
            raise CardError(f"{where}: row {i}: model_id/suite/config_hash differ from the card's")
    claimed = {_text(k, f"{where}: aggregate name", limit=_LABEL_LIMIT): _number(v, f"{where}: aggregates.{k}")
               for k, v in _mapping(f["aggregates"], f"{where}: aggregates").items()}
    recomputed = aggregate(suite, list(rows))
    if set(claimed) != set(recomputed) or any(abs(claimed[k] - v) > 1e-9 for k, v in recomputed.items()):
        raise CardError(f"{where}: aggregates do not follow from the rows (recomputed: "
                        f"{', '.join(f'{k}={v:.4f}' for k, v in recomputed.items()) or 'none'})")
    flags = f["sanity_flags"]
    if not isinstance(flags, list):
        raise CardError(f"{where}: sanity_flags must be a list")
    hardware = _plain(_mapping(f["hardware"], f"{where}: hardware"), f"{where}: hardware")
    created = _text(f["created_at"], f"{where}: created_at", limit=64)
    try:
        dt.datetime.fromisoformat(created)
    except ValueError:
        raise CardError(f"{where}: created_at must be an ISO 8601 date") from None
    return ResultCard(model=ModelIdentity(**m), suite=suite, protocol=protocol, rows=rows, aggregates=recomputed,
                      sanity_flags=tuple(_text(x, f"{where}: sanity flag", limit=_LABEL_LIMIT) for x in flags),
                      hardware=hardware, version=_text(f["version"], f"{where}: version", limit=64),
                      created_at=created)


def migrate_v1(obj: dict[str, Any], *, where: str) -> dict[str, Any]:
    """A schema-1 card as schema 2: its rows are verified against their v1 hash first, then the protocol fields
    are mapped (v1 cards did not record the data identity, the suite settings or — for adversarial cards — the
    finetuned head, so those say "not recorded"); adversarial cards gain the ``adversarial:all`` summary rows that
    schema 2 reads its aggregates from (SA/RA/AA mapped from the v1 condition labels, once, here)."""
    rows = obj.get("rows")
    if not isinstance(rows, list) or obj.get("rows_sha256") != _rows_digest_of(rows, where):
        raise CardError(f"{where}: rows_sha256 does not match the rows (edited after the run?)")
    protocol = _mapping(obj.get("protocol"), f"{where}: protocol")
    probe = protocol.get("probe") if isinstance(protocol.get("probe"), dict) else {}
    if obj.get("suite") == "adversarial" and not any(isinstance(r, dict) and r.get("condition") ==
                                                     "adversarial:all" for r in rows):
        summary = []
        for metric, marker in (("sa", "/clean"), ("ra", "/pgd"), ("aa", "/autoattack")):
            found = next((r for r in rows if isinstance(r, dict) and marker in str(r.get("condition"))), None)
            if found is not None:
                summary.append(dict(found) | {"condition": "adversarial:all", "metric": metric})
        rows = rows + summary
    subset = protocol.get("subset_size")
    if not isinstance(subset, int):
        subset = max((r.get("n", 0) for r in rows if isinstance(r, dict) and isinstance(r.get("n"), int)), default=0)
    details = {"migrated_from_schema": 1, "settings": "not recorded"}
    if protocol.get("epsilon") is not None:
        details["epsilon"] = protocol["epsilon"]
    out = dict(obj)
    out.update(schema_version=SCHEMA_VERSION, rows=rows, rows_sha256=rows_digest(rows), protocol={
        "config_hash": protocol.get("config_hash"), "dataset": protocol.get("dataset"),
        "eval_split": protocol.get("eval_split"), "subset_size": subset, "seed": protocol.get("seed"),
        "eval_data": {"recorded": False}, "train_data": None,
        "preprocessing": protocol.get("preprocessing") if isinstance(protocol.get("preprocessing"), dict) else {},
        "head": {"kind": "probe" if obj.get("suite") != "adversarial" else "not recorded",
                 "id": str(probe.get("id", "unknown")),
                 "recipe": probe.get("recipe") if isinstance(probe.get("recipe"), dict) else {}},
        "details": details})
    suite = obj.get("suite")
    if isinstance(suite, str) and ID_PATTERN.match(suite):
        try:
            out["aggregates"] = aggregate(suite, [ResultRow(**r) for r in rows])
        except (KeyError, TypeError, ValueError, UserError):
            pass  # parse_card refuses the card with the precise reason
    return out


def load_card_json(path: Path) -> ResultCard:
    """Parses a card file and validates it (malformed JSON, NaN/inf and bad fields are CardErrors)."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse_constant)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        raise CardError(f"{path.name}: not valid JSON ({str(err).splitlines()[0][:120]})") from None
    return parse_card(obj, where=path.name)


def read_card(path: Path) -> ResultCard:
    """Reads a card from a store: valid, and filed under the name its contents give."""
    path = Path(path)
    card = load_card_json(path)
    if path.name != card.filename:
        raise CardError(f"{path.name}: file name must be {card.filename}")
    return card


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed")
