"""The one progress bar used by every loop over data (rich; hidden when output is not a terminal or in tests)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

T = TypeVar("T")

console = Console(stderr=True)


#: a loop estimated to take longer than this says so, with its estimate, once its first step is done
LONG_SECONDS = 60.0


def duration(seconds: float) -> str:
    """``95.2`` → ``"1 min 35 s"``; ``7300`` → ``"2 h 1 min"``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


@contextlib.contextmanager
def progress_bar(*, total: int | None, description: str, work: str | None = None) -> Iterator[Callable[..., None]]:
    """A progress bar with counts, elapsed and remaining time; yields ``update(advance=1, description=None)``.

    ``work``: what the loop does in words (e.g. "76 conditions × 500 images"); when given and the first step
    shows the whole loop will take over ``LONG_SECONDS``, one line says so: the estimate is the total steps at the
    first step's rate (which includes warm-up, so it errs long). ``SSL_ROBUSTBENCH_PROGRESS=0`` turns bars and
    estimates off.
    """
    disable = os.environ.get("SSL_ROBUSTBENCH_PROGRESS", "1") == "0"
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    start, done, told = time.monotonic(), 0, disable or work is None or not total
    with Progress(*columns, console=console, disable=disable, transient=False) as bar:
        task = bar.add_task(description, total=total)

        def update(advance: int = 1, description: str | None = None) -> None:
            nonlocal done, told
            bar.update(task, advance=advance, **({"description": description} if description else {}))
            done += advance
            if not told and done > 0:
                told = True
                estimate = (time.monotonic() - start) * total / done
                if estimate > LONG_SECONDS:
                    bar.console.print(f"{description or bar.tasks[0].description}: {work}, estimated "
                                      f"{duration(estimate)} at the first batch's rate")

        yield update


def track(items: Iterable[T], *, total: int | None, description: str, work: str | None = None) -> Iterator[T]:
    """Yields from ``items`` while showing a progress bar (see ``progress_bar``)."""
    with progress_bar(total=total, description=description, work=work) as update:
        for item in items:
            yield item
            update()
