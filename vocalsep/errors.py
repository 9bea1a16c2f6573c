"""The one error type that library code raises.

Library functions raise :class:`VocalsepError` with a one-line, user-facing message that names the file
and the problem.  Only the CLI turns it into an exit code.
"""


class VocalsepError(Exception):
    """A problem the user can fix (bad file, bad option, missing data); the message is one line."""
