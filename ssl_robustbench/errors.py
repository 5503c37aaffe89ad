"""The one exception type for expected mistakes (bad paths, ids, checkpoints, data).

The CLI prints a UserError as a single line and exits non-zero, never with a traceback.
"""


class UserError(Exception):
    """An expected mistake in the user's input, with a message that says how to fix it."""
