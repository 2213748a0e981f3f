"""Fuzzing the command line with `hypothesis`: every input succeeds, or fails with one line.

The property, for recipe overrides, CSV/TSV files, seed texts and ``generate``
options: the command exits 0, or exits 1 printing exactly one ``Error:`` line —
never a traceback, never a half-written run directory.

CI runs the small default profile ("ci"); ``pytest tests/test_fuzz.py
--hypothesis-profile=long`` is the benchmark (see tests/conftest.py).
"""

import tomllib

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kerasrnn import recipes
from kerasrnn.cli import main

SUPPRESS = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


def examples(divisor: int) -> int:
    """A share of the active profile's max_examples for the slower properties (ci: 25, long: 400)."""
    return max(3, settings().max_examples // divisor)


def invoke(args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_success_or_one_error(result):
    """Exit 0, or exit 1 with a single ``Error:`` line and no traceback."""
    if result.exit_code == 0:
        return
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # not an uncaught exception
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output


# ----------------------------------------------------------------------------- recipe overrides

def _all_keys():
    keys = set()
    for task in recipes.TASKS:
        for section, cls in recipes.task_schema(task).items():
            keys.update(f"{section}.{f}" for f in cls.__dataclass_fields__)
    return sorted(keys)


KEYS = _all_keys()
VALUES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "-inf", "1e309", "true", "false", "", "[]", "[1, 2]", "a,b", "0.5,0.25,0.25",
                     "\"quoted\"", "[\"x\", 1]", "{}", "[[1]]", "0x10", "1_000", "-0"]),
    st.text(max_size=12),
)
OVERRIDE = st.one_of(
    st.tuples(st.sampled_from(KEYS), VALUES).map(lambda kv: f"{kv[0]}={kv[1]}"),
    st.text(max_size=20),  # no '=', no section, junk keys
    st.tuples(st.text(max_size=8), st.text(max_size=8), VALUES).map(lambda t: f"{t[0]}.{t[1]}={t[2]}"),
)


@settings(deadline=None)
@given(name=st.sampled_from(["text-char", "sine-forecast", "csv-sentiment", "long-memory", "python-char"]),
       overrides=st.lists(OVERRIDE, max_size=4))
def test_recipe_overrides_resolve_or_fail_with_one_line(name, overrides):
    args = ["recipe", "show", name]
    for o in overrides:
        args += ["--set", o]
    result = invoke(args)
    assert_success_or_one_error(result)
    if result.exit_code == 0:  # what was shown is a complete recipe that resolves again unchanged
        shown = tomllib.loads(result.output)
        assert recipes.resolve(shown, default_name=name) == shown


# ----------------------------------------------------------------------------- CSV / TSV content

CELL = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=15),
    st.sampled_from(["", "\"", "\"\"", "a,b", "a\tb", "\"quoted, comma\"", "line\nbreak", "\ufeff", "pos", "neg",
                     " ", "\r", "\x00"]),
)


@st.composite
def csv_files(draw):
    delimiter = draw(st.sampled_from([",", "\t", ";", "|"]))
    header = draw(st.sampled_from([["text", "label"], ["label", "text"], ["text"], ["review", "label", "extra"],
                                   []]))
    rows = draw(st.lists(st.lists(CELL, min_size=0, max_size=4), max_size=12))
    lines = [delimiter.join(header)] if header else []
    lines += [delimiter.join(row) for row in rows]
    text = draw(st.sampled_from(["\n", "\r\n"])).join(lines)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"]))
    data = text.encode(encoding, errors="replace")
    if draw(st.booleans()) and draw(st.booleans()):
        data = draw(st.binary(max_size=200))  # plain random bytes
    suffix = ".tsv" if delimiter == "\t" and draw(st.booleans()) else ".csv"
    return data, suffix


@settings(deadline=None, suppress_health_check=SUPPRESS)
@given(content=csv_files(), quoting=st.booleans(), encoding=st.sampled_from(["utf-8", "latin-1", "utf-16"]))
def test_csv_inspect_succeeds_or_fails_with_one_line(tmp_path, content, quoting, encoding):
    data, suffix = content
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    args = ["data", "inspect", path, "--text-column", "text", "--label-column", "label", "--encoding", encoding]
    assert_success_or_one_error(invoke(args + ([] if quoting else ["--no-quoting"])))
    assert_success_or_one_error(invoke(["data", "inspect", path, "--encoding", encoding]))


@st.composite
def plausible_csv_files(draw):
    """Well-formed text/label CSVs whose texts are random (quotes, delimiters, unicode, empty ones)."""
    n = draw(st.integers(20, 40))
    labels = draw(st.lists(st.sampled_from(["pos", "neg", "pos", "neg", "neutral", "", " pos"]), min_size=n,
                           max_size=n))
    texts = draw(st.lists(CELL, min_size=n, max_size=n))
    quote = lambda t: '"' + t.replace('"', '""') + '"'  # noqa: E731
    lines = ["text,label"] + [f"{quote(t)},{label}" for t, label in zip(texts, labels)]
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig"]))
    return "\n".join(lines).encode(encoding), ".csv"


GOOD_CSV = ("text,label\n" + "\n".join(f"\"a \"\"{w}\"\", film\",{label}" for w, label in
                                     zip(["good", "bad", "fine", "dull"] * 8, ["pos", "neg"] * 16))).encode()


@settings(deadline=None, suppress_health_check=SUPPRESS, max_examples=examples(6))
@given(content=st.one_of(plausible_csv_files(), csv_files()))
@example(content=(GOOD_CSV, ".csv"))
@example(content=(b"text,label\n" + b'"",pos\n' * 33 + b'"",neg', ".csv"))  # found by the long profile
def test_csv_recipe_run_leaves_a_complete_run_or_nothing(tmp_path_factory, content):
    data, suffix = content
    folder = tmp_path_factory.mktemp("csvrun")
    path = folder / f"data{suffix}"
    path.write_bytes(data)
    runs = folder / "runs"
    sets = [f"data.path={path}", "model.units=4", "model.embedding_dim=4", "model.max_len=8",
            "model.max_tokens=50", "train.epochs=1", "train.batch_size=4", "train.verbose=0",
            "train.jit_compile=false", "eval.baseline=false"]
    args = ["recipe", "run", "csv-sentiment", "--runs-dir", runs]
    for s in sets:
        args += ["--set", s]
    result = invoke(args)
    assert_success_or_one_error(result)
    leftovers = [p.name for p in runs.iterdir()] if runs.exists() else []
    if result.exit_code == 0:
        assert leftovers == ["csv-sentiment"] and (runs / "csv-sentiment" / "model.keras").is_file()
    else:
        assert leftovers == [], leftovers  # no half-written run, no work dir, no lock


# ----------------------------------------------------------------------------- seed texts, generate options

CHARS = list("\n !,.:?abcdefghijklmnopqrstuvwxyzRO")


@pytest.fixture(scope="module")
def tiny_generation_run(tmp_path_factory):
    """An untrained char model saved as a generation run (enough to exercise `generate`)."""
    from kerasrnn.rundir import save_model, write_json
    from kerasrnn.tasks.generation import CharModel, build_model

    run_dir = tmp_path_factory.mktemp("gen") / "run"
    run_dir.mkdir()
    save_model(build_model(len(CHARS), CharModel(units=8, num_layers=1, embedding_dim=4)), run_dir / "model.keras")
    write_json(run_dir / "vocab.json", {"chars": CHARS, "unknown_char_policy": "error"})
    write_json(run_dir / "run.json", {"task": "generation", "name": "run",
                                      "recipe": {"eval": {"seed_text": "\n", "temperature": 0.8}}})
    return run_dir


def _generate(run_dir, seed_text, length, temperature, top_k, top_p, num_samples, seed, unknown):
    args = ["generate", run_dir, "--seed-text", seed_text, "--length", length, "--temperature", temperature,
            "--top-k", top_k, "--top-p", top_p, "--num-samples", num_samples, "--seed", seed]
    return invoke(args + (["--unknown", unknown] if unknown else []))


@settings(deadline=None, suppress_health_check=SUPPRESS, max_examples=examples(4))
@given(seed_text=st.one_of(st.text(alphabet="".join(CHARS), min_size=1, max_size=12), st.text(max_size=12)),
       length=st.integers(1, 12), temperature=st.floats(0, 2), top_k=st.integers(0, 50),
       top_p=st.floats(0.01, 1.0), num_samples=st.integers(1, 3), seed=st.integers(0, 2**31),
       unknown=st.sampled_from([None, "skip"]))
def test_generate_with_legal_options_samples_or_names_the_bad_seed_text(
        tiny_generation_run, seed_text, length, temperature, top_k, top_p, num_samples, seed, unknown):
    result = _generate(tiny_generation_run, seed_text, length, temperature, top_k, top_p, num_samples, seed, unknown)
    assert_success_or_one_error(result)
    if result.exit_code == 1:  # the only legal way to fail: seed characters outside the vocabulary
        assert "seed" in result.output.lower(), result.output
    elif num_samples > 1:
        assert result.output.count("----- sample") == num_samples


@settings(deadline=None, suppress_health_check=SUPPRESS, max_examples=examples(2))
@given(seed_text=st.text(max_size=12),
       length=st.one_of(st.integers(-3, 12), st.just(10**9)),
       temperature=st.one_of(st.floats(-1, 3), st.sampled_from([float("nan"), float("inf"), 0.0])),
       top_k=st.integers(-2, 50), top_p=st.one_of(st.floats(-0.5, 1.5), st.just(float("nan"))),
       num_samples=st.integers(-1, 3), seed=st.integers(-5, 2**40), unknown=st.sampled_from([None, "skip"]))
def test_generate_with_any_options_succeeds_or_fails_with_one_line(
        tiny_generation_run, seed_text, length, temperature, top_k, top_p, num_samples, seed, unknown):
    if length > 1000:  # a legal huge length would only take long: keep it if another option is illegal
        length = 10**9 if temperature != temperature or temperature < 0 else 20
    result = _generate(tiny_generation_run, seed_text, length, temperature, top_k, top_p, num_samples, seed, unknown)
    assert_success_or_one_error(result)


# ----------------------------------------------------------------------------- classify inputs

@pytest.fixture(scope="module")
def tiny_classification_run(tmp_path_factory):
    """An untrained text classifier (raw strings in) saved as a classification run."""
    import keras
    import numpy as np

    from kerasrnn.layers import GRU
    from kerasrnn.rundir import save_model, write_json

    vec = keras.layers.TextVectorization(name="vectorizer", max_tokens=12, output_sequence_length=6)
    vec.adapt(np.array(["a good film", "a bad film", "great fun", "dull plot"]))
    text = keras.Input(shape=(), dtype="string", name="text")
    x = keras.layers.Embedding(len(vec.get_vocabulary()), 4, mask_zero=True)(vec(text))
    model = keras.Model(text, keras.layers.Dense(2, activation="softmax")(GRU(4)(x)))
    run_dir = tmp_path_factory.mktemp("clf") / "run"
    run_dir.mkdir()
    save_model(model, run_dir / "model.keras")
    write_json(run_dir / "labels.json", {"class_names": ["neg", "pos"]})
    write_json(run_dir / "run.json", {"task": "classification", "name": "run", "recipe": {}, "max_len": 6,
                                      "num_classes": 2})
    return run_dir


@settings(deadline=None, suppress_health_check=SUPPRESS, max_examples=examples(4))
@given(texts=st.lists(st.text(max_size=30), max_size=4), file_bytes=st.one_of(st.none(), st.binary(max_size=80),
                                                                             st.text(max_size=60).map(str.encode)),
       encoding=st.sampled_from(["utf-8", "latin-1", "utf-16", "no-such-codec"]), batch_size=st.integers(-1, 3))
def test_classify_inputs_succeed_or_fail_with_one_line(tiny_classification_run, tmp_path_factory, texts,
                                                       file_bytes, encoding, batch_size):
    args = ["classify", tiny_classification_run, "--batch-size", batch_size, "--encoding", encoding]
    if file_bytes is not None:
        path = tmp_path_factory.mktemp("lines") / "sentences.txt"
        path.write_bytes(file_bytes)
        args += ["--file", path]
    result = invoke(args + ["--", *texts])
    if result.exit_code == 2:  # click's own usage error (e.g. --batch-size 0): one "Error:" line too
        assert sum(line.startswith("Error: ") for line in result.output.splitlines()) == 1, result.output
        return
    assert_success_or_one_error(result)
