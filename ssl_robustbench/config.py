"""YAML → frozen dataclasses, with ``--set a.b=value`` overrides.

Every run resolves its configuration once (defaults ← ``--config`` file ← CLI options ← ``--set``) and writes the
result to the run directory before work starts; its hash identifies the protocol in every result row.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ssl_robustbench.errors import UserError
from ssl_robustbench.fileio import stable_hash

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
    """Linear-probe recipe: multinomial logistic regression fitted by full-batch L-BFGS on cached features."""

    standardize: bool = True
    weight_decay: float = 1e-4
    max_iter: int = 50
    tolerance: float = 1e-6


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
    """``robustbench eval``: a model (zoo id or checkpoint file), data, probe recipe and suites."""

    model: str = "embedded-simclr-tinyresnet"
    arch: str | None = None
    data: DataConfig = DataConfig()
    probe: ProbeConfig = ProbeConfig()
    suites: tuple[str, ...] = ("clean",)
    adv: AdvConfig = AdvConfig()
    c: CorruptionConfig = CorruptionConfig()
    pd: PerspectiveConfig = PerspectiveConfig()
    e: EditConfig = EditConfig()
    run: RunConfig = RunConfig()


def load_yaml(path: Path) -> dict[str, Any]:
    """Reads a YAML mapping; a missing file or a non-mapping is a UserError."""
    path = Path(path)
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
    """Hash of the config minus where and how the run executes (device, batch size, paths; the seed counts) and
    minus the top-level keys in ``exclude`` (e.g. the model, to identify a protocol shared by many models)."""
    d = to_dict(cfg)
    run = d.pop("run", None)
    if isinstance(run, dict):
        d["seed"] = run.get("seed")
    for key in exclude:
        d.pop(key, None)
    return stable_hash(d)


def protocol_hash(cfg: Any) -> str:
    """The evaluation protocol (data, probe recipe, suites and their settings, seed): what must match for two
    models' rows to be compared. Stored as ``config_hash`` in result rows and cards. A suite's own section
    (``adv``, ``c``, ``pd``, ``e``) counts only when that suite runs."""
    suites = getattr(cfg, "suites", ())
    unused = tuple(section for suite, section in SUITE_SECTIONS.items() if suite not in suites)
    return config_hash(cfg, exclude=("model", "arch", *unused))


SUITE_SECTIONS = {"adversarial": "adv", "c": "c", "pd": "pd", "e": "e"}
