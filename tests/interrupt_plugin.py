"""Ctrl-C stops the test run (issue 43). A test that runs the CLI through ``CliRunner`` would otherwise swallow it:
Click turns KeyboardInterrupt into "Aborted!" and exit status 1, the test fails, and pytest goes on. SIGINT is
noted here, and the run ends after the interrupted test's report."""

from __future__ import annotations

import signal

import pytest

_interrupted = False


def _on_sigint(signum, frame):  # noqa: ARG001 - the signal handler's signature
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def pytest_sessionstart(session: pytest.Session) -> None:  # noqa: ARG001
    signal.signal(signal.SIGINT, _on_sigint)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):  # noqa: ARG001
    yield
    if _interrupted:
        pytest.exit("interrupted (Ctrl-C): the run stops here", returncode=130)
