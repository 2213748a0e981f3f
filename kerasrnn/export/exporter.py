"""`export_run`: one run directory -> one parity-gated, atomically written export directory.

``saved_models/<run>/export/<format>[-<quantize>][-folded]/`` is built in a temporary
sibling (`kerasrnn.atomic.atomic_dir`); the artifact is loaded back from there
with the runner an app would use and compared with the Keras model on the
run's ``samples.npz``; only if the task's gate passes is ``manifest.json``
written and the directory renamed into place. A failed gate, a conversion
error or an interrupt (even ``kill -9``) publishes nothing.

Everything task-specific lives in one export module per task, found through
`TASK_EXPORTS`. A task export module provides:

- ``side_files(run, samples, directory) -> dict``: write vocabulary/labels/
  scaler files, return manifest fields;
- ``keras_parity(run, loaded_model, samples) -> metrics`` (the ``.keras`` reload);
- ``savedmodel(run) -> (endpoints, tracked objects, manifest fields)``;
- ``savedmodel_checks(run, samples, loaded) -> dict`` (optional): extra
  ``bool`` checks, each must be True;
- ``tflite(run, samples, **options) -> (concrete function, representative data or None, info)``,
  and ``TFLITE_OPTIONS`` (optional): the names of the keyword options it takes
  (classification: ``fold_embedding``);
- ``open_runner(fmt, model, manifest, directory)``: the app-side runner;
- ``parity(run, runner, samples) -> metrics`` and ``GATES`` (per precision,
  ``{metric: (">=" | "<=", bound)}``, judged by `kerasrnn.export.parity.judge`).

Adding a task = one such module + one line in `TASK_EXPORTS`.

>>> path, manifest = export_run("saved_models/shakespeare-char", "tflite", "int8")  # doctest: +SKIP
>>> manifest["parity"]["passed"]  # doctest: +SKIP
True
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np

from kerasrnn import atomic
from kerasrnn.errors import UserError
from kerasrnn.export import FORMATS, QUANTIZE, classification, forecasting, generation
from kerasrnn.export import manifest as manifest_mod
from kerasrnn.export import parity
from kerasrnn.export import savedmodel as savedmodel_mod
from kerasrnn.export import tflite as tflite_mod
from kerasrnn.rundir import load_run

MODEL_FILES = {"keras": "model.keras", "tflite": "model.tflite", "savedmodel": "saved_model.pb"}

TASK_EXPORTS = {
    "generation": generation,
    "classification": classification,
    "forecasting": forecasting,
}


def export_dir(run_path: Path, fmt: str, quantize: str = "none", fold_embedding: bool = False) -> Path:
    """``<run>/export/<format>[-<quantize>][-folded]``."""
    name = (fmt if quantize == "none" else f"{fmt}-{quantize}") + ("-folded" if fold_embedding else "")
    return Path(run_path) / "export" / name


def check_args(fmt: str, quantize: str, fold_embedding: bool = False) -> None:
    """`UserError` naming the keyword argument (``fmt``, ``quantize``, ``fold_embedding``) for a bad combination."""
    if fmt not in FORMATS:
        raise UserError(f"fmt must be one of {', '.join(FORMATS)}, got {fmt!r}",
                        cli_message=f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if quantize not in QUANTIZE:
        raise UserError(f"quantize must be one of {', '.join(QUANTIZE)}, got {quantize!r}",
                        cli_message=f"--quantize must be one of {', '.join(QUANTIZE)}, got {quantize!r}")
    if quantize != "none" and fmt != "tflite":
        raise UserError(f"quantize={quantize!r} applies to fmt='tflite' only, got fmt={fmt!r}; "
                        "use quantize='none' or fmt='tflite'",
                        cli_message=f"--quantize {quantize} applies to --format tflite only, got --format {fmt}; "
                                    "drop --quantize or use --format tflite")
    if fold_embedding and fmt != "tflite":
        raise UserError(f"fold_embedding applies to fmt='tflite' only, got fmt={fmt!r}",
                        cli_message=f"--fold-embedding applies to --format tflite only, got --format {fmt}; "
                                    "drop --fold-embedding or use --format tflite")


def task_module(task):
    """The export module of `task` (`UserError` for a task without one)."""
    if task not in TASK_EXPORTS:
        raise UserError(f"cannot export a {task!r} run; export supports {', '.join(TASK_EXPORTS)} runs")
    return TASK_EXPORTS[task]


def tflite_options(task: str, fold_embedding: bool = False) -> dict:
    """The keyword options for `task`'s ``tflite(run, samples, **options)``: only those that are set.

    Raises:
        UserError: the task's export module does not take an option that is set.
    """
    options = {"fold_embedding": True} if fold_embedding else {}
    for name in options:
        if name not in getattr(task_module(task), "TFLITE_OPTIONS", ()):
            takers = " or ".join(t for t, m in TASK_EXPORTS.items() if name in getattr(m, "TFLITE_OPTIONS", ()))
            flag = "--" + name.replace("_", "-")
            raise UserError(f"{name} applies to {takers} runs, not to this {task} run",
                            cli_message=f"{flag} applies to {takers} runs, not to this {task} run; drop {flag}")
    return options


def load_run_samples(run_dir):

    run = load_run(run_dir)
    task_module(run.info.get("task"))
    samples_path = Path(run.path) / "samples.npz"
    if not samples_path.is_file():
        raise UserError(f"{run.path} has no samples.npz, needed for the parity check; re-run its recipe")
    try:
        with np.load(samples_path) as npz:
            samples = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as e:
        raise UserError(f"{samples_path} is unreadable ({e}); re-run the recipe to recreate it") from None
    return run, samples


def run_identity(run) -> dict:
    """The run's name and a content hash of its model and side files (no file-system path)."""
    h = hashlib.sha256()
    for name in ("model.keras", "vocab.json", "labels.json", "scaler.json", "run.json"):
        path = Path(run.path) / name
        if path.is_file():
            h.update(name.encode() + b"\0" + manifest_mod.sha256(path).encode() + b"\0")
    return {"name": run.info.get("name") or Path(run.path).name, "content_sha256": h.hexdigest(),
            "content": "sha256 over the sha256 of model.keras, run.json and the run's vocab/labels/scaler file"}


# ------------------------------------------------------------ per format


def _keras(module, run, samples, tmp: Path) -> dict:
    import keras  # (the run's loader has registered kerasrnn's serializable layers)

    run.model.save(tmp / "model.keras")
    loaded = keras.saving.load_model(tmp / "model.keras", safe_mode=True)
    io = {"inputs": {t.name: _keras_spec(t) for t in loaded.inputs},
          "outputs": {t.name: _keras_spec(t) for t in loaded.outputs}}
    return {"model_file": "model.keras", "load_with": "keras.saving.load_model(path, safe_mode=True) after "
            "importing kerasrnn's layer modules (kerasrnn.layers, kerasrnn.dropout, kerasrnn.pooling, "
            "kerasrnn.tasks.forecast_layers), or kerasrnn.rundir.load_model_file(path)", **io,
            "quantization": {"requested": "none", "mode": "float32"},
            "_metrics": module.keras_parity(run, loaded, samples)}


def _keras_spec(t) -> dict:
    return {"shape": [None if d is None else int(d) for d in t.shape], "dtype": str(t.dtype)}


def _savedmodel(module, run, samples, tmp: Path, fields: dict) -> dict:
    from kerasrnn.layers import keras_loop  # lazy: imports Keras

    with keras_loop(run.model):  # plain TensorFlow loops in the graph, no XLA-compiled functions
        endpoints, track, notes = module.savedmodel(run)
        names = savedmodel_mod.write(tmp / "savedmodel-build", endpoints, track)
    for item in (tmp / "savedmodel-build").iterdir():  # the export directory itself is the SavedModel
        shutil.move(str(item), str(tmp / item.name))
    (tmp / "savedmodel-build").rmdir()
    loaded = savedmodel_mod.load(tmp)
    out = {"model_file": "saved_model.pb", "load_with": "tf.saved_model.load(export_dir) (no kerasrnn needed)",
           "signatures": savedmodel_mod.describe(loaded), "signature_names": names,
           "quantization": {"requested": "none", "mode": "float32"}, **notes}
    metrics = module.parity(run, module.open_runner("savedmodel", loaded, {**fields, **out}, tmp), samples)
    if hasattr(module, "savedmodel_checks"):
        metrics.update(module.savedmodel_checks(run, samples, loaded))
    out["_metrics"] = metrics
    return out


def _tflite(module, run, samples, tmp: Path, quantize: str, fields: dict, options: dict) -> dict:
    concrete, representative, kind = module.tflite(run, samples, **options)
    gates = module.GATES

    def attempt(full_integer):
        content, info = tflite_mod.build(concrete, quantize, representative, full_integer=full_integer)
        (tmp / "model.tflite").write_bytes(content)
        runner = module.open_runner("tflite", tmp / "model.tflite", {**fields, **kind}, tmp)
        return content, info, module.parity(run, runner, samples)

    content, info, metrics = attempt(None)
    if info["quantization"]["mode"] == "int8-full-integer":
        ok, reason = parity.judge(metrics, gates["int8"])
        if not ok:  # full-integer converted but is not accurate enough: fall back to dynamic range
            content, info, metrics = attempt(False)
            info["quantization"]["full_integer"] = f"converted but failed the int8 parity gate ({reason})"
    io = tflite_mod.signature_io(tflite_mod.open_signature(content))
    return {"model_file": "model.tflite", "load_with": "ai_edge_litert.interpreter.Interpreter(model_path)"
            ".get_signature_runner('serving_default')", **kind, "builtins_only": True, **io,
            "size_bytes": len(content), **info, "_metrics": metrics}


# ------------------------------------------------------------------ main


def export_run(run_dir, fmt: str, quantize: str = "none", fold_embedding: bool = False,
               log=print) -> tuple[Path, dict]:
    """Export a run directory; returns ``(export directory, manifest)``.

    Args:
        run_dir: ``saved_models/<run>`` written by ``kerasrnn recipe run``.
        fmt: ``"keras"``, ``"savedmodel"`` or ``"tflite"``.
        quantize: ``"none"`` (default), ``"float16"`` or ``"int8"`` (TFLite only).
        fold_embedding: TFLite classifiers only: one table per direction for the embedding
            and the first recurrent layer's input projection (faster, larger file; see
            `kerasrnn.export.tflite.folded_embedding`); written to ``.../export/tflite[-<quantize>]-folded``.
            Default False.
        log: progress printer (default `print`).

    Raises:
        UserError: bad arguments, not a run, conversion not builtins-only, or a failed
            parity gate (then nothing is written).
    """
    check_args(fmt, quantize, fold_embedding)
    run, samples = load_run_samples(run_dir)
    task = run.info["task"]
    module = task_module(task)
    options = tflite_options(task, fold_embedding)
    target = export_dir(run.path, fmt, quantize, fold_embedding)
    log(f"Exporting {run.path} ({task}) as {fmt}" + (f" ({quantize})" if quantize != "none" else "")
        + (", embedding folded" if fold_embedding else ""))
    with savedmodel_mod.quiet_table_warning(), atomic.atomic_dir(target) as tmp:
        fields = {"format": fmt, "quantize": quantize, "task": task, "run": run_identity(run)}
        fields.update(module.side_files(run, samples, tmp))
        if fmt == "keras":
            fields.update(_keras(module, run, samples, tmp))
        elif fmt == "savedmodel":
            fields.update(_savedmodel(module, run, samples, tmp, fields))
        else:
            fields.update(_tflite(module, run, samples, tmp, quantize, fields, options))
        metrics = fields.pop("_metrics")
        precision = parity.precision_of(fields["quantization"]["mode"])
        gate = module.GATES[precision]
        ok, reason = parity.judge(metrics, gate)
        checks = [k for k, v in metrics.items() if isinstance(v, bool) and not v]
        if checks:
            ok, reason = False, f"{reason}; failed checks: {', '.join(checks)}"
        fields["parity"] = {**metrics, "precision": precision,
                            "gate": {k: list(v) for k, v in gate.items()}, "passed": ok, "summary": reason}
        if not ok:
            raise UserError(f"parity check failed for {fmt}" + (f" ({quantize})" if quantize != "none" else "")
                            + f": {reason}; nothing was written")
        manifest = manifest_mod.write(tmp, fields)
    log(summary(target, manifest))
    return target, manifest


def summary(target: Path, manifest: dict) -> str:
    """Human-readable lines: where, size, parity."""
    p = manifest["parity"]
    size = sum(f["bytes"] for f in manifest["files"].values())
    model = manifest["files"].get(manifest.get("model_file", ""), {}).get("bytes")
    lines = [f"Wrote {target} ({size / 1024:.1f} KiB" + (f"; model file {model / 1024:.1f} KiB" if model else "")
             + f"), quantization: {manifest['quantization']['mode']}"
             + (", embedding folded into the first recurrent layer" if manifest.get("fold_embedding") else ""),
             f"Parity vs Keras on {p['n']} samples ({p['precision']} gate): {p['summary']} -> "
             + ("PASS" if p["passed"] else "FAIL")]
    for key in ("loss", "accuracy", "rmse"):
        if f"{key}_keras" in p:
            lines.append(f"  {key}: keras {p[f'{key}_keras']:.5g}, export {p[f'{key}_export']:.5g} "
                         f"(delta {p[f'{key}_delta']:+.3g})")
    if "argmax_agreement" in p:
        lines.append(f"  argmax agreement {p['argmax_agreement']:.4f}, max abs diff {p['max_abs_diff']:.3g}")
    if manifest["quantization"].get("full_integer"):
        lines.append(f"  full-integer int8: {manifest['quantization']['full_integer']}")
    return "\n".join(lines)
