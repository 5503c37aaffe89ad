"""The docs' table of Self-AT constants (ACL, DynACL, ASTrA and their SLF/ALF/AFF evaluation) against the code:
every row's value must be what its ``here`` reference holds, and a behaviour row must name an existing test."""

from __future__ import annotations

import ast
import importlib
import math
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HEADING = "## Self-AT recipes: every constant and its source"


def table_rows() -> list[tuple[str, str, str]]:
    text = (ROOT / "docs" / "pretraining.md").read_text(encoding="utf-8")
    section = text[text.index(HEADING):]
    rows = []
    for line in section.splitlines()[1:]:
        if line.startswith("#"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[2].startswith("`"):
            rows.append((cells[0], cells[1], cells[2].strip("`")))
    return rows


def parse_value(text: str):
    if fraction := re.fullmatch(r"(\d+)/(\d+)", text):
        return int(fraction[1]) / int(fraction[2])
    if span := re.fullmatch(r"range\((\d+), (\d+)\)", text):
        return list(range(int(span[1]), int(span[2])))
    try:
        return float(text) if re.fullmatch(r"[\d.]+e-?\d+", text) else yaml.safe_load(text)  # YAML 1.1: 1e-6 is text
    except ValueError:
        return text


def resolve(ref: str):
    """``path.yaml:key.sub`` (a YAML file of the project), ``module:Attr.attr[,attr2]`` (under ssl_robustbench)."""
    where, key = ref.split(":", 1)
    if where.endswith(".yaml"):
        value = yaml.safe_load((ROOT / where).read_text(encoding="utf-8"))
        for part in key.split("."):
            value = value[part]
        return value
    module = importlib.import_module(f"ssl_robustbench.{where}")
    owner, _, names = key.rpartition(".")
    obj = getattr(module, owner) if owner else module
    values = [getattr(obj, name) for name in names.split(",")]
    return values if len(values) > 1 else values[0]


def same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-6)
    return a == b


def test_table_is_there_and_covers_the_recipes():
    rows = table_rows()
    assert len(rows) >= 40
    names = {name for name, _, _ in rows}
    assert {"optimizer", "NT-Xent τ", "DynACL key-encoder momentum", "AFF TRADES β", "head zero-init"} <= names


@pytest.mark.parametrize(("name", "value", "ref"), table_rows(), ids=lambda v: str(v)[:40])
def test_row_matches_the_code(name, value, ref):
    if "::" in ref:  # a behaviour row: the test that pins it must exist
        path, test = ref.split("::")
        tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
        assert test in {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}, ref
        assert value == "—"
        return
    assert same(resolve(ref), parse_value(value)), \
        f"{name}: docs/pretraining.md says {value}, {ref} holds {resolve(ref)!r}"


def test_recipes_share_the_constants_of_cifar10():
    """The CIFAR-100 and STL-10 recipes differ from CIFAR-10's only in their data and sizes."""
    load = lambda name: yaml.safe_load((ROOT / "benchmarks/pretrain" / name).read_text(encoding="utf-8"))  # noqa: E731
    base = load("cifar10-astra.yaml")
    for other in ("cifar100-astra.yaml", "stl10-astra.yaml"):
        recipe = load(other)
        differing = {k for k in base if base[k] != recipe.get(k)}
        assert differing <= {"data", "input_size", "view_size"}, (other, differing)
