"""Char-level text generation (char-rnn): build, train, evaluate, sample.

Vocabulary = the sorted set of characters of the *training* text, saved as
``vocab.json`` (index = token id). Validation characters missing from it are
dropped (and counted). Model: ``tokens`` → ``Embedding`` → N kerasrnn recurrent
layers (``rnn_i``, dropout between) → ``Dense(V, name="logits")``.

Metrics on the validation text: loss in nats/char, bits/char = nats / ln 2,
perplexity = exp(nats). A sample from ``[eval].seed_text`` is printed at the end
and saved in ``metrics.json``.
"""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np

from kerasrnn import atomic, data, rundir, train
from kerasrnn.errors import UserError
from kerasrnn.recipes import RunConfig, section
from kerasrnn.sampling import UNKNOWN_POLICIES, Sampler, encode, validate_options
from kerasrnn.tasks.common import canonical_cell, check_model_config, print_metrics, rnn_stack, round_floats
from kerasrnn.tasks.generation_schema import SCHEMA, SOURCES, CharModel, GenerationData, GenerationEval  # noqa: F401


# ----------------------------------------------------------------------------- data


def load_texts(cfg: GenerationData, seed: int) -> tuple[str, str]:
    """(train_text, val_text) for the configured source."""

    if cfg.source == "tfds":
        data_dir = cfg.data_dir or None
        return (data.load_tfds_text(cfg.name, cfg.train_split, cfg.text_key, data_dir),
                data.load_tfds_text(cfg.name, cfg.val_split, cfg.text_key, data_dir))
    if cfg.source == "text":
        if not cfg.paths:
            raise UserError("data.paths is empty: give the text file(s) to train on, "
                            "e.g. --set data.paths=book.txt")
        text = data.load_text(cfg.paths, cfg.encoding)
    elif cfg.source == "python_stdlib":
        text = data.load_python_stdlib_text(cfg.max_bytes, seed)
    else:
        raise UserError(f"data.source {cfg.source!r} is not valid for generation; valid sources: {', '.join(SOURCES)}")
    if not 0 < cfg.val_fraction < 1:
        raise UserError(f"data.val_fraction must be in (0, 1), got {cfg.val_fraction}")
    cut = int(len(text) * (1 - cfg.val_fraction))
    return text[:cut], text[cut:]


def build_vocab(text: str) -> list[str]:
    """Sorted set of characters of `text` (index = token id).

    >>> build_vocab("hello")
    ['e', 'h', 'l', 'o']
    """
    return sorted(set(text))


def to_ids(text: str, chars: list[str]) -> tuple[np.ndarray, int]:
    """Token ids of `text`, dropping characters not in `chars`; returns (ids, n_dropped)."""
    index = {c: i for i, c in enumerate(chars)}
    ids = np.fromiter((index[c] for c in text if c in index), dtype=np.int32)
    return ids, len(text) - len(ids)


# ----------------------------------------------------------------------------- model


def build_model(vocab_size: int, cfg: CharModel) -> keras.Model:
    """The generation model of the run-directory contract.

    >>> build_model(65, CharModel(units=32, num_layers=1)).output.shape  # doctest: +SKIP
    (None, None, 65)
    """
    check_model_config(cfg.units, cfg.num_layers, cfg.dropout)
    tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(vocab_size, cfg.embedding_dim, name="embedding")(tokens)
    x = rnn_stack(x, cfg.cell, cfg.units, cfg.num_layers, cfg.dropout)
    logits = keras.layers.Dense(vocab_size, name="logits")(x)
    return keras.Model(tokens, logits, name="char_model")


def nats_metrics(nats: float) -> dict:
    """loss in nats/char → bits/char (nats / ln 2) and perplexity (exp(nats)).

    >>> nats_metrics(math.log(2))["val_bits_per_char"]
    1.0
    """
    return {"val_loss_nats_per_char": nats, "val_bits_per_char": nats / math.log(2),
            "val_perplexity": math.exp(nats)}


# ----------------------------------------------------------------------------- run


def check_text_length(name: str, n_chars: int, seq_len: int, batch_size: int) -> None:
    """Raise a `UserError` unless `n_chars` characters make one batch of ``seq_len + 1`` windows.

    Checked before anything else about the text, so a too-short corpus is
    reported as such (not as, say, a seed text with characters it lacks).
    """
    need = (seq_len + 1) * batch_size
    if n_chars < need:
        raise UserError(f"the {name} text has {n_chars:,} characters, fewer than one batch of train.batch_size = "
                        f"{batch_size} windows of data.seq_len+1 = {seq_len + 1} ({need:,} characters); "
                        "use more text, or a smaller train.batch_size or data.seq_len")


def run(recipe: dict, run_dir: Path, resume: bool = False, **lifecycle) -> dict:
    """Train a char model from a resolved recipe and write its run directory.

    Args:
        recipe: the resolved recipe (`kerasrnn.recipes.load_recipe`).
        run_dir: the run directory to write.
        resume: continue an interrupted (or finished) run.
        **lifecycle: ``restart``, ``overwrite``, ``origin`` of `kerasrnn.rundir.lifecycle`.

    Returns:
        The metrics dict (also written to ``metrics.json``).
    """

    run_cfg = section(recipe, "run", RunConfig)
    data_cfg = section(recipe, "data", GenerationData)
    model_cfg = section(recipe, "model", CharModel)
    train_cfg = section(recipe, "train", train.TrainConfig)
    eval_cfg = section(recipe, "eval", GenerationEval)
    cell = canonical_cell(model_cfg.cell)
    check_model_config(model_cfg.units, model_cfg.num_layers, model_cfg.dropout)
    if eval_cfg.unknown_char_policy not in UNKNOWN_POLICIES:
        raise UserError(f"eval.unknown_char_policy must be one of {UNKNOWN_POLICIES}, "
                        f"got {eval_cfg.unknown_char_policy!r}")
    validate_options(eval_cfg.sample_length, 1, eval_cfg.temperature, eval_cfg.top_k, eval_cfg.top_p)
    if data_cfg.seq_len < 1:
        raise UserError(f"data.seq_len must be at least 1, got {data_cfg.seq_len}")
    train.set_seeds(run_cfg.seed)

    train_text, val_text = load_texts(data_cfg, run_cfg.seed)
    with rundir.lifecycle(recipe, run_dir, resume=resume, **lifecycle) as work:
        vocab_path = work / "vocab.json"
        if resume and vocab_path.exists():  # keep token ids stable across --resume
            chars = rundir.read_json(vocab_path)["chars"]
        else:
            chars = build_vocab(train_text)
            rundir.write_json(vocab_path, {"chars": chars, "unknown_char_policy": eval_cfg.unknown_char_policy})
        train_ids, _ = to_ids(train_text, chars)
        val_ids, dropped = to_ids(val_text, chars)
        if dropped:
            print(f"Note: {dropped} validation character(s) are not in the training vocabulary and were dropped.")
        seq_len, bs = data_cfg.seq_len, train_cfg.batch_size
        for name, ids in (("training", train_ids), ("validation", val_ids)):
            check_text_length(name, len(ids), seq_len, bs)
        try:  # the closing sample must work: check its seed text before training
            encode(eval_cfg.seed_text, chars, eval_cfg.unknown_char_policy)
        except UserError as e:
            raise UserError(e.message.replace("unknown='skip'", 'eval.unknown_char_policy = "skip"')
                            .replace("seed_text", "eval.seed_text")) from None
        print(f"Text: {len(train_ids):,} training / {len(val_ids):,} validation characters, "
              f"vocabulary {len(chars)}")

        train_ds = data.char_dataset(train_ids, seq_len, bs, shuffle=True, seed=run_cfg.seed,
                                     repeat=train_cfg.steps_per_epoch > 0)
        val_ds = data.char_dataset(val_ids, seq_len, bs, shuffle=False, seed=run_cfg.seed, repeat=False)

        model = build_model(len(chars), model_cfg)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        train.compile_model(model, train_cfg, loss, ["sparse_categorical_accuracy"], cell)
        if train_cfg.verbose:
            model.summary()
        fit_info = train.fit(model, train_ds, val_ds, train_cfg, work)

        nats = float(model.evaluate(val_ds, verbose=0, return_dict=True)["loss"])
        metrics = {**nats_metrics(nats), **fit_info, "vocab_size": len(chars),
                   "train_chars": int(len(train_ids)), "val_chars": int(len(val_ids))}

        sampler = Sampler(model, chars)
        sample = sampler.generate(eval_cfg.seed_text, eval_cfg.sample_length, 1, eval_cfg.temperature,
                                  eval_cfg.top_k, eval_cfg.top_p, seed=run_cfg.seed,
                                  unknown=eval_cfg.unknown_char_policy)[0]
        metrics["sample"] = sample

        _write_samples(work / "samples.npz", val_ids, seq_len)
        rundir.save_model(model, work / "model.keras")
        metrics = round_floats(metrics)
        rundir.write_json(work / "metrics.json", metrics)
        rundir.write_info(work, recipe, cell=cell, units=model_cfg.units, num_layers=model_cfg.num_layers,
                          seq_len=seq_len, vocab_size=len(chars))

    print_metrics(f"Validation ({run_dir}):", {k: metrics[k] for k in
                                               ("val_loss_nats_per_char", "val_bits_per_char", "val_perplexity")})
    print(f"\nSample (temperature {eval_cfg.temperature}):\n{sample}\n")
    print(f"Run directory: {run_dir}")
    return metrics


def _write_samples(path: Path, ids: np.ndarray, seq_len: int, limit: int = 256) -> None:
    """``samples.npz``: up to `limit` validation windows ``x`` (N, T) and next tokens ``y``."""

    n = min(limit, (len(ids) - 1) // seq_len)
    starts = np.arange(n) * seq_len
    x = np.stack([ids[s:s + seq_len] for s in starts]).astype(np.int32)
    y = np.stack([ids[s + 1:s + seq_len + 1] for s in starts]).astype(np.int32)
    with atomic.atomic_file(path, suffix=".npz") as tmp:
        np.savez(tmp, x=x, y=y)
