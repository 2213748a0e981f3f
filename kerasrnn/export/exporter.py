"""`export_run`: one run directory -> one parity-checked, atomically written export directory.

``saved_models/<run>/export/<format>[-<quantize>]/`` is built in a temporary
sibling (`kerasrnn.atomic.atomic_dir`), the artifact is loaded back from there
with the same runner an app would use and compared with the Keras model on the
run's ``samples.npz`` (`kerasrnn.export.parity`); only if the check passes is
``manifest.json`` written and the directory renamed into place. A failed
check, a conversion error or an interrupt leaves no export behind.

>>> path, manifest = export_run("saved_models/shakespeare-char", "tflite", "int8")  # doctest: +SKIP
>>> manifest["parity"]["max_abs_diff"]  # doctest: +SKIP
0.012
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from kerasrnn import atomic
from kerasrnn.errors import UserError
from kerasrnn.export import manifest as manifest_mod
from kerasrnn.export import parity

FORMATS = ("keras", "savedmodel", "tflite")
TASKS = ("generation", "classification", "forecasting")
MODEL_FILES = {"keras": "model.keras", "tflite": "model.tflite", "savedmodel": "saved_model.pb"}


def export_dir(run_path: Path, fmt: str, quantize: str = "none") -> Path:
    """``<run>/export/<format>[-<quantize>]``."""
    return Path(run_path) / "export" / (fmt if quantize == "none" else f"{fmt}-{quantize}")


def _check_args(fmt: str, quantize: str) -> None:
    from kerasrnn.export.tflite import QUANTIZE

    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if quantize not in QUANTIZE:
        raise UserError(f"--quantize must be one of {', '.join(QUANTIZE)}, got {quantize!r}")
    if quantize != "none" and fmt != "tflite":
        raise UserError(f"--quantize {quantize} applies to --format tflite only, got --format {fmt}; "
                        "drop --quantize or use --format tflite")


def _load(run_dir):
    from kerasrnn.rundir import load_run

    run = load_run(run_dir)
    task = run.info.get("task")
    if task not in TASKS:
        raise UserError(f"{run_dir} is a {task!r} run; export supports {', '.join(TASKS)} runs")
    samples_path = Path(run.path) / "samples.npz"
    if not samples_path.is_file():
        raise UserError(f"{run.path} has no samples.npz, needed for the parity check; re-run its recipe")
    with np.load(samples_path) as npz:
        samples = {k: npz[k] for k in npz.files}
    return run, samples


# ------------------------------------------------------------ side files


def _side_files(run, tmp: Path) -> dict:
    """Vocabulary / labels / scaler beside the model; returns manifest fields."""
    task = run.info["task"]
    if task == "generation":
        vocab = {"chars": list(run.vocab["chars"]),
                 "unknown_char_policy": run.vocab.get("unknown_char_policy", "error")}
        (tmp / "vocab.json").write_text(json.dumps(vocab, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return {"vocabulary_file": "vocab.json", "tokenization": {
            "kind": "characters",
            "rule": "one token per Unicode code point; token id = index in vocab.json 'chars'",
            "vocab_size": len(vocab["chars"]),
            "unknown_char_policy": vocab["unknown_char_policy"],
        }, "sampling_defaults": {k: v for k, v in run.info.get("recipe", {}).get("eval", {}).items()
                                 if k in ("seed_text", "temperature")}}
    if task == "classification":
        from kerasrnn.export.tokenizer import RULE, write_vocabulary

        vocabulary = [str(t) for t in run.model.get_layer("vectorizer").get_vocabulary()]
        write_vocabulary(tmp / "vocabulary.txt", vocabulary)
        labels = (run.labels or {}).get("class_names") or [str(i) for i in range(int(run.info["num_classes"]))]
        return {"vocabulary_file": "vocabulary.txt", "class_names": list(labels),
                "tokenization": {**RULE, "max_len": int(run.info["max_len"]), "vocab_size": len(vocabulary),
                                 "padding_id": 0, "oov_id": 1}}
    scaler = dict(run.scaler)
    (tmp / "scaler.json").write_text(json.dumps(scaler, indent=1) + "\n", encoding="utf-8")
    return {"scaler_file": "scaler.json", "scaler": scaler, "window": int(run.info["window"]),
            "scaling": "scaled = (x - min) / (max - min) * (hi - lo) + lo with feature_range [lo, hi]; "
                       "the model reads and predicts scaled values"}


def tokenizer_agreement(run, samples, tmp: Path) -> dict:
    """Fraction of sample texts whose pure-Python ids equal the TextVectorization ids."""
    from kerasrnn.export.tokenizer import Tokenizer

    tok = Tokenizer.from_file(tmp / "vocabulary.txt", int(run.info["max_len"]))
    texts = np.asarray(samples["text"]).astype(str).tolist()
    ref = np.asarray(run.model.get_layer("vectorizer")(texts))
    mine = np.array(tok.encode_batch(texts), dtype=ref.dtype).reshape(ref.shape)
    same = (mine == ref).all(axis=1)
    return {"n": len(texts), "agreement": float(same.mean()),
            "first_mismatch": None if same.all() else texts[int(np.argmin(same))][:200]}


# ------------------------------------------------------------ per format


def _measure(run, samples, artifact) -> dict:
    task = run.info["task"]
    if task == "generation":
        return parity.generation(run.model, artifact, samples)
    if task == "classification":
        return parity.classification(run.model, artifact, samples)
    return parity.forecasting(run.model, artifact, samples)


def _keras(run, samples, tmp: Path) -> dict:
    import keras

    import kerasrnn.dropout  # noqa: F401  (registers PhiloxDropout)
    import kerasrnn.layers  # noqa: F401  (registers the serializable layers)

    run.model.save(tmp / "model.keras")
    loaded = keras.saving.load_model(tmp / "model.keras", safe_mode=True)
    task = run.info["task"]
    if task == "generation":
        metrics = parity.whole_sequence(run.model, loaded, samples)
    elif task == "classification":
        metrics = parity.classification(run.model, lambda t: loaded(np.asarray(t)), samples)
    else:
        metrics = parity.forecasting(run.model, lambda w: loaded(w), samples)
    io = {"inputs": {t.name: _keras_spec(t) for t in loaded.inputs},
          "outputs": {t.name: _keras_spec(t) for t in loaded.outputs}}
    return {"model_file": "model.keras", "load_with": "keras.saving.load_model(path, safe_mode=True) after "
            "`import kerasrnn.layers, kerasrnn.dropout` (registers the recurrent and dropout layers)", **io,
            "quantization": {"requested": "none", "mode": "float32"}, "_metrics": metrics}


def _keras_spec(t) -> dict:
    return {"shape": [None if d is None else int(d) for d in t.shape], "dtype": str(t.dtype)}


def _savedmodel(run, samples, tmp: Path) -> dict:
    from kerasrnn.export import savedmodel
    from kerasrnn.export.runners import Classifier, Forecaster, SavedModelStep

    sm_dir = tmp / "savedmodel-build"
    names = savedmodel.write(run, sm_dir)
    for item in sm_dir.iterdir():  # the export directory itself is the SavedModel
        shutil.move(str(item), str(tmp / item.name))
    sm_dir.rmdir()
    task = run.info["task"]
    fields = {"model_file": "saved_model.pb", "load_with": "tf.saved_model.load(export_dir) (no kerasrnn needed)",
              "signatures": savedmodel.describe(tmp), "signature_names": names,
              "quantization": {"requested": "none", "mode": "float32"}}
    if task == "generation":
        fields["notes"] = ("step: start from zero states, feed one token per call, pass next_* back as the "
                           "states; generate: seed characters missing from the vocabulary are skipped, "
                           "temperature <= 0 is greedy, draws use tf.random.categorical (unseeded)")
        fields["_metrics"] = _measure(run, samples, SavedModelStep(tmp))
        fields["_metrics"]["generate_greedy_matches_keras"] = _greedy_generate_check(run, samples, tmp)
    elif task == "classification":
        fields["_metrics"] = _measure(run, samples, Classifier("savedmodel", tmp, fields).predict_proba)
    else:
        fields["_metrics"] = _measure(run, samples, Forecaster("savedmodel", tmp, fields).predict)
    return fields


def _greedy_generate_check(run, samples, directory: Path) -> bool:
    """The SavedModel ``generate`` signature (greedy) gives the Keras step model's greedy text."""
    import tensorflow as tf

    from kerasrnn.export.runners import KerasStep, StepSampler
    from kerasrnn.sampling import decode

    chars = list(run.vocab["chars"])
    seed = decode(samples["x"][0][:8], chars)
    keras_text = StepSampler(KerasStep(run.model), chars).generate(seed, length=16, temperature=0.0)[0]
    loaded = tf.saved_model.load(str(directory))
    sm_text = loaded.signatures["generate"](seed=tf.constant(seed), length=tf.constant(16),
                                            temperature=tf.constant(0.0))["text"].numpy().decode("utf-8")
    return sm_text == keras_text


def _tflite(run, samples, tmp: Path, quantize: str, side: dict) -> dict:
    from kerasrnn.export import tflite
    from kerasrnn.export.runners import Classifier, Forecaster, TFLiteStep

    task = run.info["task"]

    def attempt(full_integer):
        content, info = tflite.build(run, quantize, full_integer=full_integer)
        (tmp / "model.tflite").write_bytes(content)
        if task == "generation":
            metrics = _measure(run, samples, TFLiteStep(tmp / "model.tflite"))
        elif task == "classification":
            metrics = _measure(run, samples, Classifier("tflite", tmp / "model.tflite", side).predict_proba)
        else:
            metrics = _measure(run, samples, Forecaster("tflite", tmp / "model.tflite", side).predict)
        return content, info, metrics

    content, info, metrics = attempt(None)
    mode = info["quantization"]["mode"]
    if mode == "int8-full-integer":
        ok, reason, _ = parity.judge(metrics, "int8")
        if not ok:  # full-integer converted but is not accurate enough: fall back to dynamic range
            content, info, metrics = attempt(False)
            info["quantization"]["full_integer"] = f"converted but failed the int8 parity gate ({reason})"
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=content).get_signature_runner("serving_default")
    return {"model_file": "model.tflite", "load_with": "ai_edge_litert.interpreter.Interpreter(model_path)"
            ".get_signature_runner('serving_default')", "batch_size": 1, "builtins_only": True,
            "inputs": {k: _tfl_spec(v) for k, v in sorted(runner.get_input_details().items())},
            "outputs": {k: _tfl_spec(v) for k, v in sorted(runner.get_output_details().items())},
            "size_bytes": len(content), **info, "_metrics": metrics}


def _tfl_spec(d) -> dict:
    return {"shape": [int(s) for s in d["shape"]], "dtype": np.dtype(d["dtype"]).name}


# ------------------------------------------------------------------ main


def export_run(run_dir, fmt: str, quantize: str = "none", log=print) -> tuple[Path, dict]:
    """Export a run directory; returns ``(export directory, manifest)``.

    Args:
        run_dir: ``saved_models/<run>`` written by ``kerasrnn recipe run``.
        fmt: ``"keras"``, ``"savedmodel"`` or ``"tflite"``.
        quantize: ``"none"`` (default), ``"float16"`` or ``"int8"`` (TFLite only).
        log: progress printer (default `print`).

    Raises:
        UserError: bad arguments, not a run, conversion not builtins-only, or a failed
            parity check (then nothing is written).
    """
    _check_args(fmt, quantize)
    run, samples = _load(run_dir)
    target = export_dir(run.path, fmt, quantize)
    log(f"Exporting {run.path} ({run.info['task']}) as {fmt}" + (f" ({quantize})" if quantize != "none" else ""))
    with atomic.atomic_dir(target) as tmp:
        fields = {"format": fmt, "quantize": quantize, "task": run.info["task"],
                  "run": {"name": run.info.get("name"), "path": str(Path(run.path).resolve())}}
        fields.update(_side_files(run, tmp))
        if run.info["task"] == "classification":
            fields["tokenizer_check"] = tokenizer_agreement(run, samples, tmp)
            if fields["tokenizer_check"]["agreement"] < 1.0:
                raise UserError(f"the exported vocabulary and rule do not reproduce the model's tokenisation "
                                f"(e.g. {fields['tokenizer_check']['first_mismatch']!r}); nothing was written; "
                                "report this with the run directory")
        if fmt == "keras":
            fields.update(_keras(run, samples, tmp))
        elif fmt == "savedmodel":
            fields.update(_savedmodel(run, samples, tmp))
        else:
            fields.update(_tflite(run, samples, tmp, quantize, fields))
        metrics = fields.pop("_metrics")
        precision = parity.precision_of(fields["quantization"]["mode"])
        ok, reason, tol = parity.judge(metrics, precision)
        if metrics.get("generate_greedy_matches_keras") is False:
            ok, reason = False, reason + "; greedy `generate` text differs from the Keras sampler"
        fields["parity"] = {**metrics, "precision": precision, "tolerance": tol, "passed": ok, "summary": reason}
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
             + f"), quantization: {manifest['quantization']['mode']}",
             f"Parity vs Keras on {p['n']} samples: {p['summary']} -> {'PASS' if p['passed'] else 'FAIL'}"]
    for key in ("loss", "accuracy", "mse"):
        if f"{key}_keras" in p:
            lines.append(f"  {key}: keras {p[f'{key}_keras']:.5g}, export {p[f'{key}_export']:.5g} "
                         f"(delta {p[f'{key}_delta']:+.3g})")
    if "argmax_agreement" in p:
        lines.append(f"  argmax agreement {p['argmax_agreement']:.4f}, max abs diff {p['max_abs_diff']:.3g}")
    if manifest["quantization"].get("full_integer"):
        lines.append(f"  full-integer int8: {manifest['quantization']['full_integer']}")
    return "\n".join(lines)
