"""The documentation's examples run as tests (Sybil), so the docs cannot drift from the tool.

Every ```console block (``$ robustbench …`` lines, each followed by its output; an output starting with "error" is a
refused command, which must exit non-zero) and every ```pycon block (a ``>>>`` session with output) under ``docs/`` is
executed, the blocks of one page in order and in one scratch directory, and each output compared with what the page
shows: text exactly (runs of spaces and the box-drawing rules of rich tables aside; ``[…]`` for what changes every run,
such as a new key or a fresh sample seed), numbers within ``NUMBER_TOLERANCE`` — the float noise a probe fitted on
another CPU may add, far below any change a reader would act on. ```bash and ```python blocks show commands that need
data or weights this machine does not have (ImageNet, public checkpoints), and ```text blocks recorded measurements
(perf figures with their date and machine); they are not run.
"""

from __future__ import annotations

import doctest
import re
import shlex
from pathlib import Path

import pytest
from sybil import Sybil
from sybil.parsers.markdown import CodeBlockParser

DOCS = Path(__file__).resolve().parents[2] / "docs"
NUMBER_TOLERANCE = 0.3  # absolute, on numbers written with a decimal point (percentages, fractions); integers exact
_NUMBER = re.compile(r"-?\d+\.\d+")
WILDCARD = "[…]"
_RULES = re.compile(r"[─━│┃┏┓┗┛┡┩┢┪┣┫┳┻╇╈╋┼┬┴├┤┌┐└┘═║╒╕╘╛╞╡╤╧╪\s]+")


def outputs_match(want: str, got: str) -> bool:
    """Whether ``got`` reads as ``want``: the same text and integers, decimals within ``NUMBER_TOLERANCE``; a
    ``[…]`` in ``want`` stands for text that differs on every run (a new key, a fresh random seed)."""
    want, got = _RULES.sub(" ", want).strip(), _RULES.sub(" ", got).strip()
    if WILDCARD in want:
        pattern = ".+?".join(re.escape(part) for part in want.split(WILDCARD))
        return re.fullmatch(pattern, got, flags=re.S) is not None
    if _NUMBER.sub("#", want) != _NUMBER.sub("#", got):
        return False
    return all(abs(float(a) - float(b)) <= NUMBER_TOLERANCE
               for a, b in zip(_NUMBER.findall(want), _NUMBER.findall(got), strict=True))


def _console(example) -> None:
    """Runs each ``$ robustbench …`` line of the block in the page's scratch directory; compares its output."""
    from click.testing import CliRunner

    from ssl_robustbench.cli import main

    commands = re.split(r"^\$ ", example.parsed, flags=re.M)[1:]
    for command in commands:
        line, _, want = command.partition("\n")
        argv = shlex.split(line)
        assert argv[0] == "robustbench", f"docs console blocks run robustbench only, not {line!r}"
        result = CliRunner().invoke(main, argv[1:], env={"COLUMNS": "100"}, catch_exceptions=False)
        shows_error = want.lstrip().lower().startswith("error")  # a page may show a refused command
        assert (result.exit_code != 0) == shows_error, f"{line}\n{result.output}"
        assert outputs_match(want, result.output), \
            f"$ {line}\n--- the page shows:\n{want}\n--- it printed:\n{result.output}"


class _TolerantChecker(doctest.OutputChecker):
    def check_output(self, want: str, got: str, optionflags: int) -> bool:
        return outputs_match(want, got)


def _pycon(example) -> None:
    """Runs a ``>>>`` session in the page's namespace; compares each output."""
    test = doctest.DocTestParser().get_doctest(example.parsed, example.namespace, example.path, example.path,
                                               example.line)
    runner = doctest.DocTestRunner(checker=_TolerantChecker(), optionflags=doctest.ELLIPSIS)
    report: list[str] = []
    runner.run(test, out=report.append, clear_globs=False)
    example.namespace.update(test.globs)  # the page's next blocks see these names
    assert not runner.failures, "".join(report)


PAGES = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
SYBIL = Sybil(parsers=[CodeBlockParser(language="console", evaluator=_console),
                       CodeBlockParser(language="pycon", evaluator=_pycon)], path=str(DOCS))


def test_the_docs_have_executed_examples():
    runnable = [page for page in PAGES if list(SYBIL.parse(DOCS / page))]
    assert {"getting-started.md", "own-model.md"} <= set(runnable), runnable


@pytest.mark.parametrize("page", PAGES)
def test_docs_page_examples(page, tmp_path, monkeypatch):
    document = SYBIL.parse(DOCS / page)
    monkeypatch.chdir(tmp_path)  # a page's blocks run in order, in one scratch directory
    for example in document:
        example.evaluate()
