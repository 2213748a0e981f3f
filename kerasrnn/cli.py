"""The `kerasrnn` command line.

Sub-commands live in their own modules and are imported only when used, so
`kerasrnn --help` stays fast and one command's heavy imports (TensorFlow,
PyTorch) never slow down another.
"""

from __future__ import annotations

import importlib
import os

import click

# TensorFlow's C++ info/warning logs (e.g. "Compiled cluster using XLA!") are not for CLI
# users; an explicit TF_CPP_MIN_LOG_LEVEL in the environment still wins. (The few lines
# absl prints while TF 2.21 loads, before its logging is set up, ignore this setting.)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# name -> "module:attribute" of a click command or group.
COMMANDS = {
    "recipe": "kerasrnn.commands.recipe:recipe",
    "data": "kerasrnn.commands.data:data",
    "generate": "kerasrnn.commands.generate:generate",
    "classify": "kerasrnn.commands.classify:classify",
    "forecast": "kerasrnn.commands.forecast:forecast",
    "export": "kerasrnn.commands.export:export",
    "verify": "kerasrnn.verify:verify_command",
    "bench": "kerasrnn.bench:bench",
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def __init__(self, *args, lazy_commands: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.lazy_commands))

    def get_command(self, ctx, name):
        if name in self.lazy_commands:
            module_name, attr = self.lazy_commands[name].split(":")
            return getattr(importlib.import_module(module_name), attr)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, lazy_commands=COMMANDS)
@click.version_option(package_name="kerasrnn")
def main():
    """kerasrnn: verified Keras 3 RNN/LSTM/GRU layers, recipes and export."""


if __name__ == "__main__":
    main()
