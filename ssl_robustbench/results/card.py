"""Result cards: one per (model, suite, protocol), the unit of the leaderboard — a dataclass, built in memory by
the evaluation from what ran, serialized and parsed here and nowhere else.

A card (``schema_version`` 4) says who the model is (zoo card fields, checkpoint sha256, and where its weights
are: a zoo id, a URL + sha256, or ``private``), what protocol ran (data identity, subset size, the image set its
evidence covers, preprocessing, the head that was scored with its recipe, the suite's settings, threat model and
attacks, engine mode, seed), the rows, the aggregates, sanity flags, hardware and date, and its evidence: the sha256
of the per-image record (``results.evidence``) and of the scored head's file. ``rows_sha256`` pins the rows.

Validation never trusts a card's word: the protocol hash (the board key) is recomputed from the protocol's content
(``protocol_digest``) and the image set from the evidence (``image_set``: every condition's positions and labels);
every row is recomputed from the evidence (top-1 per condition, summary rows by the suite's ``summarize``),
aggregates from the rows, the ranking metric is the suite's; a suite that scores the whole evaluation set must
cover it, with the data identity's label digest; every value is checked in range; identifiers fullmatch an ASCII
pattern. A stated hash, extent or digest is only compared with the recomputed one, never used. Cards of schema
1–3 are refused with the fix. Only ``CardError`` is raised.
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

SCHEMA_VERSION = 4
#: identifiers: ASCII lowercase, digits and inner ``.``/``_``/``-``, ending in a letter or digit (always fullmatch)
ID_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,98}[a-z0-9])?")
WEIGHT_KINDS = ("zoo", "url", "private")
#: the range of each row metric (fractions in [0, 1]; drops are differences of fractions; CE ratios are ≥ 0); any
#: other metric (a plug-in attack's robust accuracy) is a fraction
METRIC_RANGES = {"top1": (0.0, 1.0), "mean_top1": (0.0, 1.0), "mean_error": (0.0, 1.0), "sa": (0.0, 1.0),
                 "ra": (0.0, 1.0), "aa": (0.0, 1.0), "drop": (-1.0, 1.0), "mce_alexnet": (0.0, 100.0),
                 "relative_mce_alexnet": (-100.0, 100.0), "ce_alexnet": (0.0, 100.0)}
CLOCK_SKEW = dt.timedelta(days=1)
EARLIEST = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
_HEX = re.compile(r"^[0-9a-f]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")  # incl. bidi overrides
_TEXT_LIMIT = 2000
_LABEL_LIMIT = 200
_MAX_DEPTH = 6
FILE_HASH_DIGITS = 16


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
    weights: dict[str, Any]  # {"kind": "zoo", "zoo_id"} | {"kind": "url", "url", "zoo_card"} | {"kind": "private"}


@dataclasses.dataclass(frozen=True)
class Head:
    """The head whose accuracy the rows report: ``probe`` (with its solver recipe), ``released`` (the authors'),
    or a suite's own finetune (``slf``, ``alf``, ``aff`` with its recipe)."""

    kind: str
    id: str
    recipe: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Protocol:
    """What must match for two cards to be compared: ``config_hash`` is ``protocol_digest`` of the rest (the
    board key), ``images`` the image set the evidence covers (``image_set``)."""

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
    images: dict[str, Any]  # image_set(evidence): conditions, image slots and their digest


@dataclasses.dataclass(frozen=True)
class ResultCard:
    """One suite's result for one model: what a store files and a board ranks (``docs/leaderboard.md``).

    Attributes:
        model: who was scored (id, method, arch, paper, license, checkpoint sha256, where the weights come from).
        suite: the suite's name (``clean``, ``c``, ``pd`` …).
        protocol: what must match for two cards to share a board; ``protocol.config_hash`` is its digest.
        rows: every condition's metrics (``ResultRow``).
        aggregates: the suite's summary numbers (fractions), one of which ranks the card (``rank_metric``).
        sanity_flags: warnings the run raised (a flagged card is listed, not ranked).
        hardware: device, threads, torch version of the run.
        version: the ssl-robustbench version that wrote it.
        created_at: ISO timestamp of the run.
        evidence: sha256 of the per-image evidence file and of the scored head's file.
        schema_version: the card schema's version.
    """

    model: ModelIdentity
    suite: str
    protocol: Protocol
    rows: tuple[ResultRow, ...]
    aggregates: dict[str, float]
    sanity_flags: tuple[str, ...]
    hardware: dict[str, Any]
    version: str
    created_at: str
    evidence: dict[str, Any]  # {"sha256": of the evidence file, "head_sha256": of the scored head's file or None}
    schema_version: int = SCHEMA_VERSION

    @property
    def rank_metric(self) -> str | None:
        """The aggregate that ranks this card: the suite's choice (``Benchmark.rank_metrics``)."""
        from ssl_robustbench.benchmarks import BENCHMARKS

        return BENCHMARKS.get(self.suite)().rank_metric(self.aggregates)

    @property
    def filename(self) -> str:
        """``<model id>__<suite>__<protocol hash[:16]>.json`` (all three are validated identifiers)."""
        return f"{self.model.id}__{self.suite}__{self.protocol.config_hash[:FILE_HASH_DIGITS]}.json"

    @property
    def rows_sha256(self) -> str:
        """The digest that pins the rows (``rows_digest`` of their canonical JSON)."""
        return rows_digest([dataclasses.asdict(r) for r in self.rows])

    def to_json(self) -> dict[str, Any]:
        rows = [dataclasses.asdict(r) for r in self.rows]
        out = dataclasses.asdict(self) | {"rows": rows, "rows_sha256": rows_digest(rows),
                                          "rank_by": self.rank_metric, "sanity_flags": list(self.sanity_flags)}
        return out

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, sort_keys=True, allow_nan=False, ensure_ascii=False)


def canonical_digest(obj: Any) -> str:
    """sha256 of ``obj``'s canonical JSON (sorted keys, no whitespace, no NaN)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def rows_digest(rows: list[dict[str, Any]]) -> str:
    """sha256 of the rows' canonical JSON (``canonical_digest``)."""
    return canonical_digest(rows)


def protocol_digest(suite: str, protocol: Protocol) -> str:
    """The board key: sha256 of the canonical JSON of everything that makes two cards comparable — suite, data
    identities, split, subset size, image set, seed, the model's input size, the head's kind and recipe (a released
    head: its kind only; it is each model's own), the suite's recorded details. Not the model's own normalization or
    interpolation (models differ in them and still share a board), never a path."""
    head: dict[str, Any] = {"kind": protocol.head.kind}
    if protocol.head.kind != "released":
        head["recipe"] = protocol.head.recipe
    content = {"suite": suite, "dataset": protocol.dataset, "eval_split": protocol.eval_split,
               "subset_size": protocol.subset_size, "seed": protocol.seed, "eval_data": protocol.eval_data,
               "train_data": protocol.train_data, "input_size": protocol.preprocessing.get("input_size"),
               "head": head, "details": protocol.details, "images": protocol.images}
    return canonical_digest(content)


def labels_digest(labels: Any) -> str:
    """sha256 of a label vector as little-endian int64 (the data identity's ``labels``)."""
    import numpy as np

    return hashlib.sha256(np.asarray(labels, dtype="<i8").tobytes()).hexdigest()


def image_set(evidence: list[Any]) -> dict[str, Any]:
    """What images a card's evidence covers: the number of conditions, of image slots, and the sha256 over every
    condition's column name, positions and labels (in column order). Two cards with equal image sets were scored
    on the same images with the same labels: only they share a board."""
    import numpy as np

    h = hashlib.sha256()
    for e in sorted(evidence, key=lambda e: e.column):
        h.update(e.column.encode("utf-8") + b"\0")
        h.update(np.asarray(e.index, dtype="<i8").tobytes() + b"\1" + np.asarray(e.labels, dtype="<i8").tobytes())
    return {"conditions": len(evidence), "n": int(sum(len(e.values) for e in evidence)), "sha256": h.hexdigest()}


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
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
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
    for key in ("severity", "seed"):
        if _number(obj[key], f"{where}.{key}", kind=int) < 0:
            raise CardError(f"{where}.{key} must be ≥ 0")
    if _number(obj["n"], f"{where}.n", kind=int) < 1:
        raise CardError(f"{where}.n must be ≥ 1 (images evaluated)")
    value = _number(obj["value"], f"{where}.value")
    low, high = METRIC_RANGES.get(obj["metric"], (0.0, 1.0))  # a plug-in's own metric: a fraction
    if not low <= value <= high:
        raise CardError(f"{where}.value {value!r} of {obj['metric']} is outside [{low:g}, {high:g}]")
    _hexdigest(obj["config_hash"], f"{where}.config_hash")
    return ResultRow(**obj)


def parse_card(obj: Any, *, where: str = "card", evidence: list[Any] | None = None) -> ResultCard:
    """A validated ``ResultCard`` from parsed JSON; raises ``CardError``. ``evidence``: the card's per-image records
    (``results.evidence``), from which every row is recomputed; None checks the card on its own (a store always
    passes the evidence)."""
    from ssl_robustbench.benchmarks import BENCHMARKS

    obj = _mapping(obj, where)
    version = obj.get("schema_version")
    if version in (1, 2, 3):
        raise CardError(f"{where}: schema_version {version} has no derivable board key or image set (schema 1–2: no "
                        "per-image evidence) and cannot be checked; re-run the eval with this version of "
                        "ssl-robustbench and submit the run directory")
    if version != SCHEMA_VERSION:
        raise CardError(f"{where}: schema_version {version!r} is not {SCHEMA_VERSION}")
    f = _fields(obj, ResultCard, where)
    m = _fields(f["model"], ModelIdentity, f"{where}: model")
    _identifier(m["id"], f"{where}: model id")
    for key in ("method", "arch", "paper", "license", "pretrain_data"):
        _text(m[key], f"{where}: model.{key}")
    _hexdigest(m["checkpoint_sha256"], f"{where}: model.checkpoint_sha256", exact=64)
    m["weights"] = _weights(m["weights"], f"{where}: model.weights")
    suite = _identifier(f["suite"], f"{where}: suite")
    if suite not in BENCHMARKS:
        raise CardError(f"{where}: suite {suite!r} is not a registered benchmark; its aggregates cannot be checked")
    p = _fields(f["protocol"], Protocol, f"{where}: protocol")
    _hexdigest(p["config_hash"], f"{where}: protocol.config_hash", exact=64)
    for key in ("dataset", "eval_split"):
        _text(p[key], f"{where}: protocol.{key}", limit=_LABEL_LIMIT)
    if _number(p["seed"], f"{where}: protocol.seed", kind=int) < 0:
        raise CardError(f"{where}: protocol.seed must be ≥ 0")
    if _number(p["subset_size"], f"{where}: protocol.subset_size", kind=int) < 1:
        raise CardError(f"{where}: protocol.subset_size must be ≥ 1")
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
                        head=head, details=_plain(_mapping(p["details"], f"{where}: details"), f"{where}: details"),
                        images=_image_set_field(p["images"], f"{where}: protocol.images"))
    derived = protocol_digest(suite, protocol)
    if protocol.config_hash != derived:
        raise CardError(f"{where}: protocol.config_hash is not the digest of the card's protocol ({derived[:16]}…); "
                        "the board key is derived from the protocol, never declared")
    raw_rows = f["rows"]
    if not isinstance(raw_rows, list) or not raw_rows or len(raw_rows) > 10000:
        raise CardError(f"{where}: rows must be a non-empty list (at most 10,000)")
    if obj.get("rows_sha256") != _rows_digest_of(raw_rows, where):
        raise CardError(f"{where}: rows_sha256 does not match the rows (edited after the run?)")
    rows = tuple(_row(r, f"{where}: row {i}") for i, r in enumerate(raw_rows))
    for i, r in enumerate(rows):
        if (r.model_id, r.suite, r.config_hash) != (m["id"], suite, p["config_hash"]):
            raise CardError(f"{where}: row {i}: model_id/suite/config_hash differ from the card's")
        if r.n > protocol.subset_size:
            raise CardError(f"{where}: row {i}: n = {r.n} exceeds the card's {protocol.subset_size} images")
    claimed = {_text(k, f"{where}: aggregate name", limit=_LABEL_LIMIT): _number(v, f"{where}: aggregates.{k}")
               for k, v in _mapping(f["aggregates"], f"{where}: aggregates").items()}
    recomputed = aggregate(suite, list(rows))
    if set(claimed) != set(recomputed) or any(abs(claimed[k] - v) > 1e-9 for k, v in recomputed.items()):
        raise CardError(f"{where}: aggregates do not follow from the rows (recomputed: "
                        f"{', '.join(f'{k}={v:.4f}' for k, v in recomputed.items()) or 'none'})")
    flags = f["sanity_flags"]
    if not isinstance(flags, list) or len(flags) > 50:
        raise CardError(f"{where}: sanity_flags must be a list (at most 50)")
    hardware = _plain(_mapping(f["hardware"], f"{where}: hardware"), f"{where}: hardware")
    created = _date(f["created_at"], f"{where}: created_at")
    for i, r in enumerate(rows):
        _date(r.created_at, f"{where}: row {i}.created_at")
    ev = _mapping(f["evidence"], f"{where}: evidence")
    if set(ev) != {"sha256", "head_sha256"}:
        raise CardError(f"{where}: evidence must hold exactly sha256 and head_sha256")
    _hexdigest(ev["sha256"], f"{where}: evidence.sha256", exact=64)
    if ev["head_sha256"] is not None:
        _hexdigest(ev["head_sha256"], f"{where}: evidence.head_sha256", exact=64)
    card = ResultCard(model=ModelIdentity(**m), suite=suite, protocol=protocol, rows=rows, aggregates=recomputed,
                      sanity_flags=tuple(_text(x, f"{where}: sanity flag", limit=_LABEL_LIMIT) for x in flags),
                      hardware=hardware, version=_text(f["version"], f"{where}: version", limit=64),
                      created_at=created, evidence=dict(ev))
    if evidence is not None:
        check_rows_against_evidence(card, evidence, where=where)
    return card


def _weights(value: Any, where: str) -> dict[str, Any]:
    """Where the weights are: ``zoo`` (a zoo id), ``url`` (an http(s) URL and the zoo card fields to rebuild the
    model) or ``private`` (shown, never verifiable)."""
    w = _mapping(value, where)
    kind = w.get("kind")
    if kind not in WEIGHT_KINDS:
        raise CardError(f"{where}.kind must be one of {', '.join(WEIGHT_KINDS)}")
    if kind == "zoo":
        if set(w) != {"kind", "zoo_id"}:
            raise CardError(f"{where}: a zoo entry holds kind and zoo_id")
        _identifier(w["zoo_id"], f"{where}.zoo_id")
    elif kind == "url":
        if set(w) != {"kind", "url", "zoo_card"}:
            raise CardError(f"{where}: a url entry holds kind, url and zoo_card")
        url = _text(w["url"], f"{where}.url", limit=_LABEL_LIMIT * 5)
        if not re.fullmatch(r"https?://[A-Za-z0-9._~:/?#@!$&'()*+,;=%-]+", url):
            raise CardError(f"{where}.url must be an http(s) URL")
        fields = dict(_plain(_mapping(w["zoo_card"], f"{where}.zoo_card"), f"{where}.zoo_card"))
        _zoo_fields(fields, w["url"], where)
    elif set(w) != {"kind"}:
        raise CardError(f"{where}: a private entry holds kind only")
    return dict(w)


def _zoo_fields(fields: dict[str, Any], url: str, where: str) -> None:
    """A ``url`` card's zoo-card fields must be a zoo card ``verify`` can build the model from (checked here, so a
    card that could never be verified is refused, not listed)."""
    import tempfile

    from ssl_robustbench.zoo.card import parse_card as parse_zoo_card

    fields["source"] = {"url": url, "sha256": "0" * 64}
    try:
        parse_zoo_card(fields, where="of the card", card_dir=Path(tempfile.gettempdir()))
    except UserError as err:
        raise CardError(f"{where}.zoo_card cannot rebuild the model: {str(err)[:200]}") from None


def _image_set_field(value: Any, where: str) -> dict[str, Any]:
    v = _mapping(value, where)
    if set(v) != {"conditions", "n", "sha256"}:
        raise CardError(f"{where} must hold exactly conditions, n and sha256")
    for key in ("conditions", "n"):
        if _number(v[key], f"{where}.{key}", kind=int) < 1:
            raise CardError(f"{where}.{key} must be ≥ 1")
    _hexdigest(v["sha256"], f"{where}.sha256", exact=64)
    return dict(v)


def _date(value: Any, where: str) -> str:
    """An ISO 8601 date with a time zone, not before 2020 and not in the future (a day of clock skew allowed)."""
    text = _text(value, where, limit=64)
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise CardError(f"{where} must be an ISO 8601 date") from None
    if when.tzinfo is None:
        raise CardError(f"{where} must name its time zone (e.g. +00:00)")
    if when > dt.datetime.now(dt.timezone.utc) + CLOCK_SKEW or when < EARLIEST:
        raise CardError(f"{where} {text!r} is in the future or before 2020")
    return text


def data_size(identity: dict[str, Any]) -> int | None:
    """The number of images a data identity names (a subset's own ``n``)."""
    n = identity.get("n")
    return n if isinstance(n, int) and not isinstance(n, bool) else None


def num_classes_of(identity: dict[str, Any]) -> int | None:
    """The number of classes of a data identity (a subset's: its source's)."""
    while isinstance(identity, dict):
        if isinstance(identity.get("num_classes"), int):
            return identity["num_classes"]
        identity = identity.get("subset_of")
    return None


def check_rows_against_evidence(card: ResultCard, evidence: list[Any], *, where: str) -> None:
    """Every row recomputed from the per-image evidence: top-1 of each condition, then the suite's summary rows
    (``Benchmark.summarize``) from those; the card's rows must be exactly these, values within 1e-9."""
    from ssl_robustbench.benchmarks import BENCHMARKS
    from ssl_robustbench.benchmarks.base import Condition

    bench = BENCHMARKS.get(card.suite)()
    check_extent(card, evidence, where=where)
    expected: dict[tuple[str, int, str], tuple[float, int]] = {}
    top1 = {}
    for e in evidence:
        expected[e.key, e.severity, "top1"] = (e.top1(), len(e.values))
        top1[Condition(e.key, e.severity, e.params)] = e.top1()
    n = len(evidence[0].values) if evidence else 0
    for m in bench.summarize(top1, n=n, data=card.protocol.eval_data):
        expected[m.condition, m.severity, m.metric] = (m.value, m.n)
    claimed = {(r.condition, r.severity, r.metric): (r.value, r.n) for r in card.rows}
    if len(claimed) != len(card.rows):
        raise CardError(f"{where}: a row is listed twice")
    missing = sorted(set(expected) - set(claimed))
    extra = sorted(set(claimed) - set(expected))
    if missing or extra:
        what = f"no row for {missing[0]}" if missing else f"row {extra[0]} has no evidence"
        raise CardError(f"{where}: rows do not follow from the evidence ({what})")
    for key, (value, count) in expected.items():
        if abs(claimed[key][0] - value) > 1e-9 or claimed[key][1] != count:
            raise CardError(f"{where}: row {key[0]} {key[2]} claims {claimed[key][0]:.6f} on {claimed[key][1]} "
                            f"images; its evidence gives {value:.6f} on {count}")


def check_extent(card: ResultCard, evidence: list[Any], *, where: str) -> None:
    """The evidence covers exactly the card's image set: the set recomputed from it equals ``protocol.images``,
    its largest condition is ``subset_size``, and a suite that scores the whole evaluation set (``Benchmark.
    covers_eval_set``) has every image of it, labelled as the data identity's label digest says."""
    import numpy as np

    from ssl_robustbench.benchmarks import BENCHMARKS

    if not evidence:
        raise CardError(f"{where}: the evidence holds no condition")
    found = image_set(evidence)
    if found != card.protocol.images:
        raise CardError(f"{where}: the evidence covers another image set than the card's protocol.images "
                        f"({found['conditions']} conditions, {found['n']:,} image slots, {found['sha256'][:12]}…)")
    largest = max(len(e.values) for e in evidence)
    if largest != card.protocol.subset_size:
        raise CardError(f"{where}: protocol.subset_size {card.protocol.subset_size} is not the evidence's "
                        f"{largest} images")
    if not BENCHMARKS.get(card.suite)().covers_eval_set:
        return
    size, labels = data_size(card.protocol.eval_data), card.protocol.eval_data.get("labels")
    for e in evidence:
        if size is not None and (len(e.values) != size or not np.array_equal(e.index, np.arange(size))):
            raise CardError(f"{where}: {e.column} covers {len(e.values)} of the evaluation data's {size} images; "
                            f"this suite scores all of them")
        if labels is not None and labels_digest(e.labels) != labels:
            raise CardError(f"{where}: the labels of {e.column} are not the evaluation data's (label digest)")


MAX_CARD_BYTES = 4 << 20


def load_card_json(path: Path, *, evidence: bool = True) -> ResultCard:
    """Parses a card file (a regular file of at most ``MAX_CARD_BYTES``) and validates it — with ``evidence``,
    against its evidence file too (``load_card_and_evidence``). Only CardErrors are raised."""
    path = Path(path)
    if evidence:
        return load_card_and_evidence(path)[0]
    return parse_card(_card_object(path), where=path.name)


def load_card_and_evidence(path: Path) -> tuple[ResultCard, list[Any]]:
    """A card file and its per-image records (``<root>/evidence/<stem>.parquet``, pinned by sha256), the card
    validated against them: malformed JSON, NaN/inf, bad fields, missing or disagreeing evidence are CardErrors.
    The digest is checked before the file is parsed, so an edited file reads as edited."""
    from ssl_robustbench.results.evidence import (
        MAX_EVIDENCE_BYTES,
        EvidenceError,
        evidence_path,
        from_bytes,
        read_regular_file,
    )

    path = Path(path)
    card = parse_card(_card_object(path), where=path.name)
    try:
        raw = read_regular_file(evidence_path(path), limit=MAX_EVIDENCE_BYTES, what="evidence file",
                                error=CardError)
    except CardError as err:
        raise CardError(f"{path.name}: {err}") from None
    if hashlib.sha256(raw).hexdigest() != card.evidence["sha256"]:
        raise CardError(f"{path.name}: the evidence file's sha256 differs from the card's (edited after the run?)")
    try:
        records = from_bytes(raw, where=f"{path.name} evidence", rows=card.protocol.subset_size)
    except EvidenceError as err:
        raise CardError(str(err)) from None
    check_rows_against_evidence(card, records, where=path.name)
    return card, records


def _card_object(path: Path) -> Any:
    """The parsed JSON of a card file (a regular file of at most ``MAX_CARD_BYTES``, no NaN/inf)."""
    from ssl_robustbench.results.evidence import read_regular_file

    try:
        data = read_regular_file(path, limit=MAX_CARD_BYTES, what="card", error=CardError)
        return json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise CardError(f"{path.name}: not valid JSON ({str(err).splitlines()[0][:120]})") from None


def read_card(path: Path) -> ResultCard:
    """Reads a card from a store: valid, backed by its evidence, and filed under the name its contents give."""
    path = Path(path)
    card = load_card_json(path)
    if path.name != card.filename:
        raise CardError(f"{path.name}: file name must be {card.filename}")
    return card


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed")
