"""Round-trip tests of `kerasrnn export` on tiny run directories built here, per the run-dir contract.

The fixture builder below writes ``run.json``, ``model.keras``, ``samples.npz``
and the task's vocab/labels/scaler exactly as ``kerasrnn recipe run`` does,
from tiny models made of `kerasrnn.layers`, so these tests do not depend on the
training code.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from kerasrnn import layers as krl

CHARS = list("abcdefgh \n")
WORDS = ["good", "bad", "Film", "movie", "plot", "ACTING", "great", "awful", "it's", "fine", "dull"]


# ------------------------------------------------------------------ fixture builder


def _write_run(path: Path, task: str, model, samples: dict, extra_files: dict, **task_fields) -> Path:
    path.mkdir(parents=True)
    info = {"task": task, "name": path.name, "kerasrnn_version": "0.1.0", "tensorflow_version": "x",
            "keras_version": keras.__version__, "created": "2026-01-01T00:00:00+00:00",
            "recipe": {"run": {"task": task, "name": path.name}}, **task_fields}
    (path / "run.json").write_text(json.dumps(info))
    model.save(path / "model.keras")
    np.savez(path / "samples.npz", **samples)
    for name, data in extra_files.items():
        (path / name).write_text(json.dumps(data))
    return path


def _perturb(model, rng, scale=0.3):
    """Stand-in for training: move every trainable weight (biases too) off its initial value."""
    for w in model.trainable_weights:
        w.assign(np.asarray(w) + rng.normal(0, scale, size=w.shape).astype("float32"))


def _rnn(cell: str, units: int, return_sequences: bool, name: str, bidirectional: bool = False, **kw):
    if bidirectional:
        return keras.layers.Bidirectional(
            krl.get_layer_class(cell)(units, return_sequences=return_sequences, **kw), name=name)
    return krl.get_layer_class(cell)(units, return_sequences=return_sequences, name=name, **kw)


def make_generation_run(root: Path, cell="lstm", num_layers=1, units=8, seed=0, **kw) -> Path:
    keras.utils.set_random_seed(seed)
    v = len(CHARS)
    tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(v, 6, name="embedding")(tokens)
    for i in range(num_layers):
        if i:
            x = keras.layers.Dropout(0.1)(x)
        x = krl.get_layer_class(cell)(units, return_sequences=True, name=f"rnn_{i}", **kw)(x)
    model = keras.Model(tokens, keras.layers.Dense(v, name="logits")(x))
    rng = np.random.default_rng(seed)
    text = rng.integers(0, v, size=(40, 13)).astype("int32")
    _perturb(model, rng)
    name = f"gen-{cell}-{num_layers}x{units}-{seed}" + "".join(f"-{k}{v}" for k, v in kw.items())
    return _write_run(root / name, "generation", model,
                      {"x": text[:8, :-1], "y": text[:8, 1:]},
                      {"vocab.json": {"chars": CHARS, "unknown_char_policy": "error"}},
                      cell=cell, units=units, num_layers=num_layers)


def make_classification_run(root: Path, cell="gru", bidirectional=True, num_layers=1, max_len=7, seed=0,
                            **kw) -> Path:
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    texts = np.array([" ".join(rng.choice(WORDS, size=rng.integers(1, 10))) + rng.choice(["", "!", ", ok."])
                      for _ in range(48)])
    labels = np.array([int("good" in t or "great" in t) for t in texts], "int32")
    vec = keras.layers.TextVectorization(name="vectorizer", standardize="lower_and_strip_punctuation",
                                         split="whitespace", output_mode="int", output_sequence_length=max_len,
                                         max_tokens=12)
    vec.adapt(texts[:32])
    text_in = keras.Input(shape=(), dtype="string", name="text")
    x = keras.layers.Embedding(len(vec.get_vocabulary()), 6, mask_zero=True, name="embedding")(vec(text_in))
    for i in range(num_layers):
        last = i == num_layers - 1
        x = _rnn(cell, 8, not last, f"rnn_{i}", bidirectional, **kw)(x)
    model = keras.Model(text_in, keras.layers.Dense(2, activation="softmax", name="probs")(x))
    _perturb(model, rng)
    samples = {"text": texts[32:], "y": labels[32:]}
    name = f"clf-{cell}-{'bi' if bidirectional else 'uni'}-{seed}" + "".join(f"-{k}{v}" for k, v in kw.items())
    return _write_run(root / name, "classification", model, samples,
                      {"labels.json": {"class_names": ["neg", "pos"]}}, max_len=max_len, num_classes=2)


def make_forecasting_run(root: Path, cell="simple_rnn", window=6, seed=0) -> Path:
    keras.utils.set_random_seed(seed)
    series = np.sin(np.arange(80) * 0.3).astype("float32")
    x = np.stack([series[i:i + window] for i in range(len(series) - window)])[..., None]
    y = series[window:, None]
    inp = keras.Input(shape=(window, 1), name="window")
    h = krl.get_layer_class(cell)(8, name="rnn_0")(inp)
    model = keras.Model(inp, keras.layers.Dense(1, name="forecast")(h))
    _perturb(model, np.random.default_rng(seed))
    return _write_run(root / f"fc-{cell}", "forecasting", model, {"x": x[-20:], "y": y[-20:]},
                      {"scaler.json": {"kind": "minmax", "min": -3.0, "max": 5.0, "feature_range": [-1, 1]}},
                      window=window, horizon=5)


# ------------------------------------------------------------------ helpers

import subprocess  # noqa: E402
import sys  # noqa: E402

import tensorflow as tf  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from kerasrnn.errors import UserError  # noqa: E402
from kerasrnn.export import builtins_check, manifest as manifest_mod, parity, runners  # noqa: E402
from kerasrnn.export.exporter import export_run  # noqa: E402
from kerasrnn.export.tokenizer import Tokenizer  # noqa: E402
from kerasrnn.rundir import load_run  # noqa: E402
from kerasrnn.sampling import Sampler  # noqa: E402


def _export(run_dir, fmt, quantize="none"):
    return export_run(run_dir, fmt, quantize, log=lambda *_: None)


def _fully_connected_weights(model_content: bytes) -> dict[int, list[list[int]]]:
    """Weight shapes ([out, in]) of every FULLY_CONNECTED, by subgraph (0: main; WHILE conds and bodies after)."""
    from ai_edge_litert import schema_py_generated as schema
    model = schema.Model.GetRootAs(model_content, 0)
    shapes = {}
    for s in range(model.SubgraphsLength()):
        graph = model.Subgraphs(s)
        shapes[s] = []
        for o in range(graph.OperatorsLength()):
            op = graph.Operators(o)
            code = builtins_check.builtin_code(model.OperatorCodes(op.OpcodeIndex()))
            if code == schema.BuiltinOperator.FULLY_CONNECTED:
                shapes[s].append([int(d) for d in graph.Tensors(op.Inputs(1)).ShapeAsNumpy()])
    return shapes


def _loop_operators(model_content: bytes) -> tuple[list[list[str]], list[list[str]]]:
    """``(conds, bodies)``: the builtin operator names of every WHILE's cond and body subgraph, in order."""
    from ai_edge_litert import schema_py_generated as schema
    model = schema.Model.GetRootAs(model_content, 0)

    def ops(s):
        graph = model.Subgraphs(s)
        return [builtins_check.operator_name(model.OperatorCodes(graph.Operators(o).OpcodeIndex()))
                for o in range(graph.OperatorsLength())]

    conds, bodies = [], []
    main = model.Subgraphs(0)
    for o in range(main.OperatorsLength()):
        op = main.Operators(o)
        if builtins_check.builtin_code(model.OperatorCodes(op.OpcodeIndex())) == schema.BuiltinOperator.WHILE:
            options = schema.WhileOptions()
            options.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
            conds.append(ops(options.CondSubgraphIndex()))
            bodies.append(ops(options.BodySubgraphIndex()))
    return conds, bodies


def _no_temp_left(parent: Path):
    return [p.name for p in parent.iterdir() if p.name.startswith((".tmp-", ".old-"))] if parent.exists() else []


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def gen_run(root):
    return make_generation_run(root, "lstm", num_layers=2, units=32, seed=1)


@pytest.fixture(scope="module")
def clf_run(root):
    return make_classification_run(root, "lstm", bidirectional=True, seed=2)


@pytest.fixture(scope="module")
def fc_run(root):
    return make_forecasting_run(root, "gru")


# ------------------------------------------------------------------ TFLite, every cell


@pytest.mark.parametrize("cell,kw", [("simple_rnn", {}), ("lstm", {}), ("gru", {"reset_after": True}),
                                     ("gru", {"reset_after": False})])
def test_generator_step_tflite_builtins_only_every_cell(root, cell, kw):
    run_dir = make_generation_run(root / "cells", cell, num_layers=1, seed=3, **kw)
    path, manifest = _export(run_dir, "tflite")
    content = (path / "model.tflite").read_bytes()
    assert builtins_check.non_builtin_operators(content) == []
    assert "WHILE" not in manifest["operators"]  # the step model has no loop at all
    assert manifest["parity"]["passed"] and manifest["parity"]["max_abs_diff"] <= 1e-4
    state_names = sorted(n for n in manifest["inputs"] if n != "token")
    assert state_names == (["rnn_0_c", "rnn_0_h"] if cell == "lstm" else ["rnn_0_h"])
    assert manifest["inputs"]["token"] == {"shape": [1], "dtype": "int32"}
    assert sorted(manifest["outputs"]) == sorted(["logits"] + ["next_" + n for n in state_names])


@pytest.mark.parametrize("cell,bidirectional,kw", [
    ("simple_rnn", True, {}), ("lstm", False, {}), ("gru", True, {"reset_after": True}),
    ("gru", False, {"reset_after": False})])
def test_classifier_tflite_builtins_only_every_cell_and_direction(root, cell, bidirectional, kw):
    run_dir = make_classification_run(root / "cells", cell, bidirectional=bidirectional, num_layers=2, seed=4, **kw)
    path, manifest = _export(run_dir, "tflite")
    content = (path / "model.tflite").read_bytes()
    ops = builtins_check.check_builtins_only(content)
    assert "WHILE" in ops and not any(op.startswith("CUSTOM") for op in ops)
    # The input projection x·W runs once per sequence, before the loops: every WHILE body's matmuls take
    # h (8 units) only, and the main graph projects the embeddings (width 6) once per layer and direction.
    fc = _fully_connected_weights(content)
    assert [w for s, ws in fc.items() if s for w in ws if w[1] != 8] == []
    assert sum(w[1] == 6 for w in fc[0]) == (2 if bidirectional else 1)
    assert manifest["inputs"] == {"token_ids": {"shape": [None, None], "dtype": "int32"}}  # dynamic batch, length
    assert manifest["parity"]["passed"] and manifest["parity"]["max_abs_diff"] <= 1e-4
    # The loops carry no op that is not the recurrence: the cond is one LESS; a masked step keeps each state
    # with one SELECT_V2 (plus one for the zeroed output of a Bidirectional layer that returns sequences),
    # its keep column comes as (B, 1) from one GATHER (no STRIDED_SLICE per step).
    conds, bodies = _loop_operators(content)
    assert len(bodies) == 2 * (2 if bidirectional else 1)
    assert conds == [["LESS"]] * len(bodies)
    states = 2 if cell == "lstm" else 1
    selects = sorted(body.count("SELECT_V2") for body in bodies)
    assert selects[0] == states and selects[-1] == states + (1 if bidirectional else 0)
    assert not [op for body in bodies for op in body if op == "STRIDED_SLICE"]
    # the app path: raw text -> Python tokeniser -> TFLite, vs the Keras model on raw text
    clf = runners.open_artifact(path / "model.tflite", expect_task="classification")
    texts = ["Good FILM, great plot!", "awful... dull acting", "zzz unknown words only", ""]
    expected = load_run(run_dir).model(tf.constant(texts)).numpy()
    np.testing.assert_allclose(clf.predict_proba(texts), expected, atol=1e-4)


def _gather_tables(model_content: bytes) -> list[list[int]]:
    """Shapes of the constant tables that the main graph's GATHERs read (embedding or folded tables)."""
    from ai_edge_litert import schema_py_generated as schema
    model = schema.Model.GetRootAs(model_content, 0)
    graph = model.Subgraphs(0)
    shapes = []
    for o in range(graph.OperatorsLength()):
        op = graph.Operators(o)
        if builtins_check.builtin_code(model.OperatorCodes(op.OpcodeIndex())) == schema.BuiltinOperator.GATHER:
            params = graph.Tensors(op.Inputs(0))
            if model.Buffers(params.Buffer()).DataLength():  # a constant table, not a runtime tensor
                shapes.append([int(d) for d in params.ShapeAsNumpy()])
    return shapes


@pytest.mark.parametrize("cell,bidirectional,num_layers,kw", [
    ("gru", True, 1, {"reset_after": True}), ("lstm", False, 2, {}), ("simple_rnn", True, 2, {}),
    ("gru", False, 1, {"reset_after": False})])
def test_folded_embedding_classifier_same_answers_without_input_gemm(root, cell, bidirectional, num_layers, kw):
    """`--fold-embedding`: one (vocabulary, gates) table per direction of the first layer replaces the
    embedding lookup and that layer's input FULLY_CONNECTED; same probabilities, same signature."""
    run_dir = make_classification_run(root / "folded", cell, bidirectional=bidirectional, num_layers=num_layers,
                                      seed=6, **kw)
    plain, plain_manifest = _export(run_dir, "tflite")
    path, manifest = export_run(run_dir, "tflite", fold_embedding=True, log=lambda *_: None)
    assert path.name == "tflite-folded" and plain.is_dir()  # beside the default export, not instead of it
    assert manifest["fold_embedding"] is True and plain_manifest["fold_embedding"] is False
    assert manifest["parity"]["passed"] and manifest["parity"]["max_abs_diff"] <= 1e-4
    assert manifest["inputs"] == plain_manifest["inputs"] and manifest["outputs"] == plain_manifest["outputs"]
    content = (path / "model.tflite").read_bytes()
    assert builtins_check.non_builtin_operators(content) == []
    gates = {"lstm": 4, "gru": 3, "simple_rnn": 1}[cell] * 8
    vocabulary = len(load_run(run_dir).model.get_layer("vectorizer").get_vocabulary())
    directions = 2 if bidirectional else 1
    assert sorted(_gather_tables(content)) == [[vocabulary, gates]] * directions  # no (vocabulary, 6) embedding
    assert sorted(_gather_tables(plain.joinpath("model.tflite").read_bytes())) == [[vocabulary, 6]]
    fc = _fully_connected_weights(content)
    assert not any(w[1] == 6 for ws in fc.values() for w in ws)  # nothing multiplies the 6-wide embedding
    if num_layers == 2:  # the second layer still projects its 8- or 16-wide input once, before its loop
        assert fc[0].count([gates, 8 * directions]) == directions
    texts = ["Good FILM, great plot!", "awful... dull acting", "zzz unknown words only", "", "fine"] * 3
    folded = runners.open_artifact(path / "model.tflite", expect_task="classification").predict_proba(texts)
    unfolded = runners.open_artifact(plain / "model.tflite", expect_task="classification").predict_proba(texts)
    np.testing.assert_allclose(folded, unfolded, atol=1e-5)
    np.testing.assert_allclose(folded, load_run(run_dir).model(tf.constant(texts)).numpy(), atol=1e-4)


def test_folded_embedding_quantized_passes_its_gates(clf_run):
    modes = {"none": "float32", "float16": "float16-weights", "int8": "int8-dynamic-range"}
    for q, mode in modes.items():
        path, manifest = export_run(clf_run, "tflite", q, fold_embedding=True, log=lambda *_: None)
        assert path.name == ("tflite" if q == "none" else f"tflite-{q}") + "-folded"
        assert manifest["quantization"]["mode"] == mode and manifest["fold_embedding"] is True
        assert manifest["parity"]["passed"], manifest["parity"]["summary"]


def test_fold_embedding_refused_where_it_does_not_apply(fc_run, clf_run):
    from kerasrnn.cli import main
    from kerasrnn.export import tflite

    with pytest.raises(UserError, match="fold_embedding applies to fmt='tflite' only"):
        export_run(clf_run, "savedmodel", fold_embedding=True, log=lambda *_: None)
    with pytest.raises(UserError, match="fold_embedding applies to classification runs, not to this forecasting"):
        export_run(fc_run, "tflite", fold_embedding=True, log=lambda *_: None)
    assert not (fc_run / "export" / "tflite-folded").exists()
    result = CliRunner().invoke(main, ["export", str(fc_run), "--format", "tflite", "--fold-embedding"])
    assert result.exit_code == 1 and "--fold-embedding applies to classification runs" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = CliRunner().invoke(main, ["export", str(clf_run), "--format", "keras", "--fold-embedding"])
    assert result.exit_code == 1 and "--fold-embedding applies to --format tflite only" in result.output
    # a layer that changes the embedded tokens before the recurrent layer: nothing to fold
    ids = keras.Input((None,), dtype="int32")
    emb = keras.layers.Embedding(10, 4, mask_zero=True)
    dense = keras.layers.Dense(4, name="mixer")
    model = keras.Model(ids, krl.GRU(3)(dense(keras.layers.Dropout(0.5)(emb(ids)))))
    with pytest.raises(UserError, match="layer 'mixer' \\(Dense\\) comes first"):
        tflite.first_recurrent_layers(model, emb)
    assert tflite.first_recurrent_layers(keras.Model(ids, krl.GRU(3)(keras.layers.Dropout(0.5)(emb(ids)))), emb)


def test_forecaster_tflite_and_savedmodel(fc_run):
    path, manifest = _export(fc_run, "tflite")
    assert manifest["inputs"] == {"window": {"shape": [None, 6, 1], "dtype": "float32"}}  # dynamic batch
    assert manifest["parity"]["passed"] and manifest["parity"]["max_abs_diff"] <= 1e-4
    assert "rmse_delta" in manifest["parity"]
    sm_path, sm_manifest = _export(fc_run, "savedmodel")
    loaded = tf.saved_model.load(str(sm_path))
    assert {"serving_default", "forecast", "forecast_raw"} <= set(loaded.signatures)
    run = load_run(fc_run)
    scaled = np.load(fc_run / "samples.npz")["x"][:3]
    lo, hi = run.scaler["min"], run.scaler["max"]
    raw = (scaled + 1) / 2 * (hi - lo) + lo
    got_raw = loaded.signatures["forecast_raw"](window=tf.constant(raw, tf.float32))["forecast"].numpy()
    want = run.model(scaled).numpy()
    np.testing.assert_allclose((got_raw - lo) / (hi - lo) * 2 - 1, want, atol=1e-4)


# ------------------------------------------------------------------ SavedModel and .keras


def test_savedmodel_signatures_and_plain_tf_load(gen_run, clf_run):
    gen_path, gen_manifest = _export(gen_run, "savedmodel")
    clf_path, clf_manifest = _export(clf_run, "savedmodel")
    assert {"step", "generate", "serving_default"} <= set(gen_manifest["signatures"])
    assert gen_manifest["parity"]["generate_matches_keras"] is True
    assert gen_manifest["parity"]["max_abs_diff"] <= 1e-4
    assert clf_manifest["signatures"]["classify"]["inputs"] == {"text": {"shape": [None], "dtype": "string"}}
    assert clf_manifest["parity"]["max_abs_diff"] <= 1e-4
    # a fresh interpreter with TensorFlow only: no kerasrnn, no keras import needed
    code = f"""
import sys, tensorflow as tf
g = tf.saved_model.load({str(gen_path)!r}); c = tf.saved_model.load({str(clf_path)!r})
out = g.signatures["generate"](seed=tf.constant("abc"), length=tf.constant(12), temperature=tf.constant(0.0))
text = out["text"].numpy().decode()
probs = c.signatures["classify"](text=tf.constant(["a good film", "dull"]))["probs"].numpy()
assert len(text) == 15 and text.startswith("abc"), text
assert probs.shape == (2, 2) and abs(probs.sum() - 2) < 1e-4, probs
assert not any(m.startswith("kerasrnn") for m in sys.modules), "kerasrnn was imported"
print("OK", text)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(gen_path),
                            env={**__import__("os").environ, "PYTHONPATH": ""}, timeout=300)
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-2000:]
    # the SavedModel step signature samples the same text as the Keras step model (same seed)
    sampler = runners.open_artifact(gen_path, expect_task="generation")
    keras_sampler = Sampler(load_run(gen_run).model, CHARS, jit_compile=False)
    opts = dict(length=20, num_samples=2, temperature=0.9, top_k=5, seed=7)
    assert sampler.generate("abc", **opts) == keras_sampler.generate("abc", **opts)


def test_keras_export_loads_in_safe_mode(clf_run):
    path, manifest = _export(clf_run, "keras")
    model = keras.saving.load_model(path / "model.keras", safe_mode=True)
    texts = tf.constant(["good movie", "bad plot!"])
    np.testing.assert_allclose(model(texts).numpy(), load_run(clf_run).model(texts).numpy(), atol=1e-6)
    assert manifest["parity"]["max_abs_diff"] == 0.0
    assert manifest["inputs"]["text"]["dtype"] == "string"


# ------------------------------------------------------------------ quantisation


def test_quantized_generators_load_run_and_shrink(gen_run):
    sizes = {}
    for q in ("none", "float16", "int8"):
        path, manifest = _export(gen_run, "tflite", q)
        assert manifest["parity"]["passed"], manifest["parity"]
        assert builtins_check.non_builtin_operators((path / "model.tflite").read_bytes()) == []
        sizes[q] = manifest["size_bytes"]
        sampler = runners.open_artifact(path / "model.tflite")
        texts = sampler.generate("ab", length=10, num_samples=2, temperature=1.0, top_p=0.9, seed=1)
        assert len(texts) == 2 and all(len(t) == 12 and set(t) <= set(CHARS) for t in texts)
    assert manifest["quantization"]["mode"] in ("int8-full-integer", "int8-dynamic-range")
    assert {"loss_delta", "accuracy_delta", "argmax_agreement"} <= set(manifest["parity"])
    assert sizes["float16"] < sizes["none"] and sizes["int8"] < sizes["float16"]
    # float32 TFLite samples the Keras path's text for the same seed (Sampler without XLA: XLA's RNG differs)
    sampler = runners.open_artifact(gen_run / "export" / "tflite" / "model.tflite")
    model = load_run(gen_run).model
    keras_sampler = Sampler(model, CHARS, jit_compile=False)
    opts = dict(length=25, num_samples=2, temperature=0.8, top_k=6, top_p=0.95, seed=3)
    assert sampler.generate("hea", **opts) == keras_sampler.generate("hea", **opts)


def test_quantized_classifier_reports_deltas(clf_run):
    path, manifest = _export(clf_run, "tflite", "float16")
    p = manifest["parity"]
    assert p["precision"] == "float16" and p["max_abs_diff"] <= 1e-2 and p["passed"]
    assert p["gate"] == {"max_abs_diff": ["<=", 0.01], "argmax_agreement": [">=", 0.99],
                         "accuracy_drop": ["<=", 0.005]}
    assert {"loss_keras", "loss_export", "accuracy_keras", "accuracy_export"} <= set(p)
    clf = runners.open_artifact(path / "model.tflite")
    assert clf.predict_proba(["good"]).shape == (1, 2)


# ------------------------------------------------------------------ vocabulary, manifest, safety


def test_exported_vocabulary_reproduces_textvectorization(clf_run):
    path, manifest = _export(clf_run, "tflite")
    vec = load_run(clf_run).model.get_layer("vectorizer")
    tok = Tokenizer.from_file(path / manifest["vocabulary_file"], manifest["tokenization"]["max_len"])
    assert tok.vocabulary == vec.get_vocabulary() and tok.vocabulary[:2] == ["", "[UNK]"]
    texts = ["Good FILM, great plot!", "it's a (very) GOOD-movie...", "ÉCOLE Film", "tab\tsep\nnew  line",
             "nbsp\u00a0good", "", "!!!", "good " * 20, "ACTING;acting:Acting", "x_y good`s"]
    want = vec(tf.constant(texts)).numpy()
    np.testing.assert_array_equal(np.array(tok.encode_batch(texts)), want)
    np.testing.assert_array_equal(tok.encode_array(texts), want)  # the batch path the runners take
    assert manifest["tokenizer_check"]["agreement"] == 1.0


def test_manifest_hashes_versions_and_files(clf_run):
    path, manifest = _export(clf_run, "tflite")
    assert set(manifest["files"]) == {"model.tflite", "vocabulary.txt"}
    assert manifest_mod.verify(path) == []
    assert {"kerasrnn", "tensorflow", "keras"} <= set(manifest["versions"])
    assert manifest["format"] == "tflite" and manifest["class_names"] == ["neg", "pos"]
    (path / "vocabulary.txt").write_text("tampered\n")
    assert manifest_mod.verify(path) == ["vocabulary.txt"]


def test_failed_parity_writes_nothing(fc_run, monkeypatch):
    from kerasrnn.export import forecasting

    target = fc_run / "export" / "tflite-float16"
    monkeypatch.setitem(forecasting.GATES, "float16", {"max_abs_diff_rel": ("<=", -1.0)})
    with pytest.raises(UserError, match="parity check failed.*nothing was written"):
        _export(fc_run, "tflite", "float16")
    assert not target.exists() and _no_temp_left(target.parent) == []


def test_interrupted_export_leaves_nothing_and_keeps_previous(fc_run, monkeypatch):
    path, first = _export(fc_run, "keras")
    before = (path / "manifest.json").read_text()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("simulated kill while writing the manifest")

    monkeypatch.setattr(manifest_mod, "write", crash)
    with pytest.raises(KeyboardInterrupt):
        _export(fc_run, "keras")
    assert (path / "manifest.json").read_text() == before  # the previous export is untouched
    assert _no_temp_left(path.parent) == []


def test_builtins_check_refuses_flex_ops():
    inp = keras.Input((None, 3), name="x")
    model = keras.Model(inp, krl.LSTM(4)(inp))
    fn = tf.function(lambda x: model(x), input_signature=[tf.TensorSpec((None, None, 3), tf.float32)])
    with krl.keras_loop(model):  # Keras' TensorList loop (the fused loop is an XLA function)
        concrete = fn.get_concrete_function()
    assert model.layers[-1].path_record.last == "loop" and model.layers[-1].fused is None  # restored
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    converter._experimental_lower_tensor_list_ops = False
    content = converter.convert()
    assert any(op.startswith("CUSTOM:Flex") for op in builtins_check.non_builtin_operators(content))
    with pytest.raises(UserError, match="non-builtin operators"):
        builtins_check.check_builtins_only(content)


def test_cli_errors_are_one_line(fc_run, tmp_path):
    from kerasrnn.cli import main

    result = CliRunner().invoke(main, ["export", str(fc_run), "--format", "keras", "--quantize", "int8"])
    assert result.exit_code == 1 and "--quantize int8 applies to --format tflite only" in result.output
    result = CliRunner().invoke(main, ["export", str(tmp_path), "--format", "tflite"])
    assert result.exit_code == 1 and "is not a kerasrnn run directory" in result.output
    result = CliRunner().invoke(main, ["export", str(fc_run), "--format", "tflite"])
    assert result.exit_code == 0, result.output
    assert "Parity vs Keras" in result.output and "PASS" in result.output


def test_generate_and_classify_commands_run_artifacts(gen_run, clf_run):
    from kerasrnn.cli import main

    tfl, _ = _export(gen_run, "tflite")
    sm = gen_run / "export" / "savedmodel"
    if not sm.exists():
        _export(gen_run, "savedmodel")
    outputs = []
    for flag, path in (("--tflite", tfl / "model.tflite"), ("--savedmodel", sm)):
        result = CliRunner().invoke(main, ["generate", flag, str(path), "--seed-text", "abc", "--length", "15",
                                           "--temperature", "0.8", "--top-k", "4", "--seed", "5"])
        assert result.exit_code == 0, result.output
        outputs.append(result.output.strip())
    assert outputs[0] == outputs[1] and outputs[0].startswith("abc") and len(outputs[0]) == 18
    result = CliRunner().invoke(main, ["generate", "--tflite", str(tfl / "model.tflite"), "--seed-text", "xyz"])
    assert result.exit_code == 1 and "not in the model's vocabulary" in result.output
    clf_path, _ = _export(clf_run, "tflite")
    result = CliRunner().invoke(main, ["classify", "--tflite", str(clf_path / "model.tflite"), "good film", "dull"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().split("\n")
    assert len(lines) == 2 and all(line.split("\t")[0] in ("neg", "pos") for line in lines)
    one = CliRunner().invoke(main, ["classify", "--tflite", str(clf_path / "model.tflite"), "--workers", "1",
                                    "--batch-size", "1", "good film", "dull"])
    assert one.exit_code == 0 and one.output == result.output  # workers and batching do not change answers
    result = CliRunner().invoke(main, ["classify", str(clf_run), "--workers", "2", "good"])
    assert result.exit_code == 1 and "--workers applies to --tflite only" in result.output
    result = CliRunner().invoke(main, ["classify", "--tflite", str(tfl / "model.tflite"), "good"])
    assert result.exit_code == 1 and "is a 'generation' export" in result.output


def _bench_export(run_dir, tmp_path, *flags):
    """``kerasrnn bench export RUN_DIR --repeats 1 *flags``: its console output and its JSON."""
    from kerasrnn.cli import main

    out = tmp_path / "bench.json"
    result = CliRunner().invoke(main, ["bench", "export", str(run_dir), "--repeats", "1", *flags,
                                       "--json-out", str(out)])
    assert result.exit_code == 0, result.output
    return result.output, json.loads(out.read_text())


def test_bench_export_reports_sizes_and_latency(fc_run, tmp_path):
    output, data = _bench_export(fc_run, tmp_path, "--calls", "32")
    assert set(data["sizes_bytes"]) == {"float32", "float16-weights", "int8-dynamic-range"}
    assert data["speed"]["tflite_windows_per_s_batch1"] > 0 and data["speed"]["keras_windows_per_s_batch32"] > 0
    assert data["size_ratio"]["float32"] == 1.0 and data["size_ratio"]["float16-weights"] > 0
    by_mode = data["speed_by_quantization"]  # every model built is timed, under the name it was built as
    assert set(by_mode) == set(data["sizes_bytes"])
    assert all(speed[f"tflite_windows_per_s_batch{b}"] > 0 for speed in by_mode.values() for b in (1, 32))
    # the headline LiteRT figures are the float32 model on the app path (`Forecaster`, default interpreters)
    assert data["speed"]["tflite_windows_per_s_batch32"] == by_mode["float32"]["tflite_windows_per_s_batch32"]
    assert data["speed"]["tflite_workers"] >= 1
    assert "int8-dynamic-range" in output


def test_bench_export_generation_times_every_quantized_step_model(gen_run, tmp_path):
    _, data = _bench_export(gen_run, tmp_path, "--calls", "16")
    assert data["speed"]["tflite_us_per_char"] > 0 and data["speed"]["keras_us_per_char"] > 0
    assert set(data["speed_by_quantization"]) == set(data["sizes_bytes"])
    # The step model calibrates full-integer int8; the dynamic-range model export falls back to is timed too.
    assert {"int8-full-integer", "int8-dynamic-range"} <= set(data["sizes_bytes"])
    assert all(v["tflite_us_per_char"] > 0 for v in data["speed_by_quantization"].values())


def test_bench_export_classifier_batch_1_vs_batch_n(clf_run, tmp_path):
    output, data = _bench_export(clf_run, tmp_path, "--calls", "24", "--batch", "8")
    speed = data["speed"]
    for key in ("tflite_sentences_per_s_batch1", "tflite_sentences_per_s_batch8", "keras_sentences_per_s_batch1",
                "keras_sentences_per_s_batch8", "tflite_interpreter_sentences_per_s_batch1",
                "tflite_interpreter_sentences_per_s_batch8"):
        assert speed[key] > 0, key
    assert speed["tflite_batch_speedup"] == pytest.approx(
        speed["tflite_sentences_per_s_batch8"] / speed["tflite_sentences_per_s_batch1"])
    assert speed["tflite_interpreter_batch_speedup"] == pytest.approx(
        speed["tflite_interpreter_sentences_per_s_batch8"] / speed["tflite_interpreter_sentences_per_s_batch1"])
    assert "tflite_batch_speedup" in output
    by_mode = data["speed_by_quantization"]
    assert set(by_mode) == {"float32", "float16-weights", "int8-dynamic-range"}
    for of_mode in by_mode.values():
        assert of_mode["tflite_batch_speedup"] == pytest.approx(
            of_mode["tflite_sentences_per_s_batch8"] / of_mode["tflite_sentences_per_s_batch1"])
    # The arithmetic bound (kerasrnn.bench.batch_bound): a BiLSTM 8 over a 6-wide embedding does
    # 2 directions x (6 + 8) x 4*8 = 896 multiply-adds a token; max_len 7.
    assert 1 <= speed["mean_tokens_per_sentence"] <= 7
    assert speed["recurrent_mflops_per_sentence"] == pytest.approx(2 * 896 * speed["mean_tokens_per_sentence"] / 1e6)
    # one interpreter on token ids; with a single default worker that is the `tflite_interpreter_*` figure
    one_interpreter = speed.get("tflite_1worker_interpreter_sentences_per_s_batch1",
                                speed["tflite_interpreter_sentences_per_s_batch1"])
    assert speed["tflite_1worker_interpreter_gflops_batch1"] == pytest.approx(
        speed["recurrent_mflops_per_sentence"] * one_interpreter / 1e3)
    assert speed["tflite_1worker_interpreter_batch_speedup_bound"] == pytest.approx(
        speed["litert_gemm_gflops_1thread"] / speed["tflite_1worker_interpreter_gflops_batch1"])
    if speed["tflite_workers"] > 1:  # the same measurement with one interpreter, batch speedup at equal workers
        assert speed["tflite_1worker_batch_speedup"] == pytest.approx(
            speed["tflite_1worker_sentences_per_s_batch8"] / speed["tflite_1worker_sentences_per_s_batch1"])
        assert speed["tflite_1worker_interpreter_sentences_per_s_batch8"] > 0


def test_bench_export_folded_classifier_counts_no_input_gemm(clf_run, tmp_path):
    output, data = _bench_export(clf_run, tmp_path, "--calls", "16", "--batch", "8", "--fold-embedding")
    assert data["fold_embedding"] is True and "embedding folded" in output
    assert set(data["speed_by_quantization"]) == {"float32", "float16-weights", "int8-dynamic-range"}
    speed = data["speed"]
    assert speed["tflite_sentences_per_s_batch8"] > 0 and speed["tflite_sentences_per_s_batch1"] > 0
    # BiLSTM 8 with its 6-wide input projection folded away: 2 directions x 8 x 4*8 = 512 multiply-adds a token
    assert speed["recurrent_mflops_per_sentence"] == pytest.approx(2 * 512 * speed["mean_tokens_per_sentence"] / 1e6)


def test_converter_error_line_has_no_machine_paths():
    from kerasrnn.export import tflite

    err = ValueError("ConverterError\n/opt/venv/lib/python3.11/site-packages/keras/src/ops/nn.py:12:1: error: "
                     "'tf.RandomOp' op is neither a custom op nor a flex op\nmore")
    line = tflite._error_line(err)
    assert line == "nn.py:12:1: error: 'tf.RandomOp' op is neither a custom op nor a flex op"
    assert tflite._error_line(ValueError("error: int8/float16 in -./: kept")) == "error: int8/float16 in -./: kept"


def test_forecaster_generic_in_features_and_horizon(tmp_path):
    """Exogenous columns (F=3) and a direct head (H=4), original units: every format, dynamic batch."""
    keras.utils.set_random_seed(5)
    rng = np.random.default_rng(5)
    inp = keras.Input(shape=(8, 3), name="window")
    h = krl.GRU(6, name="rnn_0")(inp)
    model = keras.Model(inp, keras.layers.Dense(4, name="forecast")(h))
    _perturb(model, rng)
    x = (100 + 5 * rng.normal(size=(24, 8, 3))).astype("float32")
    y = (100 + 5 * rng.normal(size=(24, 4))).astype("float32")
    scaler = {"kind": "in_model", "output_scale": 5.0, "scaling": "standard", "target": "level"}
    run_dir = _write_run(tmp_path / "fc-exo", "forecasting", model, {"x": x, "y": y}, {"scaler.json": scaler},
                         window=8, horizon=4, outputs=4, features=["y", "a", "b"], head="direct")
    for fmt, q in (("keras", "none"), ("savedmodel", "none"), ("tflite", "none"), ("tflite", "float16"),
                   ("tflite", "int8")):
        path, manifest = _export(run_dir, fmt, q)
        p = manifest["parity"]
        assert p["passed"] and p["scale"] == 5.0 and {"rmse_keras", "rmse_export", "rmse_increase_rel"} <= set(p)
        assert manifest["features"] == ["y", "a", "b"] and manifest["forecast_size"] == 4
        if fmt == "keras":
            continue
        if fmt == "tflite":
            assert manifest["inputs"]["window"]["shape"] == [None, 8, 3]
            assert manifest["outputs"]["forecast"]["shape"] == [None, 4]
        runner = runners.open_artifact(path / "model.tflite" if fmt == "tflite" else path, expect_task="forecasting")
        got = runner.predict(x[:5])
        assert got.shape == (5, 4)
        if q == "none":
            np.testing.assert_allclose(got, model(x[:5]).numpy(), atol=1e-3)
    loaded = tf.saved_model.load(str(run_dir / "export" / "savedmodel"))
    raw = loaded.signatures["forecast_raw"](window=tf.constant(x[:2]))["forecast"].numpy()
    np.testing.assert_allclose(raw, model(x[:2]).numpy(), atol=1e-3)  # in-model scaling: raw == forecast


def test_table_initializer_warning_does_not_reach_the_user(clf_run, caplog):
    import logging

    with caplog.at_level(logging.INFO):
        _export(clf_run, "tflite", "int8")
        _export(clf_run, "savedmodel")
    assert not [r for r in caplog.records if "table_initializer" in r.getMessage()]


def test_classifier_runner_trims_padding_only_for_dynamic_length(clf_run):
    """Trimming trailing padding (masked) gives the same probabilities; a fixed-length model is padded instead."""
    from kerasrnn.export import classification, tflite

    run = load_run(clf_run)
    texts = ["good", "Good FILM, great plot! dull acting it's fine", "", "awful movie"] * 5
    want = run.model(tf.constant(texts)).numpy()
    tok = Tokenizer([str(t) for t in run.model.get_layer("vectorizer").get_vocabulary()], 7)
    for length in (None, 7):
        model = classification.ids_model(run.model, length)
        with tflite.while_loops(model):
            concrete = tflite.frozen_function(model, [tf.TensorSpec((None, length), tf.int32, name="token_ids")],
                                              ["probs"])
        for batch_size in (1, 3, 32):
            clf = classification.Classifier("tflite", tflite.convert(concrete), ["neg", "pos"], tok, batch_size)
            assert clf.fixed_length == length
            np.testing.assert_allclose(clf.predict_proba(texts), want, atol=1e-5)


def test_classifier_runner_runs_longest_batches_first_in_input_order(clf_run):
    """The pool gets the batches longest first (its workers then finish together, not one of them alone on the
    longest batch); every answer goes back to its own sentence's row."""
    path, _ = _export(clf_run, "tflite")
    clf = runners.open_artifact(path / "model.tflite", expect_task="classification")
    clf.batch_size = 2

    class Recorder:  # stands in for the InterpreterPool; a sentence's "probability" is its token count
        lengths = []

        def map(self, calls):
            self.lengths += [c["token_ids"].shape[1] for c in calls]
            return [{"probs": (c["token_ids"] != 0).sum(axis=1, keepdims=True).astype(np.float32)} for c in calls]

    clf.runner = Recorder()
    ids = np.zeros((5, 7), np.int32)
    for row, n in enumerate([2, 7, 1, 5, 3]):
        ids[row, :n] = 4
    np.testing.assert_array_equal(clf.predict_ids(ids)[:, 0], [2, 7, 1, 5, 3])
    assert clf.runner.lengths == [7, 3, 1]  # batches (7, 5), (3, 2), (1), each trimmed to its longest
