"""The README's quick start, run verbatim (issue 43): every ``robustbench`` line of its ``bash`` blocks, in order,
in a scratch directory (comments stripped), each exiting 0; the eval prints the top-1 the README states, and
``verify`` says that it recorded nothing without a store."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from click.testing import CliRunner

from ssl_robustbench.cli import main

README = Path(__file__).resolve().parents[2] / "README.md"


def _quick_start_commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    lines = [line.split("#", 1)[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line]


def test_readme_quick_start_runs_verbatim(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    commands = _quick_start_commands()
    assert [shlex.split(c)[:2] for c in commands] == [["robustbench", "eval"], ["robustbench", "submit"],
                                                      ["robustbench", "leaderboard"], ["robustbench", "verify"]]
    stated = re.search(r"It prints `top1 (\d+\.\d+)`", README.read_text(encoding="utf-8")).group(1)
    outputs = []
    for command in commands:
        result = CliRunner().invoke(main, shlex.split(command)[1:], env={"COLUMNS": "100"})
        assert result.exit_code == 0, f"{command}\n{result.output}"
        outputs.append(result.output)
    top1 = float(re.search(r"top1 (\d+\.\d+)", outputs[0]).group(1))
    assert abs(top1 - float(stated)) <= 0.3, (top1, stated)
    assert "embedded-simclr-tinyresnet" in outputs[2] and "not recorded" in outputs[3]
