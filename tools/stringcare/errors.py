"""Errors the host tools show to a person."""

from stringcare_host.errors import UserError

# A user-facing error: printed as 'stringcare: error: ...' with exit code 2.  The message
# says what was wrong and what to do about it.  The host runtime (stringcare_host) raises
# the same class, so the CLI reports its errors alike.
CliError = UserError
