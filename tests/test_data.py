"""Tests for kerasrnn.data: loaders, splits, tf.data pipelines, TFDS (mocked) and `kerasrnn data`."""

import os
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds
from click.testing import CliRunner

import kerasrnn.data as kd
from kerasrnn.data import tfds_source
from kerasrnn.errors import UserError


# ----------------------------------------------------------------------- text

def test_load_text_glob_concatenates_sorted_and_normalises_newlines(tmp_path):
    (tmp_path / "b.txt").write_bytes(b"second\r\nfile\r\n")
    (tmp_path / "a.txt").write_bytes(b"first\rline")  # old-Mac CR, no final newline
    (tmp_path / "skip.md").write_text("not matched")
    text = kd.load_text(str(tmp_path / "*.txt"))
    assert text == "first\nline\nsecond\nfile\n"
    # A list keeps the given order.
    assert kd.load_text([str(tmp_path / "b.txt"), str(tmp_path / "a.txt")]) == "second\nfile\nfirst\nline"


def test_load_text_utf8_bom_dropped(tmp_path):
    (tmp_path / "bom.txt").write_bytes("\ufeffhé".encode("utf-8"))
    assert kd.load_text(str(tmp_path / "bom.txt")) == "hé"


def test_load_text_bad_encoding_names_offset_and_option(tmp_path):
    path = tmp_path / "cp.txt"
    path.write_bytes("café".encode("cp1252"))
    with pytest.raises(UserError) as e:
        kd.load_text(str(path))
    assert "not valid utf-8 at byte 3" in e.value.message
    assert "set data.encoding=cp1252" in e.value.message and "--" not in e.value.message  # the key, not a flag
    assert kd.load_text(str(path), encoding="cp1252") == "café"


@pytest.mark.parametrize("setup, expected", [
    (lambda p: (p / "empty.txt").write_text(""), "empty"),
    (lambda p: None, "no file matches"),
])
def test_load_text_errors(tmp_path, setup, expected):
    setup(tmp_path)
    target = tmp_path / ("empty.txt" if expected == "empty" else "*.nothing")
    with pytest.raises(UserError, match=expected):
        kd.load_text(str(target))


def test_load_text_missing_file(tmp_path):
    with pytest.raises(UserError, match="file not found"):
        kd.load_text(str(tmp_path / "nope.txt"))


def test_stdlib_text_nonempty_deterministic_capped():
    a = kd.load_python_stdlib_text(max_bytes=200_000)
    b = kd.load_python_stdlib_text(max_bytes=200_000)
    c = kd.load_python_stdlib_text(max_bytes=200_000, seed=1)
    assert a == b
    assert a != c
    assert 150_000 < len(a.encode("utf-8")) <= 200_000
    assert "def " in a and "import " in a
    assert "\r" not in a


def test_stdlib_files_skip_tests_and_idlelib():
    from kerasrnn.data.text import stdlib_dir, stdlib_source_files

    root = stdlib_dir()
    files = stdlib_source_files()
    assert len(files) > 100
    for f in files:
        parts = os.path.relpath(f, root).split(os.sep)
        assert not {"test", "tests", "idlelib", "site-packages", "__pycache__"} & set(parts[:-1]), f


# ------------------------------------------------------------------ labelled

def test_load_csv_by_name_and_index(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text('text,label\n"good, really",pos\nbad,neg\nfine,pos\n')
    texts, labels, names = kd.load_csv(str(path), "text", "label")
    assert texts == ["good, really", "bad", "fine"]
    assert names == ["neg", "pos"]
    assert labels == [1, 0, 1]
    assert kd.load_csv(str(path), 0, 1) == (texts, labels, names)
    assert kd.load_csv(str(path), "0", "1") == (texts, labels, names)


def test_load_tsv_without_header_and_numeric_labels(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text("10\tten\n2\ttwo\n0\tzero\n")
    texts, labels, names = kd.load_csv(str(path), 1, 0, header=False)
    assert names == ["0", "2", "10"]  # numeric order, not string order
    assert [names[i] for i in labels] == ["10", "2", "0"]
    assert texts == ["ten", "two", "zero"]


def test_load_tsv_stray_quotes_with_quoting_off(tmp_path):
    path = tmp_path / "imdb.tsv"
    path.write_text('id\tsentiment\treview\n1\t1\t"Great" film, 5" screen\n2\t0\tbad "movie\n')
    texts, labels, names = kd.load_csv(str(path), "review", "sentiment", quoting=False)
    assert texts == ['"Great" film, 5" screen', 'bad "movie']
    assert labels == [1, 0] and names == ["0", "1"]
    # With quoting on, the quotes are parsed away (or swallow fields).
    assert kd.load_csv(str(path), "review", "sentiment")[0] != texts


def test_load_csv_missing_column_lists_columns(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("review,sentiment\nx,1\ny,0\n")
    with pytest.raises(UserError) as e:
        kd.load_csv(str(path), "text", "sentiment")
    assert "'text' not found" in e.value.message
    assert "'review', 'sentiment'" in e.value.message
    with pytest.raises(UserError, match="available columns"):
        kd.load_csv(str(path), 5, "sentiment")


def test_class_folders(tmp_path):
    for cls, docs in {"pos": ["great", "loved it"], "neg": ["awful"], "unsup": ["?"]}.items():
        (tmp_path / cls).mkdir()
        for i, doc in enumerate(docs):
            (tmp_path / cls / f"{i}.txt").write_text(doc + "\n")
    texts, labels, names = kd.load_class_folders(str(tmp_path), classes=["pos", "neg"])
    assert names == ["neg", "pos"]
    assert sorted(zip(labels, texts)) == [(0, "awful"), (1, "great"), (1, "loved it")]
    assert kd.load_class_folders(str(tmp_path))[2] == ["neg", "pos", "unsup"]
    with pytest.raises(UserError, match="available"):
        kd.load_class_folders(str(tmp_path), classes=["pos", "mixed"])


def test_class_files_list_and_dict(tmp_path):
    (tmp_path / "rt-polarity.pos").write_text("a fine film\n\nwonderful\n")
    (tmp_path / "rt-polarity.neg").write_text("dull\n")
    texts, labels, names = kd.load_class_files(str(tmp_path / "rt-polarity.*"))
    assert names == ["neg", "pos"]
    assert list(zip(texts, labels)) == [("dull", 0), ("a fine film", 1), ("wonderful", 1)]
    texts2, labels2, names2 = kd.load_class_files({"good": str(tmp_path / "rt-polarity.pos"),
                                                   "bad": str(tmp_path / "rt-polarity.neg")})
    assert names2 == ["good", "bad"]
    assert list(zip(texts2, labels2)) == [("a fine film", 0), ("wonderful", 0), ("dull", 1)]


def test_class_files_named_by_stem(tmp_path):
    (tmp_path / "pos.txt").write_text("yes\n")
    (tmp_path / "neg.txt").write_text("no\n")
    assert kd.load_class_files([str(tmp_path / "pos.txt"), str(tmp_path / "neg.txt")])[2] == ["neg", "pos"]


def test_check_classes_single_class():
    kd.check_classes([0, 1, 0], ["neg", "pos"])
    with pytest.raises(UserError, match="only one class 'pos'"):
        kd.check_classes([1, 1, 1], ["neg", "pos"])
    with pytest.raises(UserError, match="out of range"):
        kd.check_classes([0, 2], ["neg", "pos"])


def test_split_examples_deterministic_and_complete():
    texts = [f"t{i}" for i in range(50)]
    labels = [i % 2 for i in range(50)]
    a = kd.split_examples(texts, labels, seed=3)
    b = kd.split_examples(texts, labels, seed=3)
    c = kd.split_examples(texts, labels, seed=4)
    assert a == b and a != c
    (trx, try_), (vax, _), (tex, _) = a
    assert (len(trx), len(vax), len(tex)) == (40, 5, 5)
    assert sorted(trx + vax + tex) == sorted(texts)
    assert all(labels[int(t[1:])] == y for t, y in zip(trx, try_))


def test_split_examples_empty_split_error():
    with pytest.raises(UserError, match="validation split empty"):
        kd.split_examples(["a", "b", "c"], [0, 1, 0], fractions=(0.8, 0.1, 0.1))
    with pytest.raises(UserError, match="summing to 1"):
        kd.split_examples(["a", "b"], [0, 1], fractions=(0.8, 0.8, 0.1))


# --------------------------------------------------------------- pipelines

def test_char_dataset_shapes_and_shift():
    ids = np.arange(1000, dtype=np.int64)  # id == position in the corpus
    ds = kd.char_dataset(ids, seq_len=10, batch_size=4, seed=1)
    batches = list(ds)
    assert len(batches) == (1000 // 11) // 4
    for x, y in batches:
        assert x.shape == (4, 10) and y.shape == (4, 10)
        assert x.dtype.name == "int32" and y.dtype.name == "int32"
        np.testing.assert_array_equal(y.numpy(), x.numpy() + 1)  # y is x shifted by one
        np.testing.assert_array_equal(np.diff(x.numpy(), axis=1), 1)  # contiguous text
    # Non-overlapping windows start at multiples of seq_len + 1, shuffled (seeded).
    starts = [int(x[i, 0]) for x, _ in batches for i in range(4)]
    assert all(s % 11 == 0 for s in starts) and len(set(starts)) == len(starts)
    assert starts != sorted(starts)
    again = [x.numpy() for x, _ in kd.char_dataset(ids, seq_len=10, batch_size=4, seed=1)]
    np.testing.assert_array_equal(np.stack(again), np.stack([x.numpy() for x, _ in batches]))


def test_char_dataset_unshuffled_windows_and_repeat():
    ids = np.arange(12)
    x, y = next(iter(kd.char_dataset(ids, seq_len=3, batch_size=2, shuffle=False)))
    np.testing.assert_array_equal(x.numpy(), [[0, 1, 2], [4, 5, 6]])
    np.testing.assert_array_equal(y.numpy(), [[1, 2, 3], [5, 6, 7]])
    assert len(list(kd.char_dataset(ids, 3, 2, repeat=True).take(5))) == 5


def test_char_dataset_too_short():
    with pytest.raises(UserError, match="text of 5 characters is shorter than one window of seq_len\\+1 = 11"):
        kd.char_dataset(np.arange(5), seq_len=10, batch_size=1)
    with pytest.raises(UserError, match="fewer than one batch of 8"):
        kd.char_dataset(np.arange(50), seq_len=10, batch_size=8)


def test_text_dataset_batches():
    texts, labels = ["a", "b", "c", "d", "e"], [0, 1, 0, 1, 1]
    batches = list(kd.text_dataset(texts, labels, batch_size=2, seed=0))
    assert [int(t.shape[0]) for t, _ in batches] == [2, 2, 1]
    got = sorted((t.decode(), int(y)) for tb, yb in batches for t, y in zip(tb.numpy(), yb.numpy()))
    assert got == sorted(zip(texts, labels))
    assert batches[0][0].dtype.name == "string" and batches[0][1].dtype.name == "int32"


def test_series_windows_values():
    values = np.arange(10, dtype=np.float32) * 2
    batches = list(kd.series_windows(values, window=3, batch_size=4, shuffle=False))
    xs = np.concatenate([x.numpy() for x, _ in batches])
    ys = np.concatenate([y.numpy() for _, y in batches])
    assert xs.shape == (7, 3, 1) and ys.shape == (7, 1) and xs.dtype == np.float32
    for i in range(7):
        np.testing.assert_array_equal(xs[i, :, 0], values[i:i + 3])
        assert ys[i, 0] == values[i + 3]
    shuffled = list(kd.series_windows(values, window=3, batch_size=4, seed=0))
    pairs = sorted((tuple(x[:, 0]), float(y[0])) for xb, yb in shuffled for x, y in zip(xb.numpy(), yb.numpy()))
    assert pairs == sorted((tuple(xs[i, :, 0]), float(ys[i, 0])) for i in range(7))
    with pytest.raises(UserError, match="too short for window=10"):
        kd.series_windows(values, window=10, batch_size=2)


# ------------------------------------------------------------------- series

def test_sine_wave_matches_seed_example():
    y = kd.sine_wave()
    x = np.linspace(0, 50, 1000)
    np.testing.assert_allclose(y, np.sin(x) * 0.5, atol=1e-6)
    assert y.dtype == np.float32
    noisy = kd.sine_wave(noise=0.1, seed=1)
    np.testing.assert_array_equal(noisy, kd.sine_wave(noise=0.1, seed=1))
    assert 0.05 < float(np.std(noisy - y)) < 0.15


def test_minmax_scaler_fit_on_train_only_round_trip():
    series = np.array([0.0, 2.0, 4.0, 10.0, 20.0], dtype=np.float32)
    train, test = series[:4], series[4:]
    scaler = kd.MinMaxScaler().fit(train)
    assert scaler.to_dict() == {"kind": "minmax", "min": 0.0, "max": 10.0, "feature_range": [-1.0, 1.0]}
    np.testing.assert_allclose(scaler.transform(train), [-1.0, -0.6, -0.2, 1.0], atol=1e-6)
    assert scaler.transform(test)[0] == pytest.approx(3.0)  # test data may leave the range
    restored = kd.MinMaxScaler.from_dict(scaler.to_dict())
    np.testing.assert_allclose(restored.inverse_transform(scaler.transform(series)), series, atol=1e-5)
    with pytest.raises(UserError, match="unsupported scaler kind"):
        kd.MinMaxScaler.from_dict({"kind": "zscore"})


def test_load_series_csv(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("month,passengers\n1949-01,112\n1949-02,118\n")
    np.testing.assert_array_equal(kd.load_series_csv(str(path), "passengers"), [112.0, 118.0])
    np.testing.assert_array_equal(kd.load_series_csv(str(path), 1), [112.0, 118.0])
    with pytest.raises(UserError, match="'1949-01' is not a number"):
        kd.load_series_csv(str(path), "month")


# --------------------------------------------------------------------- TFDS

def test_tfds_text_mocked():
    with tfds.testing.mock_data(num_examples=4):
        text = kd.load_tfds_text("tiny_shakespeare", "train")
    assert isinstance(text, str)
    pieces = text.split("\n")
    assert len(pieces) == 4 and all(pieces)
    assert set(text) <= set("abcdefghij \n")


def test_tfds_examples_mocked():
    with tfds.testing.mock_data(num_examples=6):
        texts, labels, names = kd.load_tfds_examples("imdb_reviews", "test")
    assert names == ["neg", "pos"]
    assert len(texts) == len(labels) == 6
    assert all(isinstance(t, str) for t in texts)
    assert all(isinstance(y, int) and y in (0, 1) for y in labels)


def test_tfds_unknown_name_and_feature():
    with pytest.raises(UserError, match="unknown TFDS dataset 'no_such_dataset'.*list_builders"):
        kd.load_tfds_text("no_such_dataset", "train")
    with tfds.testing.mock_data(num_examples=2):
        with pytest.raises(UserError, match="no feature 'body'.*features: text"):
            kd.load_tfds_text("tiny_shakespeare", "train", text_key="body")


def test_tfds_offline_fails_fast(tmp_path, monkeypatch):
    calls = []

    def offline(hosts, timeout=3.0):
        calls.append(hosts)
        return False

    monkeypatch.setattr(tfds_source, "network_available", offline)
    start = time.monotonic()
    with pytest.raises(UserError) as e:
        kd.load_tfds_text("tiny_shakespeare", "train", data_dir=str(tmp_path / "tfds"))
    assert time.monotonic() - start < 30  # not the minutes of TFDS' retries
    assert calls == [[("raw.githubusercontent.com", 443)]]
    msg = e.value.message
    assert "not prepared" in msg and "TFDS_DATA_DIR" in msg
    assert "kerasrnn data prepare tiny_shakespeare --manual-dir" in msg
    assert not (tmp_path / "tfds" / "tiny_shakespeare" / "1.0.0").exists()


def test_tfds_data_dir_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "env_dir"))
    monkeypatch.setattr(tfds_source, "network_available", lambda hosts, timeout=3.0: False)
    with pytest.raises(UserError, match=str(tmp_path / "env_dir")):
        kd.load_tfds_examples("imdb_reviews", "train")


def test_prepare_tfds_from_manual_dir(tmp_path, monkeypatch):
    """Real preparation of tiny_shakespeare from a local input.txt; no network touched."""
    monkeypatch.setattr(tfds_source, "network_available", lambda *a, **k: pytest.fail("network checked"))
    manual = tmp_path / "manual"
    manual.mkdir()
    # TFDS checks the checksum of manual files, so a fake input.txt must fail cleanly.
    (manual / "input.txt").write_text("not shakespeare\n")
    with pytest.raises(UserError, match="wrong checksum|NonMatchingChecksum"):
        kd.prepare_tfds("tiny_shakespeare", manual_dir=str(manual), data_dir=str(tmp_path / "d"))


def test_prepare_tfds_missing_manual_file_offline(tmp_path, monkeypatch):
    monkeypatch.setattr(tfds_source, "network_available", lambda hosts, timeout=3.0: False)
    (tmp_path / "m").mkdir()
    with pytest.raises(UserError, match="lacks input.txt"):
        kd.prepare_tfds("tiny_shakespeare", manual_dir=str(tmp_path / "m"), data_dir=str(tmp_path / "d"))
    with pytest.raises(UserError, match="not a directory"):
        kd.prepare_tfds("tiny_shakespeare", manual_dir=str(tmp_path / "nope"))


# ---------------------------------------------------------------------- CLI

def _cli(*args):
    from kerasrnn.cli import main

    return CliRunner().invoke(main, ["data", *args])


def test_cli_inspect_text_and_csv(tmp_path):
    (tmp_path / "t.txt").write_text("abca\nb\n")
    result = _cli("inspect", str(tmp_path / "t.txt"))
    assert result.exit_code == 0, result.output
    assert "characters: 7" in result.output
    assert "distinct characters: 4" in result.output
    (tmp_path / "d.csv").write_text("text,label\nx,pos\ny,neg\nz,pos\n")
    result = _cli("inspect", str(tmp_path / "d.csv"), "--text-column", "text", "--label-column", "label")
    assert result.exit_code == 0, result.output
    assert "neg: 1" in result.output and "pos: 2" in result.output
    result = _cli("inspect", str(tmp_path / "d.csv"))
    assert "columns: text, label" in result.output


def test_cli_inspect_error_is_one_line(tmp_path):
    (tmp_path / "cp.txt").write_bytes("naïve".encode("cp1252"))
    result = _cli("inspect", str(tmp_path / "cp.txt"))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert "--encoding cp1252" in lines[0]
    assert "Traceback" not in result.output
