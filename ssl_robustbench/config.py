"""YAML → frozen dataclasses, with ``--set a.b=value`` overrides.

Every run resolves its configuration once (defaults ← ``--config`` file ← CLI options ← ``--set``) and writes the
result to the run directory before work starts; its hash identifies the protocol in every result row.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ssl_robustbench.errors import UserError
from ssl_robustbench.fileio import stable_hash
from ssl_robustbench.resources import find_config

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Which dataset the probe is fitted on and the suites are evaluated on.

    ``name`` is a registered dataset (``embedded``, ``imagenet``, ``imagefolder``, ``cifar10``, ``cifar100``,
    ``stl10``); ``root`` is its local directory (not needed for ``embedded``).
    """

    name: str = "embedded"
    root: str | None = None
    train_split: str = "train"
    eval_split: str = "test"
    download: bool = False
    train_limit: int | None = None
    eval_limit: int | None = None


@dataclasses.dataclass(frozen=True)
class ProbeConfig:
    """Linear-probe recipe on cached frozen features (features stream from disk in chunks, so memory does not
    grow with the number of training images).

    ``solver``: ``lbfgs`` — multinomial logistic regression by full-batch L-BFGS (CLIP's linear-probe protocol;
    the loss and gradient are summed over chunks, so it is exact at any N) with ``max_iter`` and ``tolerance``;
    ``sgd`` — minibatch SGD (momentum ``momentum``, ``batch_size``, ``epochs``, cosine-decayed ``lr``), the
    linear-eval protocol of MoCo / SimSiam / DINO, here on cached features without augmentation. Both use L2
    ``weight_decay`` and optional feature standardization (folded into the saved head).
    """

    solver: str = "lbfgs"
    standardize: bool = True
    weight_decay: float = 1e-4
    max_iter: int = 50
    tolerance: float = 1e-6
    epochs: int = 30
    lr: float = 0.1
    batch_size: int = 1024
    momentum: float = 0.9

    def __post_init__(self) -> None:
        if self.solver not in ("lbfgs", "sgd"):
            raise UserError(f"probe.solver must be lbfgs or sgd, not {self.solver!r}")
        check_number("probe.weight_decay", self.weight_decay, low=0.0)
        check_number("probe.tolerance", self.tolerance, low=0.0)
        check_number("probe.lr", self.lr, low=0.0, low_open=True)
        check_number("probe.momentum", self.momentum, low=0.0, high=1.0, high_open=True)
        for key in ("max_iter", "epochs", "batch_size"):
            check_number(f"probe.{key}", getattr(self, key), low=1)

    def recipe(self) -> dict[str, Any]:
        """The fields that define this solver's result (the probe's identity; solver-irrelevant fields omitted)."""
        keys = (("max_iter", "tolerance") if self.solver == "lbfgs" else
                ("epochs", "lr", "batch_size", "momentum"))
        return {"solver": self.solver, "standardize": self.standardize, "weight_decay": self.weight_decay,
                **{k: getattr(self, k) for k in keys}}


def check_number(key: str, value: float, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False) -> None:
    """Raises a UserError naming ``key`` unless ``value`` is finite and within [low, high] (open ends optional)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"config key {key!r} must be a finite number, got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise UserError(f"config key {key!r} must be {'>' if low_open else '≥'} {low}, got {value!r}")
    if high is not None and (value > high or (high_open and value == high)):
        raise UserError(f"config key {key!r} must be {'<' if high_open else '≤'} {high}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class AdvConfig:
    """The adversarial suite: threat model, attacks, subset and finetuning protocol.

    ``eps`` None means 8/255 for inputs up to 96 px and 4/255 above; ``pgd_step_size`` None means ε/4.
    ``protocol`` is ``slf``, ``alf``, ``aff`` (recipes in ``benchmarks/adversarial/``) or ``probe`` (the shared
    L-BFGS probe); ``epochs`` overrides the recipe's epochs. ``autoattack`` is ``standard``, ``plus``, ``rand``
    or ``none``.
    """

    norm: str = "Linf"
    eps: float | None = None
    n: int = 1000
    pgd_steps: int = 20
    pgd_step_size: float | None = None
    pgd_restarts: int = 1
    pgd_loss: str = "ce"
    autoattack: str = "standard"
    protocol: str = "slf"
    epochs: int | None = None
    batch_size: int = 250
    amp: bool = False


@dataclasses.dataclass(frozen=True)
class CorruptionConfig:
    """The ImageNet-C suite (``c``).

    ``root``: a released ImageNet-C tree (``<corruption>/<severity>/<wnid>/``, or grouped
    ``<group>/<corruption>/<severity>/``), evaluated with a center crop only; unset: corruptions are generated
    on the fly from the clean evaluation set, on the device. ``corruptions``: names, or empty for the 15 benchmark
    ones; ``extra`` adds the 4 held-out ones. ``table``: ``auto``, ``imagenet`` or ``cifar`` constants.
    ``faithful``: the JPEG-85 round trip of the released images. ``limit``: images per condition (fixed subset).
    """

    root: str | None = None
    corruptions: tuple[str, ...] = ()
    extra: bool = False
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)
    table: str = "auto"
    faithful: bool = False
    limit: int | None = None


@dataclasses.dataclass(frozen=True)
class PerspectiveConfig:
    """The ImageNet-PD suite (``pd``): left/right/top/bottom Möbius views with black or padded background.

    ``root``: a released tree holding ``PD-L``, ``PD-R``, ``PD-T``, ``PD-B`` (black) and ``PD-LI`` … ``PD-BI``
    (padded), each an ImageFolder of the val set; unset: the views are generated on the fly with |c| =
    ``magnitude`` and ``d``. ``limit``: images per condition.
    """

    root: str | None = None
    magnitude: float = 0.3
    d: float = 1.0
    views: tuple[str, ...] = ("left", "right", "top", "bottom")
    backgrounds: tuple[str, ...] = ("black", "padded")
    limit: int | None = None


@dataclasses.dataclass(frozen=True)
class EditConfig:
    """The ImageNet-E suite (``e``): attribute edits (background, size, position, direction).

    ``root``: the released tree (``labels.txt``, ``ori/``, ``full/`` and one folder per edit); unset on the
    embedded dataset: the same test images re-rendered with each attribute edited. ``limit``: images per subset.
    """

    root: str | None = None
    limit: int | None = None


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Where and how a run executes."""

    device: str = "auto"
    batch_size: int = 256
    workers: int = 0
    seed: int = 0
    out: str = "runs"
    cache_dir: str | None = None


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """``robustbench eval``: a model (zoo id or checkpoint file), data, probe recipe and suites.

    ``ignore_keys``: extra regexes of checkpoint keys to drop (e.g. a classifier ``fc\\..*``); ``input_size``
    overrides the card's input side; ``head``: ``probe`` (fit a linear probe) or ``released`` (the linear head the
    method's authors published, named in the zoo card; no probe is fitted).
    """

    model: str = "embedded-simclr-tinyresnet"
    arch: str | None = None
    ignore_keys: tuple[str, ...] = ()
    input_size: int | None = None
    head: str = "probe"
    data: DataConfig = DataConfig()
    probe: ProbeConfig = ProbeConfig()
    suites: tuple[str, ...] = ("clean",)
    adv: AdvConfig = AdvConfig()
    c: CorruptionConfig = CorruptionConfig()
    pd: PerspectiveConfig = PerspectiveConfig()
    e: EditConfig = EditConfig()
    run: RunConfig = RunConfig()

    def __post_init__(self) -> None:
        if self.head not in ("probe", "released"):
            raise UserError(f"head must be probe or released, not {self.head!r}")
        if self.input_size is not None:
            check_number("input_size", self.input_size, low=8, high=4096)
        for pattern in self.ignore_keys:
            try:
                re.compile(pattern)
            except re.error as err:
                raise UserError(f"ignore_keys: bad regex {pattern!r}: {err}") from None


def load_yaml(path: Path) -> dict[str, Any]:
    """Reads a YAML mapping; a missing file or a non-mapping is a UserError."""
    path = find_config(Path(path))
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise UserError(f"config file {path} is not valid YAML: {err}".splitlines()[0]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a mapping, not {type(data).__name__}")
    return data


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Deep-merges ``update`` into a copy of ``base`` (mappings merge, everything else replaces)."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_overrides(items: typing.Iterable[str]) -> dict[str, Any]:
    """Turns ``["a.b=1", "c=[x, y]"]`` into a nested mapping; values are parsed as YAML scalars/lists."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set expects key=value, got {item!r}")
        value = yaml.safe_load(raw) if raw.strip() else None
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def build(cls: type[T], data: dict[str, Any], *, where: str = "") -> T:
    """Builds dataclass ``cls`` from a mapping, checking names and coercing types; errors name the key."""
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - fields)
    if unknown:
        raise UserError(f"unknown config key '{where}{unknown[0]}'; known: {', '.join(sorted(fields))}")
    kwargs = {name: _coerce(value, hints[name], f"{where}{name}") for name, value in data.items()}
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        if not isinstance(value, dict):
            raise UserError(f"config key {key!r} must be a mapping")
        return build(hint, value, where=f"{key}.")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    if origin is tuple:
        items = value if isinstance(value, (list, tuple)) else [v for v in str(value).split(",") if v]
        return tuple(_coerce(v, args[0], key) for v in items)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "1", "yes", "on"):
            return True
        if str(value).lower() in ("false", "0", "no", "off"):
            return False
    elif hint in (int, float, str):
        try:
            if hint is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            return hint(value)
        except (TypeError, ValueError):
            pass
    else:
        return value
    raise UserError(f"config key {key!r} must be {getattr(hint, '__name__', hint)}, got {value!r}")


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict of a config dataclass (tuples become lists, for YAML)."""
    def plain(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(cfg))


def resolve(cls: type[T], *, config_file: Path | None, options: dict[str, Any], overrides: list[str]) -> T:
    """defaults ← ``config_file`` ← ``options`` (non-None CLI values, nested) ← ``--set`` overrides."""
    data = load_yaml(config_file) if config_file else {}
    data = merge(data, options)
    data = merge(data, parse_overrides(overrides))
    return build(cls, data)


def config_hash(cfg: Any, *, exclude: tuple[str, ...] = ()) -> str:
    """Hash of the config minus where and how the run executes (device, batch size, paths; the seed counts):
    every ``root`` key is left out, so the same protocol hashes alike wherever the data lives. ``exclude`` drops
    top-level keys (e.g. the model, to identify a protocol shared by many models)."""
    d = _without_roots(to_dict(cfg))
    run = d.pop("run", None)
    if isinstance(run, dict):
        d["seed"] = run.get("seed")
    for key in exclude:
        d.pop(key, None)
    return stable_hash(d)


def _without_roots(d: dict[str, Any]) -> dict[str, Any]:
    """``d`` with every ``root`` replaced by whether it was set (a released tree vs generated data)."""
    return {k: (v is not None if k == "root" else _without_roots(v) if isinstance(v, dict) else v)
            for k, v in d.items()}
