"""``robustbench``: the command group. Each subcommand's module is imported only when that subcommand runs (or
its help is asked for), so ``robustbench --help`` and the light commands start without importing torch."""

from __future__ import annotations

import importlib

import click

import ssl_robustbench
from ssl_robustbench.allocator import tune_malloc

#: name → (module under ssl_robustbench.cli, attribute, the summary ``robustbench --help`` lists: the command's
#: own first sentence, kept equal to it by tests/cli/test_startup.py)
COMMANDS = {
    "augment": ("augment", "augment_group", "Inspect view generation."),
    "cite": ("cite", "cite_command", "Print BibTeX for ssl-robustbench and the papers behind RUN_DIR (its suites, the "
             "attacks its adversarial suite ran, its checkpoint's method; the checkpoint's own paper as a comment)."),
    "compare": ("verify", "compare_command", "Paired differences of two cards of one board, per condition: top-1 of "
                "each, the difference with its 95 % interval, the images only one gets right, and McNemar's exact "
                "p."),
    "eval": ("eval", "eval_command", "Evaluate a frozen SSL backbone: fit (or reuse) a linear probe, run the suites, "
             "write a results table."),
    "export": ("export", "export_group", "Export a run's results for other tools."),
    "generate": ("generate", "generate_group", "Write ImageNet-C / -PD / -E style trees from a clean dataset (the "
                 "layouts `eval --c-root` etc. read)."),
    "leaderboard": ("leaderboard", "leaderboard_group", "Render, show and validate the leaderboard of a result store; "
                    "name who may sign its verifications."),
    "metrics": ("metrics", "metrics_group", "Recompute benchmark aggregates from accuracy tables."),
    "policy-plot": ("pretrain", "policy_plot_command", "Plot an ASTrA run's action distributions (ε, steps, step "
                    "size) and reward per epoch from its log.csv (pretraining redraws RUN_DIR/policy.png after every "
                    "epoch)."),
    "pretrain": ("pretrain", "pretrain_command", "Pretrain an SSL backbone; re-running with the same --out resumes "
                 "after the last finished epoch."),
    "probe": ("eval", "probe_command", "Fit a linear probe on frozen features and report its clean top-1 (the clean "
              "suite only)."),
    "submit": ("leaderboard", "submit_command", "Submit an eval run directory (one card per suite) or a card file to "
               "a result store."),
    "verify": ("verify", "verify_command", "Re-run a fresh random sample of every condition of each card from the "
               "weights the card names and compare per-image results with its evidence."),
    "zoo": ("zoo", "zoo_group", "Browse the model zoo (one YAML card per checkpoint in model_zoo/)."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use; its help lists them from ``COMMANDS``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute, _ = COMMANDS[cmd_name]
        return getattr(importlib.import_module(f"ssl_robustbench.cli.{module}"), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, click.Command(name, help=COMMANDS[name][2]).get_short_help_str(limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(ssl_robustbench.__version__, prog_name="robustbench")
def main() -> None:
    """Measure and improve the robustness of self-supervised image representations.

    \b
    Examples:
      robustbench zoo list
      robustbench eval --model embedded-simclr-tinyresnet
      robustbench eval --model mocov3-rn50-1000ep --data imagenet --data-root /data/imagenet
      robustbench eval --suite c,pd,e --n-shift 500
      robustbench generate c --out data/embedded-c
      robustbench pretrain --method simclr --epochs 30 --out runs/simclr
      robustbench submit runs/demo --to runs/leaderboard && robustbench leaderboard show --store runs/leaderboard
    """
    tune_malloc()  # large batch buffers reused instead of re-mapped on every call (ssl_robustbench.allocator)
