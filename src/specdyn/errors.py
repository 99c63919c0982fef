"""User-facing errors: the CLI prints these as one line and exits non-zero."""


class SpecdynError(Exception):
    """An error caused by the user's input or environment, with a message that says what to do."""
