"""Long loops say how long they will take once their first step is done (issue 33: expectations)."""

from __future__ import annotations

import io
import types

from rich.console import Console

from ssl_robustbench import progress


def _run(monkeypatch, *, step_seconds, steps, work="3 conditions, 1,500 images"):
    monkeypatch.setenv("SSL_ROBUSTBENCH_PROGRESS", "1")
    out = io.StringIO()
    monkeypatch.setattr(progress, "console", Console(file=out, width=200, force_terminal=False))
    clock = iter(range(0, 10_000))
    # the module's own clock only (rich keeps its own): each reading is one more step of ``step_seconds``
    monkeypatch.setattr(progress, "time", types.SimpleNamespace(monotonic=lambda: next(clock) * step_seconds))
    with progress.progress_bar(total=steps, description="c", work=work) as advance:
        for _ in range(steps):
            advance()
    return out.getvalue()


def test_a_long_loop_prints_its_estimate_once(monkeypatch):
    text = _run(monkeypatch, step_seconds=30.0, steps=10)
    # the first step took one tick of the fake clock (30 s): 10 steps ≈ 5 min
    assert text.count("estimated") == 1
    assert "3 conditions, 1,500 images, estimated 5 min 0 s at the first batch's rate" in text


def test_a_short_loop_prints_no_estimate(monkeypatch):
    assert "estimated" not in _run(monkeypatch, step_seconds=1.0, steps=10)


def test_durations_read_as_a_person_writes_them():
    assert [progress.duration(s) for s in (5, 95.2, 7300)] == ["5 s", "1 min 35 s", "2 h 1 min"]
