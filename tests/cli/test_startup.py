"""The CLI starts light (issue 43): ``robustbench --help``, the group helps and the zoo commands import no torch,
torchvision or timm (subcommands are loaded when they run: ``cli/main.py``'s ``LazyGroup``), and the command list
``--help`` prints from ``COMMANDS`` says what each command's own help says."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from ssl_robustbench.cli.main import COMMANDS, main

from cardfactory import make_card, write_card, write_store

HEAVY = ("torch", "torchvision", "timm", "transformers", "scipy", "matplotlib")
LIGHT = [["--help"], ["zoo", "--help"], ["zoo", "list"], ["zoo", "show", "dinov2-vits14"], ["leaderboard", "--help"],
         ["generate", "--help"], ["export", "--help"], ["augment", "--help"], ["metrics", "--help"],
         ["eval", "--help"], ["probe", "--help"]]


def _imported_after(args: list[str]) -> tuple[int, list[str]]:
    code = (f"import sys, json\nfrom click.testing import CliRunner\nfrom ssl_robustbench.cli import main\n"
            f"result = CliRunner().invoke(main, {args!r})\n"
            f"print(json.dumps([result.exit_code, sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    exit_code, modules = json.loads(out.stdout.strip().splitlines()[-1])
    return exit_code, modules


@pytest.mark.parametrize("args", LIGHT, ids=" ".join)
def test_light_commands_import_no_torch(args):
    exit_code, heavy = _imported_after(args)
    assert exit_code == 0 and heavy == [], heavy[:5]


def test_the_light_suite_options_are_the_registered_suites_options():
    """``eval --help`` reads ``suite_options.SUITE_OPTIONS`` without importing the suites: it must be what they use."""
    from ssl_robustbench.benchmarks import BENCHMARKS
    from ssl_robustbench.benchmarks.adversarial_finetune import PROTOCOLS
    from ssl_robustbench.suite_options import ADV_PROTOCOLS, SUITE_OPTIONS

    assert set(SUITE_OPTIONS) == set(BENCHMARKS.names())
    for name in BENCHMARKS.names():
        suite = BENCHMARKS.get(name)
        assert suite.options is SUITE_OPTIONS[name], name
        assert all(suite.section for _ in suite.options), f"{name} has options but no config section"
    assert ADV_PROTOCOLS == (*PROTOCOLS, "probe")


def test_the_command_list_matches_each_commands_own_help():
    ctx = click.Context(main)
    for name, (_, _, summary) in COMMANDS.items():
        command = main.get_command(ctx, name)
        assert command is not None and command.name == name
        assert summary == command.get_short_help_str(limit=10_000), name


def test_leaderboard_show_of_an_unchanged_store_imports_no_torch_and_follows_every_change(tmp_path):
    """The first ``show`` builds the boards and snapshots them in the cache; the next reads the snapshot (no torch)
    and prints the same; a new card (any change to the store) is a new key, so the boards are built again."""
    store = write_store(tmp_path / "store", [make_card("model-a", values=((("clean", 0), 0.7),))])
    first = CliRunner().invoke(main, ["leaderboard", "show", "--store", str(store)], env={"COLUMNS": "120"})
    assert first.exit_code == 0 and "model-a" in first.output
    exit_code, heavy = _imported_after(["leaderboard", "show", "--store", str(store)])
    assert exit_code == 0 and heavy == [], heavy[:5]
    again = CliRunner().invoke(main, ["leaderboard", "show", "--store", str(store)], env={"COLUMNS": "120"})
    assert again.output == first.output
    write_card(store, make_card("model-b", values=((("clean", 0), 0.9),)))
    changed = CliRunner().invoke(main, ["leaderboard", "show", "--store", str(store)], env={"COLUMNS": "120"})
    assert changed.exit_code == 0 and "model-b" in changed.output
