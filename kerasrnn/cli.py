"""The `kerasrnn` command line.

Sub-commands live in `kerasrnn.commands` (and `verify`/`bench`) and are imported
only when used, so ``kerasrnn --help``, ``recipe list`` and ``recipe show`` never
import TensorFlow. Importing this module has no side effects; everything below
happens when the command runs:

- TensorFlow's native log lines (the absl/oneDNN/CUDA lines it prints while
  loading, before its logging is set up, and its C++ info/warnings/errors afterwards)
  are kept off the terminal: ``TF_CPP_MIN_LOG_LEVEL=3`` is set if unset, and the
  process's native stderr is pointed at /dev/null while TensorFlow is imported
  (eagerly for the commands that need it; for ``recipe list``/``show`` only if
  the recipe's task schema turns out to need it, via `QuietTensorFlowFinder`).
  ``--verbose`` or ``KERASRNN_VERBOSE=1`` shows them again.
- A `kerasrnn.errors.KerasRNNError` (bad user input) becomes ``Error: <message>``
  and exit status 1, here and nowhere else; so does an operating-system error
  the user can fix (disk full, file size limit, permission denied, read-only
  file system).
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import os
import sys

import click

from kerasrnn.native_logs import native_stderr_silenced

from kerasrnn.commands.lazy import LazyGroup
from kerasrnn.errors import KerasRNNError

# name -> ("module:attribute" of a click command or group, its one-line help).
COMMANDS = {
    "recipe": ("kerasrnn.commands.recipe:recipe", "Declarative training recipes (TOML files in recipes/)."),
    "data": ("kerasrnn.commands.data:data", "Prepare and inspect the data that recipes read."),
    "generate": ("kerasrnn.commands.generate:generate", "Generate text from a generation run directory."),
    "classify": ("kerasrnn.commands.classify:classify", "Classify sentences with a classification run."),
    "forecast": ("kerasrnn.commands.forecast:forecast", "Forecast with a forecasting run directory."),
    "export": ("kerasrnn.commands.export:export", "Export a run to .keras, SavedModel or TFLite/LiteRT."),
    "verify": ("kerasrnn.commands.verify:verify_command", "Prove our layers equal the built-in Keras (and PyTorch) ones."),
    "bench": ("kerasrnn.commands.bench:bench", "Benchmarks: layers, claims, export, forecast, scale."),
}

# Command paths that never need TensorFlow (answered in well under a second).
LIGHT_COMMANDS = {("recipe", "list"), ("recipe", "show"), ("recipe",), ()}
HELP_FLAGS = {"--help", "-h", "--version"}
VERBOSE_ENV = "KERASRNN_VERBOSE"
# TensorFlow's C++ log level when not verbose: "3" hides its ERROR lines too, such as the harmless
# "oneDNN supports DT_BOOL only on platforms with AVX-512" that every masked classifier run printed
# (real failures still raise Python exceptions).
QUIET_TF_CPP_LEVEL = "3"

# errno -> what the user can do about it.
OS_ERROR_FIXES = {
    errno.ENOSPC: "no space left on the device; free some space and run again",
    errno.EDQUOT: "disk quota exceeded; free some space and run again",
    errno.EFBIG: "file too large for this system's file size limit (ulimit -f); raise the limit and run again",
    errno.EACCES: "permission denied; choose a folder you can write to",
    errno.EPERM: "operation not permitted; choose a folder you can write to",
    errno.EROFS: "read-only file system; choose a writable folder",
}


def verbose_requested(verbose_flag: bool = False) -> bool:
    """True when TensorFlow's own log lines should reach the terminal."""
    return verbose_flag or os.environ.get(VERBOSE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def import_tensorflow_quietly() -> None:
    """Import TensorFlow and discover its devices with their log lines silenced (no-op if imported or absent)."""
    if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is None:
        return
    try:
        with native_stderr_silenced():
            import tensorflow  # deliberately lazy: only commands that need it pay for it

            tensorflow.config.list_physical_devices()  # device discovery logs "failed call to cuInit" once
    except Exception:  # a broken install: let the command's own import report it, loudly
        return
    with contextlib.suppress(ImportError):
        import absl.logging  # lazy: heavy import

        absl.logging.set_verbosity(absl.logging.ERROR)


class _QuietLoader:
    """Wraps TensorFlow's loader: its module body and device discovery run with native stderr silenced."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with native_stderr_silenced():
            self.loader.exec_module(module)
            with contextlib.suppress(Exception):
                module.config.list_physical_devices()
        with contextlib.suppress(ImportError):
            import absl.logging  # lazy: heavy import

            absl.logging.set_verbosity(absl.logging.ERROR)

    def __getattr__(self, name):  # get_resource_reader, is_package... of the real loader
        return getattr(self.loader, name)


class QuietTensorFlowFinder:
    """A `sys.meta_path` finder: whenever TensorFlow is first imported, import it quietly.

    For the commands that normally never need TensorFlow (``recipe show`` of a
    recipe whose task schema lives in a TensorFlow module does): the import happens
    only if something asks for it, and then prints nothing.
    """

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        self.uninstall()
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec

    def install(self) -> "QuietTensorFlowFinder":
        if "tensorflow" not in sys.modules and self not in sys.meta_path:
            sys.meta_path.insert(0, self)
        return self

    def uninstall(self) -> None:
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)


def describe_os_error(e: OSError) -> str | None:
    """One line for an OS error the user can fix, or None for anything else."""
    fix = OS_ERROR_FIXES.get(e.errno)
    if fix is None:
        return None
    where = f" ({e.filename})" if e.filename else ""
    return f"{os.strerror(e.errno)}{where}: {fix}"


def _command_path(ctx: click.Context) -> tuple[str, ...]:
    args = list(getattr(ctx, "_protected_args", None) or ctx.protected_args) + list(ctx.args)
    if any(a in HELP_FLAGS for a in args):
        return ()
    return tuple(a for a in args if not a.startswith("-"))[:2]


class KerasRNNGroup(LazyGroup):
    """The root group: quiet TensorFlow start-up and the one place errors become ``Error:`` lines."""

    def invoke(self, ctx):
        verbose = verbose_requested(ctx.meta.get("kerasrnn.verbose", False))
        finder = QuietTensorFlowFinder()
        if not verbose:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_TF_CPP_LEVEL)
            if _command_path(ctx) in LIGHT_COMMANDS:
                finder.install()  # TensorFlow only if the command turns out to need it, and quietly
            else:
                import_tensorflow_quietly()
        try:
            return super().invoke(ctx)
        except KerasRNNError as e:
            raise click.ClickException(e.cli_message or e.message) from None
        except OSError as e:
            message = describe_os_error(e)
            if message is None:
                raise
            raise click.ClickException(message) from None
        finally:
            finder.uninstall()


def _remember_verbose(ctx, param, value):
    ctx.meta["kerasrnn.verbose"] = bool(value)
    return value


@click.group(cls=KerasRNNGroup, lazy_commands=COMMANDS)
@click.version_option(package_name="kerasrnn")
@click.option("--verbose", is_flag=True, is_eager=True, expose_value=False, callback=_remember_verbose,
              help=f"Show TensorFlow's own log lines (also: {VERBOSE_ENV}=1).")
def main():
    """kerasrnn: verified Keras 3 RNN/LSTM/GRU layers, recipes and export."""


if __name__ == "__main__":
    main()
