"""The one exception type for bad user input.

`UserError` is a `click.ClickException`: the CLI prints its one-line message as
``Error: <message>`` and exits with status 1, without a traceback. Library code
raises it for anything the user can fix (a missing file, an unknown recipe key),
and the message always names the problem *and* the fix.
"""

import click


class UserError(click.ClickException):
    """Bad input from the user: one line that names the problem and the fix."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
