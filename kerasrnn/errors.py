"""The one exception type for bad user input.

`KerasRNNError` (also importable as `UserError`, the same class) is a plain
library exception, a `ValueError`: library code raises it for anything the user
can fix (a missing file, an unknown recipe key, an out-of-range setting), and
the message is one line that names the problem *and* the fix. Library messages
name the *setting* (a recipe key such as ``train.epochs`` or a keyword argument
such as ``overwrite=True``), never a command-line flag.

The command line (`kerasrnn.cli.main`) turns it into ``Error: <message>`` and
exit status 1, in one place. When the fix is a flag, the raiser may give
`cli_message`, the same sentence in the CLI's words, which the CLI prints instead.

>>> try:
...     raise UserError("train.epochs must be >= 1, got 0")
... except ValueError as e:
...     print(e)
train.epochs must be >= 1, got 0
"""

from __future__ import annotations


class KerasRNNError(ValueError):
    """Bad input from the user: one line that names the problem and the fix.

    Args:
        message: the problem and the fix; whitespace (newlines included) is
            collapsed to single spaces so it always prints as one line.
        cli_message: optional wording for the command line (naming flags such
            as ``--overwrite``), printed by the CLI instead of `message`.

    Attributes:
        message: the one-line message.
        cli_message: the CLI wording, or None.
    """

    def __init__(self, message: str, cli_message: str | None = None):
        self.message = " ".join(str(message).split())
        self.cli_message = " ".join(str(cli_message).split()) if cli_message else None
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


UserError = KerasRNNError
