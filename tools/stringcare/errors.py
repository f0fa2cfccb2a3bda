"""Errors the host tools show to a person."""


class CliError(Exception):
    """A user-facing error: printed as 'stringcare: error: ...' with exit code 2.

    The message says what was wrong and what to do about it.
    """
