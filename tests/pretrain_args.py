"""The command line of a tiny ``robustbench pretrain`` run for tests of adversarial methods."""

from __future__ import annotations

from pathlib import Path

TINY = ("method_args.steps=1", "data.train_limit=64", "run.batch_size=32", "mean=[0,0,0]", "std=[1,1,1]",
        "monitor_every=0")


def tiny_pretrain_args(method: str, run: Path, *sets: str, epochs: int = 1,
                       arch: str | None = "tiny_resnet/8-16-16-32") -> list[str]:
    """``pretrain`` of ``method`` into ``run`` on 64 embedded images: batch 32, one attack step, pixels in [0, 1],
    no k-NN monitor, on the CPU; ``sets`` are further KEY=VALUE overrides (``arch`` None: the default arch)."""
    args = ["pretrain", "--method", method, "--epochs", str(epochs), "--out", str(run), "--device", "cpu"]
    if arch:
        args += ["--arch", arch]
    for item in (*TINY, *sets):
        args += ["--set", item]
    return args
