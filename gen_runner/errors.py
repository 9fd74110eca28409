"""The one exception type for mistakes a user can fix; the CLI prints it as a single line."""

__all__ = ["UserError"]


class UserError(Exception):
    """Bad input (names, shapes, files, checkpoints, diverging losses): the message says what to do."""
