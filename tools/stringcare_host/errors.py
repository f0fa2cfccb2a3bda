"""Errors the host runtime shows to a person."""


class UserError(Exception):
    """A user-facing error: the message says what was wrong and what to do about it.

    The CLI prints it as 'stringcare: error: ...' with exit code 2
    (stringcare.errors.CliError is this class).
    """
