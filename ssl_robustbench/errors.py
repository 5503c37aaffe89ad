"""The one exception type for expected mistakes (bad paths, ids, checkpoints, data).

The CLI prints a UserError as a single line and exits non-zero, never with a traceback.
"""


class UserError(Exception):
    """An expected mistake in the user's input, with a message that says how to fix it."""


def warn(message: str) -> None:
    """One ``warning:`` line on stderr; the work goes on (a skipped bad card, a damaged cache being rebuilt)."""
    import sys

    print(f"warning: {message}", file=sys.stderr)
