"""Classification: stratified folds, the n-gram baseline, init_from, concat pooling, CV runs, bad input."""

import json
import random
import warnings

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from kerasrnn.cli import main
from kerasrnn.errors import UserError
from kerasrnn.pooling import ConcatPooling
from kerasrnn.tasks import classification
from kerasrnn.tasks.folds import carve_validation, check_folds, stratified_folds, summarize
from kerasrnn.tasks.ngram_baseline import train_ngram_baseline

FAST = ["train.jit_compile=false", "train.verbose=0", "model.cell=gru", "model.units=8", "model.embedding_dim=8",
        "model.max_len=8", "model.max_tokens=100", "train.batch_size=16", "train.learning_rate=0.01"]
WORDS = {"pos": ["good", "great", "lovely"], "neg": ["bad", "awful", "boring"], "mid": ["okay", "fine", "average"],
         "meh": ["so-so"]}
FILLER = ["the", "movie", "was", "plot", "actors", "really", "quite", "film"]


def sentences(label, n, rng):
    return [" ".join(rng.sample(FILLER, 4) + [rng.choice(WORDS[label])]) for _ in range(n)]


def write_tsv(path, per_class, labels=("neg", "pos"), seed=0):
    """Header-ful TSV with stray double quotes (needs data.quoting = false), like the senteval files."""
    rng = random.Random(seed)
    lines = ["text\tlabel"]
    for label in labels:
        lines += [f'{s} "\t{label}' for s in sentences(label, per_class, rng)]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_recipe(runs_dir, *sets, name="csv-sentiment"):
    args = ["recipe", "run", name, "--runs-dir", str(runs_dir)]
    for s in [*FAST, *sets]:
        args += ["--set", s]
    return CliRunner().invoke(main, args, catch_exceptions=False)


def assert_user_error(result, *fragments):
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    for fragment in fragments:
        assert fragment in errors[0], result.output


# ----------------------------------------------------------------------------- folds


@pytest.mark.parametrize("k", [2, 3, 10])
def test_stratified_folds_are_disjoint_complete_and_stratified(k):
    rng = np.random.default_rng(1)
    labels = rng.choice(3, size=203, p=[0.6, 0.3, 0.1])
    parts = stratified_folds(labels, k, seed=5)
    assert len(parts) == k
    everything = np.concatenate(parts)
    assert sorted(everything.tolist()) == list(range(len(labels)))  # complete and disjoint
    for c in range(3):
        per_part = [int((labels[p] == c).sum()) for p in parts]
        assert max(per_part) - min(per_part) <= 1, per_part  # stratified
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1, sizes
    assert [p.tolist() for p in stratified_folds(labels, k, seed=5)] == [p.tolist() for p in parts]
    assert [p.tolist() for p in stratified_folds(labels, k, seed=6)] != [p.tolist() for p in parts]


def test_carve_validation_is_stratified_and_disjoint():
    labels = np.array([0] * 50 + [1] * 30 + [2] * 2)
    indices = np.arange(82)
    train, val = carve_validation(indices, labels, 0.1, seed=0)
    assert sorted(np.concatenate([train, val]).tolist()) == indices.tolist()
    assert not set(train.tolist()) & set(val.tolist())
    assert [int((labels[val] == c).sum()) for c in range(3)] == [5, 3, 1]


def test_summarize_uses_sample_std():
    s = summarize([0.7, 0.8, 0.9])
    assert s["mean"] == pytest.approx(0.8) and s["std"] == pytest.approx(0.1) and s["per_fold"] == [0.7, 0.8, 0.9]


@pytest.mark.parametrize("k, fragment", [(1, "eval.folds must be 0"), (4, "more than the 3 examples of class 'b'")])
def test_check_folds_errors(k, fragment):
    with pytest.raises(UserError, match=fragment):
        check_folds([0] * 10 + [1] * 3, k, ["a", "b"])


# ----------------------------------------------------------------------------- baseline


def test_ngram_baseline_beats_chance_on_separable_data():
    rng = random.Random(0)
    names = ["mid", "neg", "pos"]
    texts = {label: sentences(label, 60, rng) for label in names}

    def pick(lo, hi):
        xs = [t for label in names for t in texts[label][lo:hi]]
        return xs, np.array([i for i, label in enumerate(names) for _ in range(hi - lo)], np.int32)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing reaches the user of a classification run (e.g. Keras' shuffle note)
        model = train_ngram_baseline(pick(0, 40), pick(40, 48), 3, seed=0, learning_rate=0.01)
    test_texts, test_labels = pick(48, 60)
    probs = classification.predict_probs(model, test_texts)
    assert probs.shape == (36, 3) and np.allclose(probs.sum(-1), 1, atol=1e-5)
    assert (probs.argmax(-1) == test_labels).mean() >= 0.8  # chance is 1/3


def test_ensemble_uses_the_recurrent_probabilities():
    """The reported ensemble averages the recurrent model's probabilities with the baseline's."""
    rng = random.Random(1)
    names = ["neg", "pos"]

    def pick(n):
        xs = [t for label in names for t in sentences(label, n, rng)]
        return xs, np.array([i for i in range(2) for _ in range(n)], np.int32)

    train, val, test = pick(30), pick(5), pick(10)
    onehot = np.eye(2)[test[1]]
    right = classification.baseline_scores(train, val, test, names, 0, recurrent_probs=onehot)
    wrong = classification.baseline_scores(train, val, test, names, 0, recurrent_probs=1 - onehot)
    assert right["accuracy"] == wrong["accuracy"]  # the baseline itself does not depend on them
    # a certain recurrent model outvotes the baseline's (less than certain) probabilities
    assert right["ensemble"]["accuracy"] == 1.0 and wrong["ensemble"]["accuracy"] == 0.0
    assert "ensemble" not in classification.baseline_scores(train, val, test, names, 0)


# ----------------------------------------------------------------------------- layers


def test_concat_pooling_bidirectional_last_and_masked_stats():
    h = np.arange(2 * 4 * 4, dtype="float32").reshape(2, 4, 4) - 10
    mask = np.array([[True, True, True, False], [True, False, False, False]])
    out = ConcatPooling(backward_units=2)(h, mask=mask).numpy()
    for b, n in enumerate([3, 1]):
        valid = h[b, :n]
        last = np.concatenate([valid[-1, :2], h[b, 0, 2:]])  # forward: last valid step; backward: step 0
        np.testing.assert_allclose(out[b], np.concatenate([last, valid.max(0), valid.mean(0)]))
    config = ConcatPooling(backward_units=2).get_config()
    assert ConcatPooling.from_config(config).backward_units == 2


# ----------------------------------------------------------------------------- runs


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One tiny single-split run: header-ful TSV with quoting off, a separate test file, concat pooling."""
    tmp = tmp_path_factory.mktemp("cls")
    train_path = write_tsv(tmp / "train.tsv", 60)
    test_path = write_tsv(tmp / "test.tsv", 10, seed=1)
    result = run_recipe(tmp / "runs", f"data.path={train_path}", f"data.test_path={test_path}", "data.quoting=false",
                        "train.epochs=3", "model.pooling=concat", "model.token_dropout=0.1")
    assert result.exit_code == 0, result.output
    return tmp, tmp / "runs" / "csv-sentiment", result.output


def test_single_split_run_with_test_file_and_baseline(trained_run):
    tmp, run_dir, output = trained_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["num_test"] == 20 and metrics["num_train"] + metrics["num_val"] == 120
    assert metrics["baseline"]["test_accuracy"] >= 0.5
    assert 0 <= metrics["ensemble"]["test_accuracy"] <= 1 and "| ensemble" in output
    assert "n-gram baseline" in output and "recurrent" in output
    run = classification.pretrained_source(str(run_dir))
    names = [layer.name for layer in run.layers]
    assert names[:3] == ["text", "vectorizer", "embedding"] and "concat_pooling" in names
    assert names[-1] == "probs"


def test_init_from_restores_exactly_the_pretrained_weights(trained_run):
    tmp, run_dir, _ = trained_run
    source = classification.pretrained_source(str(run_dir))
    cfg = classification.TextClassifierModel(max_len=8, embedding_dim=8, cell="gru", units=8, pooling="last")
    keras.utils.set_random_seed(3)
    text_model, ids_model, vectorizer = classification.build_models(
        cfg, 3, ["unrelated words only"], vocabulary=source.get_layer("vectorizer").get_vocabulary())
    copied = classification.copy_pretrained(ids_model, source, str(run_dir))
    assert copied == ["embedding", "rnn_0"]
    assert vectorizer.get_vocabulary() == source.get_layer("vectorizer").get_vocabulary()
    for name in copied:
        for mine, theirs in zip(ids_model.get_layer(name).get_weights(), source.get_layer(name).get_weights()):
            np.testing.assert_array_equal(mine, theirs)
    texts = ["the movie was good", "awful plot"]
    np.testing.assert_array_equal(text_model.get_layer("vectorizer")(texts), source.get_layer("vectorizer")(texts))


def test_init_from_through_a_recipe_and_incompatible_runs(trained_run):
    tmp, run_dir, _ = trained_run
    train_path = tmp / "train.tsv"
    common = [f"data.path={train_path}", "data.quoting=false", "train.epochs=1", "eval.baseline=false"]
    result = run_recipe(tmp / "runs2", *common, f"model.init_from={run_dir}", "train.learning_rate=1e-9",
                        "model.dropout=0")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp / "runs2" / "csv-sentiment" / "metrics.json").read_text())
    assert metrics["init_from"] == str(run_dir)
    assert_user_error(run_recipe(tmp / "runs3", *common, f"model.init_from={run_dir}", "model.units=16"),
                      "model.init_from", "rnn_0", "model.cell, units")
    assert_user_error(run_recipe(tmp / "runs3", *common, f"model.init_from={tmp}"),
                      "model.init_from", str(tmp))
    assert not (tmp / "runs3").exists() or not any((tmp / "runs3").iterdir())


def test_language_model_pretraining_learns_and_initialises_the_classifier(tmp_path):
    """The pretraining LM learns a predictable word order, and the classifier starts from exactly its weights."""
    texts = ["one two three four five six seven eight"] * 60 + ["eight seven six five four three two one"] * 60
    cfg = classification.TextClassifierModel(max_len=8, max_tokens=100, embedding_dim=8, cell="gru", units=8,
                                             dropout=0.0, pretrain_epochs=6)
    train_cfg = classification.train.TrainConfig(batch_size=16, learning_rate=0.02, patience=6, verbose=0,
                                                 jit_compile="false")
    keras.utils.set_random_seed(0)
    _, ids_model, vectorizer = classification.build_models(cfg, 2, texts)
    before = ids_model.get_layer("rnn_0").get_weights()[0].copy()
    info = classification.pretrain_language_model(ids_model, vectorizer, texts, texts[::10], cfg, train_cfg, "gru",
                                                  0, tmp_path)
    assert info["num_texts"] == 120 and info["output_tokens"] == vectorizer.vocabulary_size() == 10
    # each word is fixed by its first neighbour: far below the uniform log(10) = 2.3 nats per target
    lm = classification.build_language_model(cfg, 10, 10)
    lm.load_weights(tmp_path / "pretrain" / "language_model.weights.h5")
    ds = classification.language_model_dataset(texts[:2], vectorizer, 2, False, 0, True, 10)
    ids, (nxt, prev), (w_next, w_prev) = next(iter(ds))
    forward, backward = lm(ids)
    agree = [(np.argmax(out, -1) == target.numpy())[w.numpy() > 0].mean()
             for out, target, w in ((forward, nxt, w_next), (backward, prev, w_prev))]
    assert min(agree) > 0.8, agree  # chance: about 1/10 (the first step of each direction is ambiguous)
    assert not np.array_equal(ids_model.get_layer("rnn_0").get_weights()[0], before)
    for name in ("embedding", "rnn_0"):
        for mine, theirs in zip(ids_model.get_layer(name).get_weights(), lm.get_layer(name).get_weights()):
            np.testing.assert_array_equal(mine, theirs)
    # the targets never give away the input word: forward = next word, backward = previous word
    np.testing.assert_array_equal(nxt.numpy()[:, :-1], ids.numpy()[:, 1:])
    np.testing.assert_array_equal(prev.numpy()[:, 1:], ids.numpy()[:, :-1])


def test_pretraining_through_a_recipe(tmp_path):
    path = write_tsv(tmp_path / "r.tsv", 20)
    extra = tmp_path / "unlabelled.txt"
    extra.write_text("\n".join(sentences("mid", 30, random.Random(3))) + "\n\n")
    result = run_recipe(tmp_path / "runs", f"data.path={path}", "data.quoting=false", "train.epochs=1",
                        "model.pretrain_epochs=1", f"data.pretrain_paths={extra}", "eval.baseline=false",
                        "model.bidirectional=false")  # the unit test above covers the bidirectional LM
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "runs" / "csv-sentiment" / "metrics.json").read_text())
    assert metrics["pretrain"]["num_texts"] == metrics["num_train"] + 30
    assert "Language-model pretraining on" in result.output
    vocabulary = classification.pretrained_source(str(tmp_path / "runs" / "csv-sentiment")).get_layer(
        "vectorizer").get_vocabulary()
    assert "okay" in vocabulary  # words only the unlabelled file has join the vocabulary


def test_cross_validation_run(tmp_path):
    path = write_tsv(tmp_path / "r.tsv", 12, labels=("mid", "neg", "pos"))
    result = run_recipe(tmp_path / "runs", f"data.path={path}", "data.quoting=false", "eval.folds=2",
                        "train.epochs=1", "eval.val_fraction=0.2")
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / "csv-sentiment"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    cv = metrics["cv"]
    assert cv["folds"] == 2 and len(cv["accuracy"]["per_fold"]) == 2
    assert cv["accuracy"]["mean"] == pytest.approx(np.mean(cv["accuracy"]["per_fold"]), abs=1e-5)
    assert len(metrics["baseline"]["accuracy"]["per_fold"]) == 2
    assert len(metrics["ensemble"]["accuracy"]["per_fold"]) == 2
    assert np.sum(cv["pooled"]["confusion_matrix"]) == 36  # every example tested exactly once
    tested = []
    for k in (1, 2):
        fold = json.loads((run_dir / "folds" / f"fold_0{k}" / "result.json").read_text())
        tested += fold["test_indices"]
        assert fold["num_train"] + fold["num_val"] + len(fold["test_indices"]) == 36
        assert not (run_dir / "folds" / f"fold_0{k}" / "checkpoints").exists()
    assert sorted(tested) == list(range(36))
    assert "Fold 2/2" in result.output and "n-gram baseline" in result.output and "±" in result.output
    assert metrics["final_model"]["num_train"] + metrics["final_model"]["num_val"] == 36
    assert (run_dir / "model.keras").exists()

    # resume: a fold whose result.json exists is not trained again; the missing one is
    work = tmp_path / "work"
    (work / "folds" / "fold_01").mkdir(parents=True)
    first = json.loads((run_dir / "folds" / "fold_01" / "result.json").read_text())
    (work / "folds" / "fold_01" / "result.json").write_text(json.dumps(first | {"accuracy": 0.125}))
    assert classification.has_resume_state(work)
    texts, labels, names = classification.load_cv_examples(
        classification.ClassificationData(path=str(path), quoting=False), 0)
    recipe = json.loads((run_dir / "run.json").read_text())["recipe"]
    resumed, _, _ = classification._cross_validate(
        texts, labels, names, classification.TextClassifierModel(**recipe["model"]),
        classification.train.TrainConfig(**recipe["train"]),
        classification.ClassificationEval(**recipe["eval"] | {"baseline": False}), "gru", 0, work, None)
    assert resumed["cv"]["accuracy"]["per_fold"][0] == 0.125
    assert (work / "folds" / "fold_02" / "result.json").exists()


def test_bad_inputs_are_one_line_errors(tmp_path):
    path = write_tsv(tmp_path / "r.tsv", 5)
    base = [f"data.path={path}", "data.quoting=false"]
    assert_user_error(run_recipe(tmp_path / "runs", *base, "eval.folds=1"), "eval.folds must be 0", "at least 2")
    assert_user_error(run_recipe(tmp_path / "runs", *base, "eval.folds=6"), "eval.folds = 6", "5 examples of class")
    other = write_tsv(tmp_path / "other.tsv", 3, labels=("neg", "meh"))
    assert_user_error(run_recipe(tmp_path / "runs", *base, f"data.test_path={other}"),
                      "data.test_path", "['meh']")
    assert_user_error(run_recipe(tmp_path / "runs", *base, f"data.test_path={other}", "eval.folds=2"),
                      "eval.folds", "data.test_path")
    assert_user_error(run_recipe(tmp_path / "runs", *base, f"data.pretrain_paths={path}"),
                      "data.pretrain_paths", "model.pretrain_epochs")
    assert_user_error(run_recipe(tmp_path / "runs", *base, "model.pretrain_epochs=1", "model.num_layers=2"),
                      "model.pretrain_epochs", "model.num_layers = 1")
    assert_user_error(run_recipe(tmp_path / "runs", *base, "model.pretrain_epochs=1",
                                 f"data.pretrain_paths={tmp_path / 'missing.txt'}"), "data.pretrain_paths")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
