"""The one progress bar used by every loop over data (rich; hidden when output is not a terminal or in tests)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

T = TypeVar("T")

console = Console(stderr=True)


@contextlib.contextmanager
def progress_bar(*, total: int | None, description: str) -> Iterator[Callable[..., None]]:
    """A progress bar with counts, elapsed and remaining time; yields ``update(advance=1, description=None)``.

    ``SSL_ROBUSTBENCH_PROGRESS=0`` turns bars off.
    """
    disable = os.environ.get("SSL_ROBUSTBENCH_PROGRESS", "1") == "0"
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console, disable=disable, transient=False) as bar:
        task = bar.add_task(description, total=total)

        def update(advance: int = 1, description: str | None = None) -> None:
            bar.update(task, advance=advance, **({"description": description} if description else {}))

        yield update


def track(items: Iterable[T], *, total: int | None, description: str) -> Iterator[T]:
    """Yields from ``items`` while showing a progress bar (see ``progress_bar``)."""
    with progress_bar(total=total, description=description) as update:
        for item in items:
            yield item
            update()
