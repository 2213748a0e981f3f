"""The export matrix: every shipped task × every format × every quantization, end to end.

For each task of the shipped recipes a tiny model is trained with the real
recipe (`kerasrnn recipe run`, tiny settings, one shared run per module):
generation with LSTM (2 layers), GRU and SimpleRNN (``text-char``),
classification binary and multi-class (``csv-sentiment``), forecasting
(``sine-forecast`` next-value, and a direct multi-horizon head). Each run is
exported to keras, savedmodel and tflite × {none, float16, int8} (the classifiers
also to tflite × {none, int8} with ``--fold-embedding``); every export
must pass its gate, and each artifact is then run by the CLI runner a user
would call (``generate/classify/forecast --tflite/--savedmodel``) and must give
the Keras model's answer within the gate's precision.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from click.testing import CliRunner

from kerasrnn.cli import main

QUANTIZED = (("tflite", "none"), ("tflite", "float16"), ("tflite", "int8"))
FORMATS = (("keras", "none"), ("savedmodel", "none"), *QUANTIZED)
TINY_TRAIN = ["train.epochs=1", "train.batch_size=16", "train.jit_compile=false", "train.verbose=0"]
WORDS = ("the cat sat on a mat and the dog ran to the red door while a bird sang in the tall tree "
         "def main(): return x + 1 if y else z  # comment\n").split(" ")


def _invoke(args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output[-3000:]
    return result.output


def _recipe(runs, name, recipe, sets):
    _invoke(["recipe", "run", recipe, "--runs-dir", runs, "--set", f"run.name={name}",
             *sum((["--set", s] for s in [*TINY_TRAIN, *sets]), [])])
    return runs / name


class _TFLog(logging.Handler):
    """What TensorFlow's logger lets through (its filters run first) — what a user's terminal shows."""

    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _export_all(run_dir):
    manifests = {}
    tf_log = _TFLog()
    logging.getLogger("tensorflow").addHandler(tf_log)
    try:
        for fmt, q in FORMATS:
            out = _invoke(["export", run_dir, "--format", fmt, "--quantize", q])
            assert "PASS" in out, out
    finally:
        logging.getLogger("tensorflow").removeHandler(tf_log)
    assert not [m for m in tf_log.messages if "table_initializer" in m], tf_log.messages
    for fmt, q in FORMATS:
        path = run_dir / "export" / (fmt if q == "none" else f"{fmt}-{q}")
        manifests[(fmt, q)] = json.loads((path / "manifest.json").read_text())
    for manifest in manifests.values():
        assert manifest["parity"]["passed"]
        assert "path" not in manifest["run"] and manifest["run"]["name"] == run_dir.name
        assert len(manifest["run"]["content_sha256"]) == 64
        assert str(run_dir.parent) not in json.dumps(manifest)  # no machine path anywhere
    return manifests


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("matrix")


@pytest.fixture(scope="module")
def text_file(runs):
    rng = np.random.default_rng(0)
    path = runs / "corpus.txt"
    path.write_text(" ".join(rng.choice(WORDS, size=1500)), encoding="utf-8")
    return path


# ------------------------------------------------------------------ generation


@pytest.mark.parametrize("cell,layers", [("lstm", 2), ("gru", 1), ("simple_rnn", 1)])
def test_generation_matrix(runs, text_file, cell, layers):
    run_dir = _recipe(runs, f"gen-{cell}", "text-char", [
        f"data.paths={text_file}", "data.seq_len=24", "data.val_fraction=0.2", f"model.cell={cell}", "model.units=24",
        f"model.num_layers={layers}", "model.embedding_dim=8", "eval.sample_length=8", "eval.top_k=1",
        "train.epochs=2", "train.learning_rate=0.01"])
    manifests = _export_all(run_dir)
    for q in ("float16", "int8"):
        p = manifests[("tflite", q)]["parity"]
        assert p["precision"] == q and "loss_delta" in p and "argmax_agreement" in p
    # every artifact runner gives the Keras sampler's text for the same seed and options
    opts = ["--seed-text", "the ", "--length", "20", "--temperature", "0", "--seed", "3"]
    keras_text = _invoke(["generate", run_dir, *opts])[:-1]
    for flag, path in (("--tflite", "tflite/model.tflite"), ("--savedmodel", "savedmodel")):
        text = _invoke(["generate", flag, run_dir / "export" / path, *opts])[:-1]
        assert text == keras_text  # greedy: float32 artifacts agree exactly
    for q in ("float16", "int8"):
        text = _invoke(["generate", "--tflite", run_dir / "export" / f"tflite-{q}" / "model.tflite", *opts])[:-1]
        same = np.mean([a == b for a, b in zip(text, keras_text)])
        assert text.startswith("the ") and len(text) == len(keras_text) == 24 and same >= 0.5, (text, keras_text)
    # options left out come from the recipe's [eval], as in the run's own sample: its top_k = 1 makes a
    # temperature-1 draw greedy, for the Keras model and for the artifacts (their manifest's sampling_defaults)
    warm = ["--seed-text", "the ", "--length", "20", "--temperature", "1", "--seed", "3"]
    for source in ([run_dir], ["--tflite", run_dir / "export" / "tflite" / "model.tflite"]):
        assert _invoke(["generate", *source, *warm])[:-1] == keras_text
        # and --length left out is the recipe's eval.sample_length (8)
        assert _invoke(["generate", *source, "--seed-text", "the ", "--temperature", "0"])[:-1] == keras_text[:4 + 8]
    assert _invoke(["generate", run_dir, *warm, "--top-k", "0"])[:-1] != keras_text  # a flag overrides the recipe
    # sampled (temperature 0.8, top-k 5, seed 7): the LiteRT and SavedModel runners draw the same text
    opts = ["--seed-text", "the ", "--length", "30", "--temperature", "0.8", "--top-k", "5", "--seed", "7",
            "--num-samples", "2"]
    sampled = [_invoke(["generate", flag, run_dir / "export" / path, *opts])
               for flag, path in (("--tflite", "tflite/model.tflite"), ("--savedmodel", "savedmodel"))]
    assert sampled[0] == sampled[1] and sampled[0].count("the ") >= 2


# ------------------------------------------------------------------ classification


def _csv(path, labels, n=160, seed=0):
    rng = np.random.default_rng(seed)
    cue = {lab: f"{lab}word{lab}" for lab in labels}
    lines = ["text,label"]
    for i in range(n):
        lab = labels[i % len(labels)]
        words = list(rng.choice(WORDS[:20], size=6)) + [cue[lab]] * 2
        rng.shuffle(words)
        lines.append(f"{' '.join(words)},{lab}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("labels", [("neg", "pos"), ("a", "b", "c")], ids=["binary", "multiclass"])
def test_classification_matrix(runs, labels):
    data = _csv(runs / f"clf-{len(labels)}.csv", labels)
    run_dir = _recipe(runs, f"clf-{len(labels)}", "csv-sentiment", [
        f"data.path={data}", "model.max_len=12", "model.max_tokens=200", "model.embedding_dim=8",
        "model.units=8", "eval.baseline=false", "train.epochs=4", "train.learning_rate=0.01"])
    manifests = _export_all(run_dir)
    assert manifests[("tflite", "none")]["inputs"]["token_ids"]["shape"] == [None, None]
    assert manifests[("tflite", "none")]["class_names"] == sorted(labels)
    for q in ("none", "int8"):  # the throughput layout (`--fold-embedding`), beside the default artifacts
        assert "PASS" in _invoke(["export", run_dir, "--format", "tflite", "--quantize", q, "--fold-embedding"])
    sentences = run_dir.parent / f"sentences-{len(labels)}.txt"
    texts = [f"the {lab}word{lab} sat on a mat" for lab in labels] * 12  # 36 lines: more than one batch
    sentences.write_text("\n".join(texts) + "\n", encoding="utf-8")
    keras_out = _invoke(["classify", run_dir, "--file", sentences, "--batch-size", "8"]).strip().split("\n")
    for path in ("tflite/model.tflite", "savedmodel", "tflite-float16/model.tflite", "tflite-int8/model.tflite",
                 "tflite-folded/model.tflite", "tflite-int8-folded/model.tflite"):
        flag = "--savedmodel" if path == "savedmodel" else "--tflite"
        out = _invoke(["classify", flag, run_dir / "export" / path, "--file", sentences, "--batch-size", "8"])
        out = out.strip().split("\n")
        assert len(out) == len(texts)
        labels_k = [line.split("\t")[0] for line in keras_out]
        agree = np.mean([line.split("\t")[0] == k for line, k in zip(out, labels_k)])
        probs = np.array([float(line.split("\t")[1]) for line in out])
        probs_k = np.array([float(line.split("\t")[1]) for line in keras_out])
        if "int8" in path:
            assert agree >= 0.95
        else:
            assert agree == 1.0 and np.abs(probs - probs_k).max() <= (0.011 if "float16" in path else 1e-3)


# ------------------------------------------------------------------ forecasting


@pytest.mark.parametrize("head", ["next", "direct"])
def test_forecasting_matrix(runs, head):
    run_dir = _recipe(runs, f"fc-{head}", "sine-forecast", [
        "data.n=300", "data.window=12", "model.units=8", "model.num_layers=1", f"model.head={head}",
        "eval.horizon=6", "train.epochs=2"])
    manifests = _export_all(run_dir)
    h = 6 if head == "direct" else 1
    assert manifests[("tflite", "none")]["inputs"]["window"]["shape"] == [None, 12, 1]
    assert manifests[("tflite", "none")]["outputs"]["forecast"]["shape"] == [None, h]
    assert "rmse_delta" in manifests[("tflite", "int8")]["parity"]

    def values(out):
        return np.array([float(line.split("\t")[-1]) for line in out.strip().split("\n") if line.startswith("t+")])

    steps = ["--steps", "6"]
    keras_values = values(_invoke(["forecast", run_dir, *steps, "--plot", run_dir / "k.png"]))
    assert len(keras_values) == 6
    scale = manifests[("tflite", "none")]["parity"]["scale"]
    for flag, path, tol in (("--tflite", "tflite/model.tflite", 1e-4), ("--savedmodel", "savedmodel", 1e-4),
                            ("--tflite", "tflite-float16/model.tflite", 0.05),
                            ("--tflite", "tflite-int8/model.tflite", 0.3)):
        got = values(_invoke(["forecast", run_dir, flag, run_dir / "export" / path, *steps,
                              "--plot", run_dir / "a.png"]))
        assert np.abs(got - keras_values).max() <= tol * max(scale, 1.0), (path, got, keras_values)
