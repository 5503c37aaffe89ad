"""``make test`` stops on Ctrl-C (issue 43): a SIGINT during a test that runs a CLI command through CliRunner (where
Click would turn it into "Aborted!" and a mere failure) ends the whole run; the next test never starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

INNER = '''
import os, signal
import click
from click.testing import CliRunner

@click.command()
def slow():
    os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl-C while the command runs

def test_first(tmp_path):
    CliRunner().invoke(slow)

def test_second(tmp_path):
    (tmp_path.parent / "second-ran").write_text("yes")
'''


def test_ctrl_c_inside_a_cli_test_stops_the_run(tmp_path):
    (tmp_path / "test_inner.py").write_text(INNER)
    tests = Path(__file__).resolve().parent
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "interrupt_plugin", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), "--basetemp", str(tmp_path / "base"), str(tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={"PYTHONPATH": str(tests), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 130, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "interrupted (Ctrl-C)" in proc.stdout + proc.stderr
    assert not (tmp_path / "base" / "second-ran").exists() and "2 passed" not in proc.stdout
