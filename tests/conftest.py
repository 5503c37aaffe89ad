"""Shared fixtures: an isolated cache per test session (the embedded set is generated once into it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
