"""YAML → frozen dataclasses, with ``--set a.b=value`` overrides, and the sections every command shares.

Every run resolves its configuration once (defaults ← ``--config`` file ← CLI options ← ``--set``) and writes the
result to the run directory before work starts. A dataclass may hold plug-in *sections* (``SECTIONS_FIELD``, e.g.
the eval's benchmark suites): their names and types come from the class's ``config_sections()``, not from here —
this module knows no suite.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from ssl_robustbench.errors import UserError
from ssl_robustbench.fileio import read_yaml, stable_hash, strict_yaml
from ssl_robustbench.resources import find_config

T = TypeVar("T")


def bounded(default: Any, *, low: float | None = None, high: float | None = None, low_open: bool = False,
            high_open: bool = False) -> Any:
    """A numeric config field with its allowed range (None, where the type allows it, is always allowed); the
    dataclass's ``__post_init__`` checks it with ``check_fields``."""
    bounds = {"low": low, "high": high, "low_open": low_open, "high_open": high_open}
    return dataclasses.field(default=default, metadata={"bounds": bounds})


def check_fields(obj: Any, section: str) -> None:
    """Checks every ``bounded`` field of the config dataclass ``obj`` (finite, within its range); errors name
    the key as ``<section>.<field>``."""
    prefix = f"{section}." if section else ""
    for field in dataclasses.fields(obj):
        bounds = field.metadata.get("bounds")
        value = getattr(obj, field.name)
        if bounds is not None and value is not None:
            check_number(f"{prefix}{field.name}", value, **bounds)


MAX_BATCH = 1 << 20  # no device holds a larger batch of images; larger values are typos
MAX_SEED = 2**63 - 1  # torch generators take a signed 64-bit seed


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Which dataset the probe is fitted on and the suites are evaluated on.

    ``name`` is a registered dataset (``embedded``, ``imagenet``, ``imagefolder``, ``cifar10``, ``cifar100``,
    ``stl10``); ``root`` is its local directory (not needed for ``embedded``).
    """

    name: str = "embedded"
    root: str | None = None
    train_split: str = "train"
    eval_split: str | None = None  # None: the dataset's labelled evaluation split (DEFAULT_EVAL_SPLIT)
    download: bool = False
    train_limit: int | None = bounded(None, low=1)
    eval_limit: int | None = bounded(None, low=1)

    def __post_init__(self) -> None:
        check_fields(self, "data")
        if self.eval_split is None:  # ImageNet has no labelled test split: its benchmark split is val
            object.__setattr__(self, "eval_split", DEFAULT_EVAL_SPLIT.get(self.name, "test"))
        if self.name == "embedded" and self.root is not None:
            raise UserError("the embedded dataset is generated, not read: --data-root (data.root) does not apply "
                            "to it; drop it, or name the dataset with --data")


#: the labelled evaluation split of each dataset (the one its published results use)
DEFAULT_EVAL_SPLIT = {"imagenet": "val"}


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
    weight_decay: float = bounded(1e-4, low=0.0)
    max_iter: int = bounded(50, low=1)
    tolerance: float = bounded(1e-6, low=0.0)
    epochs: int = bounded(30, low=1)
    lr: float = bounded(0.1, low=0.0, low_open=True)
    batch_size: int = bounded(1024, low=1, high=MAX_BATCH)
    momentum: float = bounded(0.9, low=0.0, high=1.0, high_open=True)

    def __post_init__(self) -> None:
        if self.solver not in ("lbfgs", "sgd"):
            raise UserError(f"probe.solver must be lbfgs or sgd, not {self.solver!r}")
        check_fields(self, "probe")

    def recipe(self) -> dict[str, Any]:
        """The fields that define this solver's result (the probe's identity; solver-irrelevant fields omitted)."""
        keys = (("max_iter", "tolerance") if self.solver == "lbfgs" else
                ("epochs", "lr", "batch_size", "momentum"))
        return {"solver": self.solver, "standardize": self.standardize, "weight_decay": self.weight_decay,
                **{k: getattr(self, k) for k in keys}}


@dataclasses.dataclass(frozen=True)
class KNNConfig:
    """Weighted k-NN head (``--head knn``; DINO's ``eval_knn.py``, Caron et al. 2021): the ``k`` most similar
    training features (cosine) vote with weight exp(s / ``temperature``). ``chunk_rows``: training rows compared
    at a time (memory; the result does not depend on it)."""

    k: int = bounded(20, low=1, high=10_000)
    temperature: float = bounded(0.07, low=0.0, low_open=True)
    chunk_rows: int = bounded(8192, low=1)

    def __post_init__(self) -> None:
        check_fields(self, "knn")

    def recipe(self) -> dict[str, Any]:
        """What defines the head's result (its identity; ``chunk_rows`` is not part of it)."""
        return {"kind": "knn", "k": self.k, "temperature": self.temperature}


def is_finite_number(value: Any) -> bool:
    """A finite int or float; not a bool (YAML and JSON ``true`` is no number), not NaN or inf."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_number(key: str, value: float, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False) -> None:
    """Raises a UserError naming ``key`` unless ``value`` is finite and within [low, high] (open ends optional)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"config key {key!r} must be a number, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"config key {key!r} must be a finite number, got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise UserError(f"config key {key!r} must be {'>' if low_open else '≥'} {low}, got {value!r}")
    if high is not None and (value > high or (high_open and value == high)):
        raise UserError(f"config key {key!r} must be {'<' if high_open else '≤'} {high}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Where and how a run executes."""

    device: str = "auto"
    batch_size: int = bounded(256, low=1, high=MAX_BATCH)
    workers: int = bounded(0, low=0, high=256)
    seed: int = bounded(0, low=0, high=MAX_SEED)
    out: str = "runs"
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        check_fields(self, "run")
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            raise UserError(f"config key 'run.device' must be auto, cpu, cuda or cuda:N, not {self.device!r}")


def load_yaml(path: Path) -> dict[str, Any]:
    """Reads a YAML mapping; a missing file or a non-mapping is a UserError."""
    path = find_config(Path(path))
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    data = read_yaml(path, what="config file")
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
        value = strict_yaml(raw, where=f"--set {key.strip()}") if raw.strip() else None
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


SECTIONS_FIELD = "sections"


def build(cls: type[T], data: dict[str, Any], *, where: str = "") -> T:
    """Builds dataclass ``cls`` from a mapping, checking names and coercing types; errors name the key. A class
    with ``config_sections()`` (name → dataclass) takes those names as top-level keys of plug-in sections."""
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)} - {SECTIONS_FIELD}  # type: ignore[arg-type]
    sections = cls.config_sections() if hasattr(cls, "config_sections") else {}
    unknown = sorted(set(data) - fields - set(sections))
    if unknown:
        raise UserError(f"unknown config key '{where}{unknown[0]}'; known: {', '.join(sorted(fields | set(sections)))}")
    kwargs = {name: _coerce(value, hints[name], f"{where}{name}") for name, value in data.items() if name in fields}
    if sections:
        kwargs[SECTIONS_FIELD] = {name: _coerce(data.get(name, {}), kind, f"{where}{name}")
                                  for name, kind in sections.items()}
    return cls(**kwargs)


_FRACTION = re.compile(r"([-+]?\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)")


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
        if isinstance(value, str) and value.lower() in ("true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "no", "off"):
            return False
    elif hint in (int, float, str):
        if isinstance(value, bool) and hint is not str:  # yes/true are not the number 1
            raise UserError(f"config key {key!r} must be {hint.__name__}, got a boolean ({value!r})")
        if hint is str and isinstance(value, (list, dict)):  # [a, b] where one name is expected: say so
            raise UserError(f"config key {key!r} must be a string, got {value!r}")
        try:
            if hint is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            if hint is float and isinstance(value, str) and (fraction := _FRACTION.fullmatch(value.strip())):
                if float(fraction[2]) == 0:
                    raise UserError(f"config key {key!r}: {value!r} divides by zero")
                return float(fraction[1]) / float(fraction[2])  # researchers write ε as 8/255
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

    d = plain(dataclasses.asdict(cfg))
    for name, section in d.pop(SECTIONS_FIELD, {}).items():  # plug-in sections are top-level keys
        d[name] = section
    return d


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
