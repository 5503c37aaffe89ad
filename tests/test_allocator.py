"""The malloc tuning the CLI applies (ssl_robustbench.allocator)."""

from __future__ import annotations

import ctypes
import platform
import sys

import pytest

from ssl_robustbench import allocator
from ssl_robustbench.cli import main


def test_takes_effect_on_glibc_and_is_a_no_op_elsewhere(monkeypatch):
    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        assert allocator.tune_malloc.__wrapped__() is True
    monkeypatch.setattr(sys, "platform", "darwin")
    assert allocator.tune_malloc.__wrapped__() is False
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("SSL_ROBUSTBENCH_DEFAULT_MALLOC", "1")
    assert allocator.tune_malloc.__wrapped__() is False


def test_a_libc_without_mallopt_is_not_an_error(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(ctypes, "CDLL", lambda name: (_ for _ in ()).throw(OSError("no libc")))
    assert allocator.tune_malloc.__wrapped__() is False


def test_the_command_tunes_it_before_a_subcommand_runs(monkeypatch):
    from click.testing import CliRunner

    calls = []
    module = sys.modules["ssl_robustbench.cli.main"]  # the package's ``main`` attribute is the command itself
    monkeypatch.setattr(module, "tune_malloc", lambda: calls.append(1) or True)
    result = CliRunner().invoke(main, ["zoo", "list"])
    assert result.exit_code == 0, result.output
    assert calls == [1]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_thresholds_are_ones_glibc_accepts():
    libc = ctypes.CDLL("libc.so.6")
    assert libc.mallopt(allocator._M_MMAP_THRESHOLD, allocator.THRESHOLD) == 1
    assert libc.mallopt(allocator._M_TRIM_THRESHOLD, allocator.THRESHOLD) == 1
