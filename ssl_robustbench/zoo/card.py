"""Zoo cards: one YAML file per checkpoint in ``model_zoo/``, validated on load.

A card says where the weights are (a file beside the card, or a URL with its sha256), how to pull the backbone's
state dict out of the checkpoint (key path, prefixes, keys to ignore) and how images must be preprocessed.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from ssl_robustbench.config import is_finite_number
from ssl_robustbench.errors import UserError
from ssl_robustbench.fileio import read_yaml
from ssl_robustbench.preprocess import INTERPOLATIONS, Preprocess

ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")  # matched whole (fullmatch: no trailing newline)
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")  # a zoo pin is a full digest (fullmatch)
PREFIX_PATTERN = re.compile(r"[0-9a-f]{8,63}")  # what some publishers give instead (a file name's 8 digits)
#: Self-AT methods besides ACL; "<name>+astra" is that method with ASTrA
SELF_AT = ("dynacl", "dynacl++", "rocl", "deacl", "advcl")
METHODS = {"simclr", "mocov2", "mocov3", "simsiam", "byol", "dino", "barlowtwins", "vicreg", "swav", "acl", "astra",
           "dinov2", "dinov3", "ibot", "mae", "ijepa", "msn", "data2vec2", "webssl",
           *SELF_AT, *(f"{m}+astra" for m in SELF_AT), "supervised", "random", "unknown"}


#: The ImageNet normalization of torchvision's ResNets and of every SSL linear-eval script in the zoo but SwAV's.
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class _Pinned:
    """``pin``: what a download or load is checked against — the full ``sha256``, else the publisher's
    ``sha256_prefix`` (both fields of the dataclasses below)."""

    sha256: str | None
    sha256_prefix: str | None

    @property
    def pin(self) -> str | None:
        return self.sha256 or self.sha256_prefix


@dataclasses.dataclass(frozen=True)
class Source(_Pinned):
    """Where the checkpoint is: ``path`` (relative to the card's folder), ``url``, or ``hub`` (a Hugging Face Hub
    repository, with the commit ``revision`` and the ``filename``: ``zoo/hub.py``); ``sha256`` (the full 64-digit
    pin) is checked on download and load. Where the publisher gives only a prefix (OpenMMLab's file names carry
    the first 8 digits), it is ``sha256_prefix`` — checked too, and shown as a partial pin, never as a full one.
    ``access``: for weights behind a license form (DINOv3), the form's https address; a failed download then says
    where to put the file the form's e-mailed link gives."""

    path: str | None = None
    url: str | None = None
    hub: str | None = None
    revision: str | None = None
    filename: str | None = None
    sha256: str | None = None
    sha256_prefix: str | None = None
    access: str | None = None


@dataclasses.dataclass(frozen=True)
class LinearHead(_Pinned):
    """A linear classifier the method's authors released for this backbone (their linear-eval result).

    ``url`` or ``path`` (beside the card) with ``sha256``; ``checkpoint_key`` (dotted path to the state dict) and
    ``prefix`` (the head's key prefix, e.g. ``module.fc.``: its ``weight`` and ``bias`` are taken); ``top1`` the
    published ImageNet-1k val top-1 in % of backbone + this head (null where the authors publish none: the card's
    ``source`` says what they do publish); ``source`` where it is published; ``access`` as for ``Source``.
    """

    top1: float | None
    source: str
    prefix: str
    url: str | None = None
    path: str | None = None
    sha256: str | None = None
    sha256_prefix: str | None = None
    checkpoint_key: str | None = None
    access: str | None = None


@dataclasses.dataclass(frozen=True)
class Published:
    """A published ImageNet-1k linear-evaluation top-1 (%) of a backbone whose authors released no head:
    ``source`` says where, and under which protocol."""

    top1: float
    source: str


@dataclasses.dataclass(frozen=True)
class ZooCard:
    """A checkpoint's card. See ``model_zoo/README.md`` for each field."""

    id: str
    arch: str
    method: str
    paper: str
    license: str
    source: Source
    license_url: str | None = None
    pretrain_data: str = "imagenet-1k"
    checkpoint_key: str | None = None
    strip_prefixes: tuple[str, ...] = ()
    keep_only_prefixed: bool = False
    ignore_keys: tuple[str, ...] = ()
    allowed_missing: tuple[str, ...] = ()
    bn_branch: str | None = None
    checkpoint_format: str | None = None
    linear_head: LinearHead | None = None
    published: Published | None = None
    eval_script: str | None = None
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    input_size: int = 224
    crop_pct: float = 0.875
    interpolation: str = "bilinear"
    features: dict[str, Any] = dataclasses.field(default_factory=dict)
    reproduce: str | None = None
    notes: str | None = None
    card_dir: Path = Path(".")

    @property
    def published_top1(self) -> float | None:
        """The published linear-evaluation top-1 (%): the released head's, else ``published``'s."""
        return self.linear_head.top1 if self.linear_head else self.published.top1 if self.published else None

    @property
    def preprocess(self) -> Preprocess:
        return Preprocess(input_size=self.input_size, crop_pct=self.crop_pct, interpolation=self.interpolation)


_REQUIRED = ("id", "arch", "method", "paper", "license", "source")
#: Preprocessing every card states explicitly (no silent default: a wrong mean/std changes every number).
PREPROCESSING = ("mean", "std", "input_size", "crop_pct", "interpolation")


def parse_card(data: Any, *, where: str, card_dir: Path) -> ZooCard:
    """Validates a card mapping; every problem is a UserError naming ``where`` and the field."""

    def fail(msg: str) -> UserError:
        return UserError(f"zoo card {where}: {msg}")

    if not isinstance(data, dict):
        raise fail("must be a mapping")
    fields = {f.name for f in dataclasses.fields(ZooCard)} - {"card_dir"}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise fail(f"unknown field {unknown[0]!r}")
    missing = [k for k in (*_REQUIRED, *PREPROCESSING) if k not in data]
    if missing:
        raise fail(f"missing field {missing[0]!r}")
    for key in ("id", "arch", "method", "paper", "license"):
        if not isinstance(data[key], str) or not data[key].strip():
            raise fail(f"{key!r} must be a non-empty string")
    if not ID_PATTERN.fullmatch(data["id"]):
        raise fail(f"id {data['id']!r} must match {ID_PATTERN.pattern}")
    if data["method"] not in METHODS:
        raise fail(f"method {data['method']!r} is not one of {', '.join(sorted(METHODS))}")
    src = data["source"]
    if not isinstance(src, dict) or set(src) - {"path", "url", "hub", "revision", "filename", "sha256",
                                                "sha256_prefix", "access"}:
        raise fail("source must be a mapping with path, url or hub (+ sha256)")
    if sum(bool(src.get(k)) for k in ("path", "url", "hub")) != 1:
        raise fail("source needs exactly one of path, url and hub")
    if src.get("hub"):
        from ssl_robustbench.zoo.hub import COMMIT, REPO

        if not REPO.fullmatch(str(src["hub"])) or not COMMIT.fullmatch(str(src.get("revision", ""))) \
                or not isinstance(src.get("filename"), str) or not src["filename"]:
            raise fail("source.hub needs an <owner>/<name> repository, a revision that is a 40-digit commit hash "
                       "(a branch can move under a result) and a filename")
    elif {"revision", "filename"} & set(src):
        raise fail("source.revision and source.filename belong to a hub source")
    _check_download(src, "source", fail)
    kwargs: dict[str, Any] = {k: v for k, v in data.items() if k not in ("source", "linear_head", "published")}
    if data.get("linear_head") is not None:
        kwargs["linear_head"] = _parse_head(data["linear_head"], fail)
    if data.get("published") is not None:
        published = data["published"]
        if not isinstance(published, dict) or set(published) != {"top1", "source"} \
                or not _percentage(published["top1"]) or not str(published["source"]).strip():
            raise fail("published must be {top1: <% in [0, 100]>, source: <where>}")
        if data.get("linear_head") is not None:
            raise fail("published is for a backbone without a released head; linear_head.top1 holds the figure")
        kwargs["published"] = Published(top1=float(published["top1"]), source=str(published["source"]))
    for key in ("strip_prefixes", "ignore_keys", "allowed_missing"):
        value = kwargs.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise fail(f"{key!r} must be a list of strings")
        for pattern in value if key != "strip_prefixes" else []:
            try:
                re.compile(pattern)
            except re.error as err:
                raise fail(f"{key!r} has a bad regex {pattern!r}: {err}") from None
        kwargs[key] = tuple(value)
    kwargs |= checked_preprocessing({k: kwargs[k] for k in PREPROCESSING}, fail)
    if kwargs.get("license_url") is not None and not str(kwargs["license_url"]).startswith("https://"):
        raise fail("license_url must be an https URL (where the license's text is published)")
    if kwargs.get("bn_branch") not in (None, "normal", "pgd"):
        raise fail("bn_branch must be normal or pgd (dual-BN checkpoints)")
    from ssl_robustbench.zoo.formats import CHECKPOINT_FORMATS

    if kwargs.get("checkpoint_format") not in (None, *CHECKPOINT_FORMATS):
        raise fail(f"checkpoint_format must be one of {', '.join(CHECKPOINT_FORMATS)}")
    if not isinstance(kwargs.get("features", {}), dict):
        raise fail("features must be a mapping (e.g. {pool: avg})")
    from ssl_robustbench.backbone_families import check_feature_keys

    try:
        check_feature_keys(kwargs["arch"], kwargs.get("features", {}))
    except UserError as err:
        raise fail(str(err)) from None
    return ZooCard(**kwargs, source=Source(**src), card_dir=card_dir)


def _percentage(value: Any) -> bool:
    """A published top-1: a number in [0, 100]."""
    return is_finite_number(value) and 0 <= value <= 100


def checked_preprocessing(values: dict[str, Any], fail=UserError) -> dict[str, Any]:
    """``mean``, ``std`` (3 finite numbers, std > 0), ``input_size`` (an integer in [8, 4096]), ``crop_pct`` (in
    (0, 1]) and ``interpolation``, normalized (tuples of floats); ``fail(message)`` makes the error."""
    out = dict(values)
    for key in ("mean", "std"):
        value = values[key]
        if not (isinstance(value, (list, tuple)) and len(value) == 3
                and all(is_finite_number(v) for v in value)):
            raise fail(f"{key!r} must be a list of 3 finite numbers")
        if key == "std" and min(value) <= 0:
            raise fail("std must be positive")
        out[key] = tuple(float(v) for v in value)
    size = values["input_size"]
    if not isinstance(size, int) or isinstance(size, bool) or not 8 <= size <= 4096:
        raise fail("input_size must be an integer in [8, 4096]")
    crop = values["crop_pct"]
    if not isinstance(crop, (int, float)) or isinstance(crop, bool) or not 0 < crop <= 1:
        raise fail("crop_pct must be a number in (0, 1]")
    if values["interpolation"] not in INTERPOLATIONS:
        raise fail(f"interpolation must be one of {', '.join(INTERPOLATIONS)}")
    return out


def _parse_head(data: Any, fail) -> LinearHead:
    fields = {f.name for f in dataclasses.fields(LinearHead)}
    if not isinstance(data, dict) or set(data) - fields:
        raise fail(f"linear_head must be a mapping with {', '.join(sorted(fields))}")
    for key in ("top1", "source", "prefix"):
        if key not in data:
            raise fail(f"linear_head needs {key!r}")
    if bool(data.get("url")) == bool(data.get("path")):
        raise fail("linear_head needs exactly one of url and path")
    top1 = data["top1"]
    if top1 is not None and not _percentage(top1):
        raise fail("linear_head.top1 must be a percentage in [0, 100], or null where none is published")
    _check_download(data, "linear_head", fail)
    return LinearHead(**{**data, "top1": None if top1 is None else float(top1)})


def _check_download(data: dict, where: str, fail) -> None:
    """The download fields a ``source`` and a ``linear_head`` share: an http(s) ``url``, a full ``sha256`` or else
    a publisher's ``sha256_prefix``, and ``access`` (a license form in front of the weights: an https address, and
    only beside a url)."""
    if data.get("url") and not str(data["url"]).startswith(("https://", "http://")):
        raise fail(f"{where}.url must be an http(s) URL")
    if data.get("sha256") is not None and not SHA256_PATTERN.fullmatch(str(data["sha256"])):
        raise fail(f"{where}.sha256 must be the full 64 lowercase hex digits; a publisher's shorter prefix goes in "
                   f"{where}.sha256_prefix")
    if data.get("sha256_prefix") is not None and (data.get("sha256") is not None
                                                   or not PREFIX_PATTERN.fullmatch(str(data["sha256_prefix"]))):
        raise fail(f"{where}.sha256_prefix must be 8–63 lowercase hex digits, and only where no full sha256 is known")
    if data.get("access") is not None and (not str(data["access"]).startswith("https://") or not data.get("url")):
        raise fail(f"{where}.access must be the https address of the form that grants the url's file")


def load_card(path: Path, *, zoo_name: bool = True) -> ZooCard:
    """Reads and validates one card file; in the zoo (``zoo_name``) its id must equal the file name."""
    path = Path(path)
    data = read_yaml(path, what="zoo card")
    card = parse_card(data, where=str(path), card_dir=path.parent)
    if zoo_name and card.id != path.stem:
        raise UserError(f"zoo card {path}: id {card.id!r} must equal the file name")
    return card
