"""Shared fixtures: an isolated cache per test session (the embedded set is generated once into it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["interrupt_plugin"]  # Ctrl-C stops the run, even inside a CliRunner-invoked command

os.environ["SSL_ROBUSTBENCH_PROGRESS"] = "0"

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cache")
    os.environ["SSL_ROBUSTBENCH_CACHE"] = str(path)
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_ROBUSTBENCH_CACHE", str(cache_dir))


@pytest.fixture
def interrupted_pretrain(monkeypatch: pytest.MonkeyPatch):
    """``run(cfg, run_dir)``: a pretraining run killed while writing its second end-of-epoch checkpoint."""
    import contextlib

    from ssl_robustbench.training import loop

    def run(cfg, run_dir: Path) -> None:
        real, calls = loop.atomic_open, []

        @contextlib.contextmanager
        def crash_on_second_checkpoint(path):
            calls.append(path)
            if len(calls) == 2:
                raise KeyboardInterrupt
            with real(path) as fh:
                yield fh

        with monkeypatch.context() as patch:
            patch.setattr(loop, "atomic_open", crash_on_second_checkpoint)
            with pytest.raises(KeyboardInterrupt):
                loop.pretrain(cfg, run_dir)

    return run
