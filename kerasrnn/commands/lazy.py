"""`LazyGroup`: a click group whose sub-commands are imported on first use.

Each sub-command is given as ``"module:attribute"`` plus its one-line help, so
``--help`` lists the commands without importing them (their modules import
TensorFlow, which takes seconds).

>>> group = LazyGroup(name="demo", lazy_commands={"hello": ("mypkg.cmds:hello", "Say hello.")})  # doctest: +SKIP
"""

from __future__ import annotations

import importlib

import click


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use.

    Args:
        lazy_commands: ``{name: "module:attribute"}`` or
            ``{name: ("module:attribute", "one-line help")}``; with the help
            text, listing the group (``--help``) does not import the command.
    """

    def __init__(self, *args, lazy_commands: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = {}
        self.short_help_texts = {}
        for name, spec in (lazy_commands or {}).items():
            target, help_text = (spec, None) if isinstance(spec, str) else spec
            self.lazy_commands[name] = target
            if help_text:
                self.short_help_texts[name] = help_text

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.lazy_commands))

    def get_command(self, ctx, name):
        if name in self.lazy_commands:
            module_name, attr = self.lazy_commands[name].split(":")
            return getattr(importlib.import_module(module_name), attr)
        return super().get_command(ctx, name)

    def format_commands(self, ctx, formatter):
        rows = []
        for name in self.list_commands(ctx):
            if name in self.short_help_texts:  # no import just to print one line of help
                rows.append((name, self.short_help_texts[name]))
                continue
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(formatter.width - 6 - len(name))))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
