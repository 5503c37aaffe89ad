"""The store's trust root: who may attest to a card, and the signed verification records that are the only thing
that changes a card's status.

A store names its operators in ``store.toml`` (TOML, at the store's root)::

    [store]
    name = "ssl-robustbench"            # bound into every record, so a record never moves between stores

    [[operators]]
    name = "ssl-robustbench maintainers"
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA… maintainers@ssl-robustbench"

Keys are ed25519, written as OpenSSH public keys (what ``ssh-keygen -t ed25519`` makes and git's SSH signing
uses). ``robustbench verify --sign KEY`` signs each record with the private key (an OpenSSH or PKCS#8 PEM file);
the signature covers the record's canonical JSON, which names the store, the card file, the sha256 of the card's
bytes, the outcome, the date and the sample's seed. A record counts only when its signature is valid for an
operator's key and it names this store and this card's exact bytes: an unsigned record, one copied onto another
card (re-targeted), one for an earlier version of the card or another store (replayed) counts as absent. Of the
records that count, the latest by its signed date gives the status.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from ssl_robustbench.errors import UserError

STORE_FILE = "store.toml"
VERIFICATIONS = "verifications"
NAMESPACE = "ssl-robustbench/verification/v1"
#: outcomes a signed record may carry, and the status each gives a card
OUTCOMES = ("verified", "failed", "cannot verify")
MAX_RECORD_BYTES = 4 << 20


class TrustError(UserError):
    """A store.toml, key or signature that cannot be used (the message names it)."""


@dataclasses.dataclass(frozen=True)
class Operator:
    name: str
    key: str  # the OpenSSH public key line
    fingerprint: str  # SHA256:… as ssh-keygen prints it


@dataclasses.dataclass(frozen=True)
class TrustRoot:
    """A store's name and the operators whose signatures count (none: nothing can be verified there)."""

    name: str
    operators: tuple[Operator, ...]

    def operator(self, fingerprint: str) -> Operator | None:
        return next((o for o in self.operators if o.fingerprint == fingerprint), None)


def _public_key(line: str, where: str):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_ssh_public_key

    try:
        key = load_ssh_public_key(line.strip().encode("ascii"))
    except (ValueError, UnicodeError, TypeError):
        raise TrustError(f"{where}: not an OpenSSH public key line") from None
    if not isinstance(key, Ed25519PublicKey):
        raise TrustError(f"{where}: only ed25519 keys are accepted")
    return key


def fingerprint(line: str) -> str:
    """``SHA256:<base64>`` of an OpenSSH public key's blob (``ssh-keygen -l``'s form)."""
    blob = base64.b64decode(line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")


def load_trust_root(store: Path) -> TrustRoot:
    """The store's ``store.toml`` (a regular file); a store without one trusts nobody (its name is its folder's)."""
    from ssl_robustbench.results.evidence import read_regular_file

    path = Path(store) / STORE_FILE
    if not path.exists() and not path.is_symlink():
        return TrustRoot(name=Path(store).resolve().name, operators=())
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        data = tomllib.loads(read_regular_file(path, limit=1 << 20, what=STORE_FILE).decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise TrustError(f"{path}: not valid TOML ({str(err)[:120]})") from None
    store_table = data.get("store", {})
    name = store_table.get("name") if isinstance(store_table, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise TrustError(f"{path}: [store] needs a name")
    operators = []
    for i, entry in enumerate(data.get("operators", [])):
        where = f"{path}: operators[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            raise TrustError(f"{where} needs a key")
        _public_key(entry["key"], where)
        operators.append(Operator(name=str(entry.get("name", "")), key=entry["key"].strip(),
                                  fingerprint=fingerprint(entry["key"])))
    return TrustRoot(name=name, operators=tuple(operators))


def load_signing_key(path: Path):
    """An ed25519 private key file (OpenSSH ``-----BEGIN OPENSSH PRIVATE KEY-----`` or PKCS#8 PEM, unencrypted)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_ssh_private_key

    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise TrustError(f"signing key {path}: cannot be read ({err.strerror})") from None
    loader = load_ssh_private_key if b"OPENSSH PRIVATE KEY" in data else load_pem_private_key
    try:
        key = loader(data, password=None)
    except (ValueError, TypeError) as err:
        raise TrustError(f"signing key {path}: not an unencrypted ed25519 private key ({str(err)[:80]})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise TrustError(f"signing key {path}: only ed25519 keys are accepted")
    return key


def public_line(private_key, comment: str = "") -> str:
    """The OpenSSH public key line of a private key."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    line = private_key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode("ascii")
    return f"{line} {comment}".strip()


def _message(payload: dict[str, Any]) -> bytes:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False, ensure_ascii=True)
    return NAMESPACE.encode("ascii") + b"\0" + text.encode("ascii")


def sign(payload: dict[str, Any], private_key) -> dict[str, Any]:
    """A signed record: the payload, the signer's key fingerprint and the ed25519 signature of its message."""
    line = public_line(private_key)
    return {"payload": payload, "key": fingerprint(line),
            "signature": base64.b64encode(private_key.sign(_message(payload))).decode("ascii")}


def valid_payload(record: Any, root: TrustRoot) -> dict[str, Any] | None:
    """The payload of a record signed by one of ``root``'s operators for this store, else None."""
    if not isinstance(record, dict) or not isinstance(record.get("payload"), dict):
        return None
    operator = root.operator(record.get("key")) if isinstance(record.get("key"), str) else None
    if operator is None or not isinstance(record.get("signature"), str):
        return None
    try:
        if not _signed(operator.key, record["signature"], _message(record["payload"])):
            return None
    except (ValueError, TypeError):
        return None
    payload = record["payload"]
    return payload if payload.get("store") == root.name and payload.get("namespace") == NAMESPACE else None


@functools.lru_cache(maxsize=1 << 16)
def _signed(key_line: str, signature: str, message: bytes) -> bool:
    """Whether ``signature`` (base64) is ``key_line``'s ed25519 signature of ``message`` (remembered: a store's
    records are checked once per process however often its boards are built)."""
    from cryptography.exceptions import InvalidSignature

    try:
        _public_key(key_line, "operator").verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def card_digest(card_bytes: bytes) -> str:
    return hashlib.sha256(card_bytes).hexdigest()


def record_path(store: Path, card_filename: str) -> Path:
    return Path(store) / VERIFICATIONS / f"{Path(card_filename).stem}.json"


def history(path: Path) -> list[Any]:
    """The records of one card's file (whatever they are; only valid signed ones will count)."""
    from ssl_robustbench.results.evidence import read_regular_file

    if not path.exists() and not path.is_symlink():
        return []
    try:
        data = json.loads(read_regular_file(path, limit=MAX_RECORD_BYTES, what="verification record"))
        records = data["records"]
        return records[:1000] if isinstance(records, list) else []
    except (UserError, ValueError, KeyError, TypeError):
        return []


def append_record(store: Path, card_filename: str, record: dict[str, Any]) -> Path:
    """Appends a signed record to ``verifications/<card stem>.json``."""
    from ssl_robustbench.fileio import atomic_write_text

    path = record_path(store, card_filename)
    records = history(path) + [record]
    atomic_write_text(path, json.dumps({"card": card_filename, "records": records}, indent=1, allow_nan=False))
    return path


def status_of(card_filename: str, card_bytes: bytes, records: list[Any], root: TrustRoot) -> str:
    """``verified`` / ``failed`` / ``cannot verify`` from the latest (by signed date) record that counts for this
    card's exact bytes in this store; ``unverified`` when none does."""
    digest = card_digest(card_bytes)
    mine = []
    for r in records:
        payload = valid_payload(r, root)
        if (payload and payload.get("card") == card_filename and payload.get("card_sha256") == digest
                and payload.get("outcome") in OUTCOMES and isinstance(payload.get("date"), str)):
            mine.append(payload)
    if not mine:
        return "unverified"
    # the latest signed date wins; on a tie the more severe outcome (a replayed copy can never hide a failure)
    latest = max(mine, key=lambda p: (p["date"], OUTCOMES[::-1].index(p["outcome"])))
    return latest["outcome"]


def statuses(store: Path, cards: list[Any]) -> dict[str, str]:
    """Card file name → ``verified`` / ``failed`` / ``cannot verify`` / ``private`` / ``unverified``, from the
    store's signed records only (``status_of``)."""
    root = load_trust_root(store)
    out = {}
    for card in cards:
        if card.model.weights.get("kind") == "private":
            out[card.filename] = "private"
            continue
        records = history(record_path(store, card.filename)) if root.operators else []
        try:  # the card's exact bytes, only where a record could count for them
            data = (Path(store) / "cards" / card.filename).read_bytes() if records else None
        except OSError:
            data = None
        out[card.filename] = status_of(card.filename, data, records, root) if data is not None else "unverified"
    return out


def write_key_pair(path: Path, *, comment: str) -> str:
    """A new ed25519 key pair: ``path`` (OpenSSH private key, mode 600; never overwritten) and ``path.pub``."""
    import os

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    path = Path(path).expanduser()
    if path.exists() or path.is_symlink():
        raise TrustError(f"{path} exists; choose another path (a key is never overwritten)")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    data = key.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    public = public_line(key, comment)
    Path(f"{path}.pub").write_text(public + "\n", encoding="utf-8")
    return public


def add_operator(store: Path, key_line: str, *, name: str | None = None, store_name: str | None = None) -> Operator:
    """Adds an operator's public key to ``store/store.toml`` (created with the store's name when missing)."""
    from ssl_robustbench.fileio import atomic_write_text

    _public_key(key_line, "public key")
    parts = key_line.split()
    operator = Operator(name=name if name is not None else " ".join(parts[2:]), key=" ".join(parts[:2]),
                        fingerprint=fingerprint(key_line))
    store = Path(store)
    store.mkdir(parents=True, exist_ok=True)
    path = store / STORE_FILE
    if path.exists():
        root = load_trust_root(store)
        if root.operator(operator.fingerprint):
            return operator
        text = path.read_text(encoding="utf-8")
    else:
        text = f"[store]\nname = {json.dumps(store_name or store.resolve().name)}\n"
    text = text.rstrip("\n") + (f"\n\n[[operators]]\nname = {json.dumps(operator.name)}\n"
                                f"key = {json.dumps(operator.key)}\n")
    atomic_write_text(path, text)
    return operator
