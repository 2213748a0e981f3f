"""End-to-end tiny runs of the three tasks through the CLI, resume, sampling, bad input."""

import csv
import json
import math
import random

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from kerasrnn.cli import main
from kerasrnn.rundir import load_run
from kerasrnn.errors import UserError
from kerasrnn.sampling import Sampler, encode, filter_logits

FAST = ["--set", "train.jit_compile=false", "--set", "train.verbose=0"]
CONTRACT_FILES = ["run.json", "recipe.toml", "model.keras", "metrics.json", "history.csv",
                  "training_curves.png", "samples.npz"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def run_recipe(name, runs_dir, *sets, resume=False):
    args = ["recipe", "run", name, "--runs-dir", runs_dir, *FAST]
    for s in sets:
        args += ["--set", s]
    if resume:
        args.append("--resume")
    return invoke(*args)


def assert_user_error(result, *fragments):
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    last = errors[0]
    for fragment in fragments:
        assert fragment in last, result.output


def history_rows(run_dir):
    with open(run_dir / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


# ----------------------------------------------------------------------------- generation

CHAR_SETS = ["model.units=8", "model.num_layers=2", "model.embedding_dim=8", "data.seq_len=12",
             "train.batch_size=8", "train.epochs=1", "eval.sample_length=20", "eval.seed_text=the"]


def make_text(path):
    rng = random.Random(0)
    words = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran"]
    path.write_text("\n".join(" ".join(rng.choice(words) for _ in range(8)) for _ in range(300)) + "\n")
    return path


@pytest.fixture(scope="module")
def char_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    text = make_text(root / "corpus.txt")
    result = run_recipe("text-char", root / "runs", f"data.paths={text}", *CHAR_SETS)
    assert result.exit_code == 0, result.output
    return root / "runs" / "text-char", text, result.output


def test_generation_run_writes_the_contract(char_run):
    run_dir, text, output = char_run
    for name in CONTRACT_FILES + ["vocab.json", "logs", "checkpoints"]:
        assert (run_dir / name).exists(), name
    for split in ("train", "validation"):  # TensorBoard event files, one scalar point per epoch
        assert list((run_dir / "logs" / split).glob("events.out.tfevents.*")), split
    assert not list(run_dir.parent.glob(".partial-*"))
    vocab = json.loads((run_dir / "vocab.json").read_text())
    train_part = text.read_text()[: int(len(text.read_text()) * 0.95)]
    assert vocab["chars"] == sorted(set(train_part)) and vocab["unknown_char_policy"] == "error"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    nats = metrics["val_loss_nats_per_char"]
    assert metrics["val_bits_per_char"] == pytest.approx(nats / math.log(2), rel=1e-4)
    assert metrics["val_perplexity"] == pytest.approx(math.exp(nats), rel=1e-4)
    assert metrics["sample"].startswith("the") and len(metrics["sample"]) == 23
    assert "val_bits_per_char" in output and "Sample" in output
    run = load_run(run_dir, task="generation")
    assert run.info["task"] == "generation" and run.info["cell"] == "lstm"
    assert run.info["units"] == 8 and run.info["num_layers"] == 2
    assert run.info["recipe"]["data"]["seq_len"] == 12
    names = [layer.name for layer in run.model.layers]
    assert names[:3] == ["tokens", "embedding", "rnn_0"] and names[-1] == "logits"
    samples = np.load(run_dir / "samples.npz")
    assert samples["x"].dtype == np.int32 and samples["x"].shape[1] == 12
    np.testing.assert_array_equal(samples["x"][:, 1:], samples["y"][:, :-1])


def test_generate_command_is_reproducible_and_batched(char_run):
    run_dir = char_run[0]
    args = ["generate", run_dir, "--seed-text", "the ", "--length", "15", "--num-samples", "3",
            "--temperature", "1.0", "--seed", "7"]
    first, again = invoke(*args), invoke(*args)
    assert first.exit_code == 0, first.output
    assert first.output == again.output
    assert first.output.count("----- sample") == 3
    assert invoke(*args[:-1], "8").output != first.output


def test_unknown_seed_characters(char_run):
    run_dir = char_run[0]
    assert_user_error(invoke("generate", run_dir, "--seed-text", "the QZ"),
                      "not in the model's vocabulary", "'Q'", "'Z'", "--unknown skip")
    out = invoke("generate", run_dir, "--seed-text", "the QZ", "--unknown", "skip", "--length", "5")
    assert out.exit_code == 0 and out.output.startswith("the ")
    chars = json.loads((run_dir / "vocab.json").read_text())["chars"]
    with pytest.raises(UserError, match="'Q'"):
        encode("Q", chars)
    assert encode("Qa", chars, unknown="skip") == [chars.index("a")]


def _sampler(char_run):
    run = load_run(char_run[0])
    return run, Sampler(run.model, run.vocab["chars"])


def test_state_carry_equals_rerunning_the_prefix(char_run):
    run, sampler = _sampler(char_run)
    ids = encode("the cat sat on", run.vocab["chars"])
    full = run.model(np.array([ids], np.int32), training=False).numpy()[0]  # (T, V)
    states = [tf.constant(s) for s in sampler.step.initial_states(1)]
    for t, token in enumerate(ids):
        logits, *states = sampler.step_model([tf.constant([token], tf.int32), *states], training=False)
        np.testing.assert_allclose(logits.numpy()[0], full[t], atol=1e-5)
    # the compiled sampling loop: greedy continuation == argmax of re-running the whole prefix
    greedy = sampler.sample_ids(ids, length=8, temperature=0.0)[0].tolist()
    prefix = list(ids)
    for _ in range(8):
        prefix.append(int(run.model(np.array([prefix], np.int32), training=False)[0, -1].numpy().argmax()))
    assert greedy == prefix[len(ids):]


def test_top_k_1_is_greedy_and_seeds_reproduce(char_run):
    run, sampler = _sampler(char_run)
    ids = encode("the ", run.vocab["chars"])
    greedy = sampler.sample_ids(ids, 12, num_samples=2, temperature=0.0)
    top1 = sampler.sample_ids(ids, 12, num_samples=2, temperature=1.5, top_k=1, seed=3)
    np.testing.assert_array_equal(greedy, top1)
    a = sampler.sample_ids(ids, 30, num_samples=4, temperature=1.0, seed=11)
    b = sampler.sample_ids(ids, 30, num_samples=4, temperature=1.0, seed=11)
    c = sampler.sample_ids(ids, 30, num_samples=4, temperature=1.0, seed=12)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert len({tuple(row) for row in a}) > 1  # the samples of one batch differ


def test_filter_logits_on_a_hand_made_distribution():
    probs = np.array([[0.05, 0.5, 0.1, 0.3, 0.05]])
    logits = np.log(probs)
    kept = lambda out: np.isfinite(out.numpy()[0]).nonzero()[0].tolist()  # noqa: E731
    assert kept(filter_logits(logits, top_p=0.5)) == [1]          # 0.5 alone reaches 0.5
    assert kept(filter_logits(logits, top_p=0.6)) == [1, 3]       # 0.5 < 0.6 -> add 0.3
    assert kept(filter_logits(logits, top_p=0.85)) == [1, 2, 3]   # 0.8 < 0.85 -> add 0.1
    assert kept(filter_logits(logits, top_p=1.0)) == [0, 1, 2, 3, 4]
    assert kept(filter_logits(logits, top_k=2)) == [1, 3]
    assert kept(filter_logits(logits, top_k=2, top_p=0.5)) == [1]
    assert kept(filter_logits(logits, top_p=0.01)) == [1]         # the best token always survives
    out = filter_logits(logits, top_k=3).numpy()[0]
    np.testing.assert_allclose(out[[1, 2, 3]], logits[0, [1, 2, 3]], rtol=1e-6)  # kept logits unchanged


def test_resume_continues_without_redoing_epochs(tmp_path):
    text = make_text(tmp_path / "corpus.txt")
    sets = [f"data.paths={text}", *CHAR_SETS[:-3], "eval.sample_length=5", "eval.seed_text=the"]
    first = run_recipe("text-char", tmp_path / "runs", *sets, "train.epochs=1")
    assert first.exit_code == 0, first.output
    run_dir = tmp_path / "runs" / "text-char"
    rows1 = history_rows(run_dir)
    assert [r["epoch"] for r in rows1] == ["0"]
    resumed = run_recipe("text-char", tmp_path / "runs", *sets, "train.epochs=2", "train.verbose=2", resume=True)
    assert resumed.exit_code == 0, resumed.output
    assert "Epoch 2/2" in resumed.output and "Epoch 1/2" not in resumed.output
    rows2 = history_rows(run_dir)
    assert [r["epoch"] for r in rows2] == ["0", "1"]
    assert rows2[0] == rows1[0]  # the first epoch was not redone
    assert json.loads((run_dir / "metrics.json").read_text())["epochs_run"] == 2


def test_resume_needs_something_to_resume(tmp_path):
    assert_user_error(run_recipe("sine-forecast", tmp_path / "runs", resume=True), "nothing to resume")


def test_tfds_recipe_under_mock_data(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=60):
        result = run_recipe("shakespeare-char", tmp_path / "runs", "model.units=8", "model.embedding_dim=8",
                            "data.seq_len=8", "train.batch_size=4", "train.epochs=1", "train.steps_per_epoch=5",
                            "eval.seed_text=a", "eval.sample_length=10", "train.max_minutes=0")
    assert result.exit_code == 0, result.output
    run = load_run(tmp_path / "runs" / "shakespeare-char", load_model=False)
    assert set(run.vocab["chars"]) <= set("abcdefghij \n")
    assert run.info["recipe"]["data"]["source"] == "tfds"


def test_text_shorter_than_one_window_leaves_nothing(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("tiny text\n")
    result = run_recipe("text-char", tmp_path / "runs", f"data.paths={short}", "data.seq_len=50",
                        "eval.seed_text=t")
    assert_user_error(result, "data.seq_len")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())



def test_too_short_corpus_is_reported_as_such_before_the_seed_text(tmp_path):
    # "abc" lacks the default seed text's characters too: the length is the problem to name
    short = tmp_path / "abc.txt"
    short.write_text("abc")
    result = run_recipe("text-char", tmp_path / "runs", f"data.paths={short}")
    assert_user_error(result, "fewer than one batch of train.batch_size = 64")
    assert "seed_text" not in result.output


def test_corpus_one_batch_short_names_batch_size_and_seq_len(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("ab" * 200)  # 380 training characters (95%) = 3 windows of 101 < 4 per batch
    result = run_recipe("text-char", tmp_path / "runs", f"data.paths={text}", "train.batch_size=4",
                        "eval.seed_text=a")
    assert_user_error(result, "the training text has 380 characters")
    assert "train.batch_size" in result.output and "data.seq_len" in result.output


# ----------------------------------------------------------------------------- classification

WORDS = {"pos": ["good", "great", "lovely"], "neg": ["bad", "awful", "boring"], "mid": ["okay", "fine", "average"]}
FILLER = ["the", "movie", "was", "plot", "actors", "really", "quite", "film"]
CLS_SETS = ["model.units=8", "model.embedding_dim=8", "model.max_len=12", "model.max_tokens=100",
            "train.batch_size=16", "train.epochs=2", "train.learning_rate=0.01"]


def sentences(label, n, rng):
    return [" ".join(rng.sample(FILLER, 4) + [rng.choice(WORDS[label])]) + "!" for _ in range(n)]


def test_binary_csv_classification_and_classify_command(tmp_path):
    rng = random.Random(0)
    path = tmp_path / "reviews.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["review", "sentiment"])
        for label in ("pos", "neg"):
            writer.writerows([s, label] for s in sentences(label, 80, rng))
    result = run_recipe("csv-sentiment", tmp_path / "runs", f"data.path={path}", "data.text_column=review",
                        "data.label_column=sentiment", *CLS_SETS, "train.epochs=3")
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / "csv-sentiment"
    for name in CONTRACT_FILES + ["labels.json", "confusion_matrix.png"]:
        assert (run_dir / name).exists(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["class_names"] == ["neg", "pos"]
    cm = np.array(metrics["confusion_matrix"])
    assert cm.shape == (2, 2) and cm.sum() == metrics["num_test"] == 16
    assert metrics["test_accuracy"] == pytest.approx(np.trace(cm) / cm.sum(), abs=1e-6)
    assert set(metrics["per_class"]["pos"]) == {"precision", "recall", "f1", "support"}
    assert metrics["test_accuracy"] >= 0.75  # the class word decides: learnable in 3 epochs
    run = load_run(run_dir, task="classification")
    assert run.labels == {"class_names": ["neg", "pos"]}
    assert run.info["num_classes"] == 2 and run.info["max_len"] == 12
    assert [layer.name for layer in run.model.layers][:3] == ["text", "vectorizer", "embedding"]
    assert run.model.layers[-1].name == "probs"
    samples = np.load(run_dir / "samples.npz")
    assert samples["text"].dtype.kind == "U" and samples["y"].dtype == np.int32
    # raw strings in
    out = invoke("classify", run_dir, "a great great film", "an awful boring plot")
    assert out.exit_code == 0, out.output
    lines = out.output.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["pos", "neg"]
    assert all(0.5 <= float(line.split("\t")[1]) <= 1 for line in lines)
    texts = tmp_path / "texts.txt"
    texts.write_text("good good good\n\nbad bad bad\n")
    out = invoke("classify", run_dir, "--file", texts)
    assert out.exit_code == 0 and len(out.output.strip().splitlines()) == 2
    assert_user_error(invoke("classify", run_dir, ""), "empty")
    assert_user_error(invoke("classify", run_dir, "fine", "  "), "text #2 is empty")
    assert_user_error(invoke("classify", run_dir), "nothing to classify")
    (tmp_path / "cp1252.txt").write_bytes("caf\xe9 good\n".encode("cp1252"))
    assert_user_error(invoke("classify", run_dir, "--file", tmp_path / "cp1252.txt"), "pass --encoding=cp1252")


def test_three_class_files_classification(tmp_path):
    rng = random.Random(1)
    files = []
    for label in ("mid", "neg", "pos"):
        files.append(tmp_path / f"reviews.{label}")
        files[-1].write_text("\n".join(sentences(label, 60, rng)) + "\n")
    result = run_recipe("polarity-sentiment", tmp_path / "runs", "data.files=" + ",".join(map(str, files)),
                        *CLS_SETS, "model.bidirectional=false", "model.cell=gru")
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / "polarity-sentiment"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["class_names"] == ["mid", "neg", "pos"]
    assert np.array(metrics["confusion_matrix"]).shape == (3, 3)
    assert load_run(run_dir).model.output.shape[-1] == 3


def test_single_class_is_an_error(tmp_path):
    only = tmp_path / "only.pos"
    only.write_text("good film\ngreat film\nlovely film\n" * 5)
    result = run_recipe("polarity-sentiment", tmp_path / "runs", f"data.files={only}")
    assert_user_error(result, "only one class")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


# ----------------------------------------------------------------------------- forecasting


def test_sine_forecast_run_and_forecast_command(tmp_path):
    result = run_recipe("sine-forecast", tmp_path / "runs", "data.n=300", "data.window=10", "eval.horizon=15",
                        "model.units=8", "model.num_layers=2", "train.epochs=2", "train.batch_size=16")
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / "sine-forecast"
    for name in CONTRACT_FILES + ["scaler.json", "forecast.png"]:
        assert (run_dir / name).exists(), name
    scaler = json.loads((run_dir / "scaler.json").read_text())  # informative: the model applies it
    train_part = 0.5 * np.sin(np.linspace(0, 50, 300))[:210]  # fit on the first 70% only
    assert scaler["kind"] == "in_model" and scaler["scaling"] == "window" and scaler["target"] == "change"
    assert scaler["output_scale"] == pytest.approx(np.sqrt(np.mean(np.diff(train_part) ** 2)), rel=1e-5)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("test_one_step_mae", "test_one_step_rmse", "test_rollout_15_mae", "test_rollout_15_rmse"):
        assert math.isfinite(metrics[key]) and metrics[key] >= 0
    assert metrics["test_rollout_15_rmse"] >= metrics["test_rollout_15_mae"]
    run = load_run(run_dir, task="forecasting")
    assert run.info["window"] == 10 and run.info["horizon"] == 15
    assert tuple(run.model.input.shape) == (None, 10, 1) and run.model.layers[-1].name == "forecast"
    samples = np.load(run_dir / "samples.npz")
    assert samples["x"].shape[1:] == (10, 1) and samples["y"].shape[1:] == (1,)
    out = invoke("forecast", run_dir, "--steps", "4", "--plot", tmp_path / "f.png")
    assert out.exit_code == 0, out.output
    assert [line.split("\t")[0] for line in out.output.splitlines()[:4]] == ["t+1", "t+2", "t+3", "t+4"]
    assert (tmp_path / "f.png").stat().st_size > 0


def test_forecast_horizon_longer_than_test_part(tmp_path):
    result = run_recipe("sine-forecast", tmp_path / "runs", "data.n=100", "eval.horizon=50")
    assert_user_error(result, "eval.horizon")


# ----------------------------------------------------------------------------- not a run


@pytest.mark.parametrize("command", [["generate"], ["classify", "hello"], ["forecast"]])
def test_not_a_run_dir(tmp_path, command):
    result = invoke(command[0], tmp_path, *command[1:])
    assert_user_error(result, "is not a kerasrnn run directory")


def test_wrong_task_run_dir(char_run):
    assert_user_error(invoke("forecast", char_run[0]), "is a 'generation' run, not a 'forecasting' run")

