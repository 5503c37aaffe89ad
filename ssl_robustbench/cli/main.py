"""``robustbench``: the command group."""

from __future__ import annotations

import click

import ssl_robustbench
from ssl_robustbench.allocator import tune_malloc
from ssl_robustbench.cli.augment import augment_group
from ssl_robustbench.cli.cite import cite_command
from ssl_robustbench.cli.eval import eval_command, probe_command
from ssl_robustbench.cli.export import export_group
from ssl_robustbench.cli.generate import generate_group
from ssl_robustbench.cli.leaderboard import leaderboard_group, submit_command
from ssl_robustbench.cli.metrics import metrics_group
from ssl_robustbench.cli.pretrain import policy_plot_command, pretrain_command
from ssl_robustbench.cli.verify import compare_command, verify_command
from ssl_robustbench.cli.zoo import zoo_group


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
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


main.add_command(eval_command)
main.add_command(cite_command)
main.add_command(probe_command)
main.add_command(pretrain_command)
main.add_command(policy_plot_command)
main.add_command(zoo_group)
main.add_command(leaderboard_group)
main.add_command(submit_command)
main.add_command(verify_command)
main.add_command(compare_command)
main.add_command(metrics_group)
main.add_command(generate_group)
main.add_command(augment_group)
main.add_command(export_group)
