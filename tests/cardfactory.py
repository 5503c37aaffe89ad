"""Builders of valid (schema 4) result cards for the leaderboard tests: per-image evidence is made first (``n``
images, the first round(value · n) right), and the image set, protocol hash, rows, aggregates and digests follow
from it as an eval makes them, so every card passes validation against its evidence. ``config`` names the
protocol: cards built with the same ``config`` (and the same images) share a board."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np

from ssl_robustbench.benchmarks import BENCHMARKS
from ssl_robustbench.benchmarks.base import Condition
from ssl_robustbench.results.card import (
    Head,
    ModelIdentity,
    Protocol,
    ResultCard,
    aggregate,
    image_set,
    labels_digest,
    protocol_digest,
    rows_digest,
)
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
                flags=(), n=100, seed=0, weights=None, dataset="embedded", eval_n=None) -> ResultCard:
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
    eval_data = {"kind": "TensorImages", "n": eval_n or n, "num_classes": 10}
    if eval_n in (None, n):  # the whole evaluation set: its label digest, as dataset_identity gives it
        eval_data["labels"] = labels_digest(records[0].labels)
    protocol = Protocol(config_hash="", dataset=dataset, eval_split="test", subset_size=n, seed=0,
                        eval_data=eval_data,
                        train_data={"n": 5000}, preprocessing={"input_size": 64},
                        head=Head(kind="probe", id="p" * 16, recipe={"solver": "lbfgs"}),
                        details={"settings": {"protocol": config}}, images=image_set(records))
    protocol = dataclasses.replace(protocol, config_hash=protocol_digest(suite, protocol))
    rows = [dataclasses.replace(r, config_hash=protocol.config_hash) for r in rows]
    return ResultCard(model=ModelIdentity(id=model, method=method, arch="tiny_resnet", paper="p", license="MIT",
                                          pretrain_data="embedded", checkpoint_sha256="c" * 64,
                                          weights=weights or {"kind": "zoo", "zoo_id": model}),
                      suite=suite, protocol=protocol, rows=tuple(rows), aggregates=aggregate(suite, rows),
                      sanity_flags=tuple(flags), hardware={"device": "cpu"}, version="0.1.0", created_at=CREATED,
                      evidence={"sha256": digest, "head_sha256": None})


def make_card(*args, **kwargs) -> dict:
    """A valid card as parsed JSON (what a store file holds); its evidence is kept for ``write_store``."""
    return json.loads(card_object(*args, **kwargs).dumps())


def card_filename(card: dict) -> str:
    return f"{card['model']['id']}__{card['suite']}__{card['protocol']['config_hash'][:16]}.json"


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


# --- the trust root: a test operator's key, a store that names it, signed records ------------------------------

def _operator_key():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(bytes(range(32)))  # fixed: tests are reproducible


OPERATOR = _operator_key()
STORE_NAME = "test-store"


def trust(store: Path, key=OPERATOR, *, name: str = STORE_NAME) -> Path:
    """Writes ``store/store.toml`` naming ``key`` as the store's one operator."""
    from ssl_robustbench.results.trust import public_line

    store.mkdir(parents=True, exist_ok=True)
    (store / "store.toml").write_text(f'[store]\nname = "{name}"\n\n[[operators]]\nname = "tests"\n'
                                      f'key = "{public_line(key)}"\n')
    return store


def attest(store: Path, card: dict, outcome: str = "verified", *, key=OPERATOR, date: str | None = None,
           store_name: str = STORE_NAME, card_bytes: bytes | None = None) -> dict:
    """Appends a record signed by ``key`` for ``card`` (as written in ``store``) and returns it."""
    import datetime as dt

    from ssl_robustbench.results.trust import NAMESPACE, append_record, card_digest, sign

    name = card_filename(card)
    data = card_bytes if card_bytes is not None else (store / "cards" / name).read_bytes()
    payload = {"namespace": NAMESPACE, "store": store_name, "card": name, "card_sha256": card_digest(data),
               "outcome": outcome, "sample_seed": 1,
               "date": date or dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")}
    record = sign(payload, key)
    append_record(store, name, record)
    return record


def verified_store(root: Path, cards) -> Path:
    """A trusted store holding ``cards``, each verified by a signed record."""
    store = write_store(trust(root), cards)
    for card in cards:
        attest(store, card)
    return store


def verified(cards) -> dict[str, str]:
    """Statuses for ``board_tables``: every card verified."""
    return {c.filename: "verified" for c in cards}


def board_of(card: dict) -> str:
    """The board id a card lands on (``leaderboard.board_id``)."""
    return f"{card['suite']}-{card['protocol']['config_hash'][:12]}"


def operator_key_file(path: Path, key=OPERATOR) -> Path:
    """``key`` written as an OpenSSH private key file (what ``verify --sign`` reads)."""
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()))
    return path


def rehash(card: dict, records: list | None = None) -> dict:
    """What a careful forger does after editing a card: evidence digest, image set, protocol hash, rows' hash,
    rows digest and aggregates all recomputed with the project's functions, so the card validates on its own."""
    if records is not None:
        data = to_bytes(records)
        EVIDENCE[hashlib.sha256(data).hexdigest()] = data
        card["evidence"]["sha256"] = hashlib.sha256(data).hexdigest()
        card["protocol"]["images"] = image_set(records)
        card["protocol"]["subset_size"] = max(len(r.values) for r in records)
        by_column = {r.column: r for r in records}
        for row in card["rows"]:
            record = by_column.get(f"{row['condition']}@{row['severity']}")
            if record is not None and row["metric"] == "top1":
                row["value"], row["n"] = record.top1(), len(record.values)
    protocol = dict(card["protocol"], head=Head(**card["protocol"]["head"]))
    digest = protocol_digest(card["suite"], Protocol(**protocol))
    card["protocol"]["config_hash"] = digest
    for row in card["rows"]:
        row["config_hash"] = digest
    card["rows_sha256"] = rows_digest(card["rows"])
    card["aggregates"] = aggregate(card["suite"], [ResultRow(**r) for r in card["rows"]])
    return card
