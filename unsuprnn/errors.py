"""The one user-facing error type.

Anything a user can fix (a missing file, an unknown option, a bad array) raises `UserError`
with a one-line message that names the problem and the fix; the CLI prints it as
`error: ...` and exits with code 2.
"""


class UserError(Exception):
    """A problem in the user's input, reported as one line without a traceback."""

    exit_code = 2


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C, with a line saying what state the interruption left the run in."""


class DiskFull(UserError):
    """No space left for a write; the destination was left as it was."""
