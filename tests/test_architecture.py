"""The docs' architecture page is the package as it is, and the import rules it states hold."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ssl_robustbench"


def _module_name(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _units() -> set[str]:
    """Subpackages (``name/``) and top-level modules (``name``) of the package."""
    subpackages = {f"{p.name}/" for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
    return subpackages | modules


def _imports(path: Path, *, module_level: bool) -> set[str]:
    """The ``ssl_robustbench`` modules ``path`` imports (at module level only, or anywhere)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    if module_level:
        nodes = [n for top in tree.body if not isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                 for n in ast.walk(top)]
    else:
        nodes = list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from pkg import submodule`` imports the submodule; ``from module import name`` the module
            found.update(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                         for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m.split(".")[0] == "ssl_robustbench"}


def test_the_architecture_page_lists_every_module():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([^`]+)` \|", text, flags=re.M))
    assert listed == _units(), {"missing from the page": sorted(_units() - listed),
                                "not in the package": sorted(listed - _units())}


def test_no_import_cycle_at_module_level():
    graph = {m: {t for t in _imports(p, module_level=True) if t in MODULES and t != m} for m, p in MODULES.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph[m]):
            assert state.get(t) != 1, "import cycle: " + " → ".join(path[path.index(t):] + [t])
            if t not in state:
                visit(t, path + [t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def test_suites_do_not_import_the_layers_above_them():
    above = ("ssl_robustbench.eval_config", "ssl_robustbench.evaluation", "ssl_robustbench.api", "ssl_robustbench.cli")
    for path in (PACKAGE / "benchmarks").glob("*.py"):
        bad = [m for m in _imports(path, module_level=False) if m.startswith(above)]
        assert not bad, (path.name, bad)


def test_results_never_imports_the_layers_that_re_run_a_model():
    """``results/`` reads, checks and renders cards; evaluation and verification re-run models and sit above it."""
    above = ("ssl_robustbench.evaluation", "ssl_robustbench.verification", "ssl_robustbench.api",
             "ssl_robustbench.cli", "ssl_robustbench.probes", "ssl_robustbench.training", "ssl_robustbench.attacks")
    for path in (PACKAGE / "results").glob("*.py"):
        bad = [m for m in _imports(path, module_level=False) if m.startswith(above)]
        assert not bad, (path.name, bad)


def test_only_the_cli_imports_click():
    for path in PACKAGE.rglob("*.py"):
        if "cli" in path.relative_to(PACKAGE).parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not any(n == "click" or n.startswith("click.") for n in names), path
