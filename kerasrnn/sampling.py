"""Sampling text from a char-level generation model: one sampler for every runtime.

A generation model is sampled through a **step function**
``(tokens (B,), states) -> (logits (B, V), new states)``: the Keras streaming
step model (`KerasStep`, `kerasrnn.streaming.build_step_model`), an exported
SavedModel's ``step`` signature or a LiteRT step model
(`kerasrnn.export.generation`). `sample_loop` is the one sampling algorithm,
written with TensorFlow ops: traced into one (XLA-compiled) `tf.function` for
Keras, into the SavedModel's ``generate`` signatures, or run eagerly (a Python
loop) around the LiteRT interpreter. The seed text is fed once, then every new
character costs exactly one step — the prefix is never re-run.

Per step, with logits :math:`z` and temperature :math:`\\tau`:

.. math:: p = \\mathrm{softmax}(\\mathrm{top\\_p}(\\mathrm{top\\_k}(z / \\tau)))

then a categorical draw with `tf.random.stateless_categorical` seeded by
``(seed, step)``, so the same seed gives the same text; ``temperature = 0`` is
greedy (argmax). XLA's stateless RNG differs from the eager kernel: the
default XLA-compiled Keras sampler draws other numbers for the same seed than
``jit_compile=False``, the SavedModel and LiteRT (which agree with each other).

Seed characters missing from the vocabulary follow one policy everywhere
(`UNKNOWN_POLICIES`): ``"error"`` raises a `UserError` listing them,
``"skip"`` drops them.

>>> sampler = Sampler(model, vocab_chars)  # doctest: +SKIP
>>> sampler.generate("ROMEO:", length=200, num_samples=2, temperature=0.8, seed=1)  # doctest: +SKIP
['ROMEO:\\nWhat ...', 'ROMEO:\\nI ...']
"""

from __future__ import annotations

import numpy as np

from kerasrnn.errors import UserError

# TensorFlow is imported lazily (`_tf`): `kerasrnn generate --help` and the light
# helpers (`encode`, `decode`, `validate_options`) must not pay its import.

UNKNOWN_POLICIES = ("error", "skip")

#: The sampling options a generation recipe's ``[eval]`` sets, and the values ``kerasrnn generate`` uses
#: for a run or manifest that lacks one (resolved recipes always have all five). They equal
#: `GenerationEval`'s defaults except temperature: 1.0 here (what ``generate`` always fell back to),
#: 0.8 in the schema. ``kerasrnn generate`` takes each option it is not given from the run.
SAMPLING_FALLBACKS = {"seed_text": "\n", "sample_length": 300, "temperature": 1.0, "top_k": 0, "top_p": 1.0}


def sampling_defaults(defaults: dict, **options) -> dict:
    """`options` with each one left unset (None) taken from the run's recipe `defaults`.

    `defaults` is the recipe's ``[eval]`` table (a run's ``run.json``) or an
    export manifest's ``sampling_defaults``, so ``kerasrnn generate`` samples
    like the run's own printed sample unless told otherwise. The keys are
    `SAMPLING_FALLBACKS`'.

    >>> sampling_defaults({"temperature": 0.8, "top_p": 0.95}, seed_text="def ", temperature=None, top_p=None)
    {'seed_text': 'def ', 'temperature': 0.8, 'top_p': 0.95}
    """
    return {k: defaults.get(k, SAMPLING_FALLBACKS[k]) if v is None else v for k, v in options.items()}


def _tf():
    import tensorflow as tf  # lazy: heavy import

    return tf


def encode(text: str, chars: list[str], unknown: str = "error") -> list[int]:
    """Map `text` to token ids of the vocabulary `chars` (index = id).

    Args:
        text: the seed text.
        chars: the vocabulary (``vocab.json["chars"]``).
        unknown: ``"error"`` (default): characters missing from the vocabulary
            raise `UserError` naming them; ``"skip"``: they are dropped.

    >>> encode("aba", ["a", "b"])
    [0, 1, 0]
    >>> encode("abz", ["a", "b"], unknown="skip")
    [0, 1]
    """
    if unknown not in UNKNOWN_POLICIES:
        raise UserError(f"unknown must be one of {', '.join(UNKNOWN_POLICIES)}, got {unknown!r}")
    index = {c: i for i, c in enumerate(chars)}
    missing = sorted({c for c in text if c not in index})
    if missing and unknown == "error":
        shown = ", ".join(repr(c) for c in missing[:20])
        raise UserError(f"seed_text has {len(missing)} character(s) not in the model's vocabulary: {shown}; "
                        "change seed_text or set unknown='skip' to drop them")
    return [index[c] for c in text if c in index]


def decode(ids, chars: list[str]) -> str:
    """Token ids back to text.

    >>> decode([1, 0], ["a", "b"])
    'ba'
    """
    return "".join(chars[int(i)] for i in ids)


def validate_options(length: int, num_samples: int, temperature: float, top_k: int, top_p: float) -> None:
    """`UserError` for out-of-range sampling options (the message names the keyword argument).

    >>> validate_options(10, 1, -1.0, 0, 1.0)
    Traceback (most recent call last):
    kerasrnn.errors.KerasRNNError: temperature must be >= 0 (0 = greedy), got -1.0
    """
    if length < 1:
        raise UserError(f"length must be at least 1, got {length}")
    if num_samples < 1:
        raise UserError(f"num_samples must be at least 1, got {num_samples}")
    if not np.isfinite(temperature) or temperature < 0:
        raise UserError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
    if top_k < 0:
        raise UserError(f"top_k must be >= 0 (0 = off), got {top_k}")
    if not 0 < top_p <= 1:
        raise UserError(f"top_p must be in (0, 1] (1 = off), got {top_p}")


def filter_logits(logits, top_k=0, top_p=1.0):
    """Keep the `top_k` largest logits, then the smallest set whose probability reaches `top_p`.

    Filtered-out entries become ``-inf``. ``top_k=0`` and ``top_p>=1`` disable a filter.
    The most likely token is always kept. Works inside XLA (dynamic `top_k`).

    Args:
        logits: (B, V) float tensor (already divided by the temperature).
        top_k: number of tokens kept (0 = all; default 0).
        top_p: nucleus probability mass in (0, 1] (1 = all; default 1.0).

    >>> filter_logits(np.log([[0.5, 0.3, 0.2]]), top_p=0.6).numpy().round(2)  # doctest: +SKIP
    array([[-0.69, -1.2 , -inf]], dtype=float32)
    """
    tf = _tf()
    logits = tf.convert_to_tensor(logits, tf.float32)
    vocab = tf.shape(logits)[-1]
    top_k = tf.convert_to_tensor(top_k, tf.int32)
    top_p = tf.convert_to_tensor(top_p, tf.float32)
    neg_inf = tf.constant(-np.inf, tf.float32)
    # top-k: drop everything below the k-th largest logit
    k = tf.where(top_k > 0, tf.minimum(top_k, vocab), vocab)
    sorted_logits = tf.sort(logits, axis=-1, direction="DESCENDING")
    kth = tf.gather(sorted_logits, tf.reshape(k - 1, [1]), axis=-1)
    logits = tf.where(logits < kth, neg_inf, logits)
    # top-p: keep sorted tokens while the mass *before* them is < top_p
    sorted_logits = tf.sort(logits, axis=-1, direction="DESCENDING")
    probs = tf.nn.softmax(sorted_logits, axis=-1)
    mass_before = tf.cumsum(probs, axis=-1, exclusive=True)
    keep = tf.logical_or(mass_before < top_p, tf.range(vocab)[None, :] == 0)
    threshold = tf.reduce_min(tf.where(keep, sorted_logits, np.inf), axis=-1, keepdims=True)
    return tf.where(logits < threshold, neg_inf, logits)


def sample_loop(step, seed_ids, states, length, temperature, top_k, top_p, seed, greedy):
    """The sampling algorithm: feed `seed_ids`, then draw `length` tokens per row.

    Runs traced (inside a `tf.function` or a SavedModel signature) or eagerly
    (then `tf.while_loop` is a Python loop, as needed for the LiteRT step).

    Args:
        step: a step function ``(tokens (B,) int32, states list) -> (logits (B, V), states list)``.
        seed_ids: int32 (S,) token ids of the seed text, S >= 1.
        states: initial states (list of (B, units) float32), usually zeros.
        length: int32 scalar, new tokens per row.
        temperature: float32 scalar > 0 (ignored when `greedy`).
        top_k: int32 scalar (0 = off). top_p: float32 scalar (1 = off).
        seed: int32 scalar random seed; step ``i`` draws with seed ``(seed, i)``.
        greedy: bool scalar (Python or tensor): argmax instead of a draw.

    Returns:
        int32 (B, length) new token ids.
    """
    tf = _tf()
    seed_ids = tf.convert_to_tensor(seed_ids, tf.int32)
    states = [tf.convert_to_tensor(s, tf.float32) for s in states]
    batch = tf.shape(states[0])[0]
    n_seed = tf.shape(seed_ids)[0]
    length = tf.convert_to_tensor(length, tf.int32)

    def call(token, states):
        logits, new = step(token, states)
        new = [tf.ensure_shape(tf.convert_to_tensor(n, tf.float32), s.shape) for n, s in zip(new, states)]
        return tf.convert_to_tensor(logits, tf.float32), new

    def prefix_body(i, states):  # all seed characters but the last: their logits are not needed
        return i + 1, call(tf.fill([batch], seed_ids[i]), states)[1]

    _, states = tf.while_loop(lambda i, s: i < n_seed - 1, prefix_body, (tf.constant(0), states))

    def body(i, token, states, out):
        logits, states = call(token, states)
        best = tf.argmax(logits, axis=-1, output_type=tf.int32)
        if isinstance(greedy, bool) and greedy:
            nxt = best
        else:
            filtered = filter_logits(logits / temperature, top_k, top_p)
            drawn = tf.random.stateless_categorical(filtered, 1, seed=tf.stack([seed, i]), dtype=tf.int32)[:, 0]
            nxt = drawn if isinstance(greedy, bool) else tf.where(greedy, best, drawn)
        nxt = tf.ensure_shape(nxt, token.shape)
        return i + 1, nxt, states, out.write(i, nxt)

    first = tf.fill([batch], seed_ids[n_seed - 1])
    out = tf.TensorArray(tf.int32, size=length)
    _, _, _, out = tf.while_loop(lambda i, *_: i < length, body, (tf.constant(0), first, states, out),
                                 maximum_iterations=length)
    return tf.transpose(out.stack())


def encode_in_graph(text, chars: list[str], unknown: str = "error"):
    """`encode` as TensorFlow ops, for the SavedModel ``generate`` signatures (same policy).

    Args:
        text: string scalar tensor.
        chars: the vocabulary.
        unknown: ``"error"`` (the signature fails with an InvalidArgumentError
            naming the policy) or ``"skip"`` (unknown characters are dropped).

    Returns:
        int32 (S,) ids; the signature fails if none is left.
    """
    tf = _tf()
    vocab = tf.constant(list(chars))
    pieces = tf.strings.unicode_split(text, "UTF-8")
    hits = tf.equal(pieces[:, None], vocab[None, :])
    known = tf.reduce_any(hits, axis=1)
    checks = []
    if unknown == "error":
        checks.append(tf.debugging.assert_equal(
            tf.reduce_all(known), True,
            message="seed has characters not in the model's vocabulary (unknown_char_policy 'error')"))
    with tf.control_dependencies(checks):
        ids = tf.boolean_mask(tf.argmax(tf.cast(hits, tf.int32), axis=1, output_type=tf.int32), known)
    with tf.control_dependencies([tf.debugging.assert_positive(
            tf.size(ids), message="seed has no character of the model's vocabulary")]):
        return tf.identity(ids)


class KerasStep:
    """The Keras streaming step model as a step function (traceable: runs inside `tf.function`).

    Args:
        model: the trained generation model (contract in `kerasrnn.streaming.build_step_model`).
        batch_size: fix the step model's batch (default None = any).
    """

    traceable = True

    def __init__(self, model, batch_size: int | None = None):
        from kerasrnn.streaming import build_step_model  # lazy: imports Keras; this module stays light

        self.model = build_step_model(model, batch_size=batch_size)
        self.state_sizes = [int(t.shape[-1]) for t in self.model.inputs[1:]]

    def initial_states(self, batch: int) -> list:
        return [np.zeros((batch, s), np.float32) for s in self.state_sizes]

    def __call__(self, tokens, states):
        tf = _tf()
        inputs = [tf.convert_to_tensor(tokens, tf.int32), *(tf.convert_to_tensor(s, tf.float32) for s in states)]
        out = self.model(inputs, training=False)
        return out[0], list(out[1:])


class Sampler:
    """Sample text through a step function (see the module docstring).

    Args:
        model: the trained generation model, or a step function (an object with
            ``state_sizes``, ``initial_states(batch)``, ``traceable`` and
            ``__call__(tokens, states) -> (logits, states)``, e.g.
            `kerasrnn.export.generation.TFLiteStep`).
        chars: its vocabulary (index = token id).
        jit_compile: compile the sampling loop with XLA (default True; traceable
            steps only).

    >>> Sampler(model, chars).generate("ab", length=5, temperature=0)  # doctest: +SKIP
    ['abcdefg']
    """

    def __init__(self, model, chars: list[str], jit_compile: bool = True):
        self.step = model if hasattr(model, "initial_states") else KerasStep(model)
        self.chars = list(chars)
        if self.step.traceable:
            self._loop = _tf().function(self._traced_loop, jit_compile=jit_compile, reduce_retracing=True)
        else:
            self._loop = self._traced_loop

    @property
    def step_model(self):
        """The Keras step model (for a `KerasStep`)."""
        return self.step.model

    def _traced_loop(self, seed_ids, states, length, temperature, top_k, top_p, seed, greedy: bool):
        return sample_loop(self.step, seed_ids, states, length, temperature, top_k, top_p, seed, greedy)

    def sample_ids(self, seed_ids: list[int], length: int, num_samples: int = 1, temperature: float = 1.0,
                   top_k: int = 0, top_p: float = 1.0, seed: int = 0) -> np.ndarray:
        """Token ids (num_samples, length) that follow `seed_ids` (see `generate`)."""
        tf = _tf()
        if not seed_ids:
            raise UserError("seed_text is empty (after dropping unknown characters); give at least one "
                            "character that is in the vocabulary")
        validate_options(length, num_samples, temperature, top_k, top_p)
        states = [tf.constant(s) for s in self.step.initial_states(num_samples)]
        length = int(length) if self.step.traceable else tf.constant(int(length), tf.int32)
        ids = self._loop(tf.constant(seed_ids, tf.int32), states, length,
                         tf.constant(max(temperature, 1e-6), tf.float32), tf.constant(top_k, tf.int32),
                         tf.constant(top_p, tf.float32), tf.constant(seed, tf.int32), temperature <= 0)
        return np.asarray(ids)

    def generate(self, seed_text: str, length: int = 200, num_samples: int = 1, temperature: float = 1.0,
                 top_k: int = 0, top_p: float = 1.0, seed: int = 0, unknown: str = "error") -> list[str]:
        """Sample `num_samples` continuations of `seed_text`; returns seed + continuation strings.

        Args:
            seed_text: text the samples start with (fed through the model once).
            length: new characters per sample (default 200).
            num_samples: samples drawn in one batch (default 1).
            temperature: softmax temperature; 0 = greedy argmax (default 1.0).
            top_k: keep only the k most likely characters, 0 = off (default 0).
            top_p: nucleus sampling mass, 1.0 = off (default 1.0).
            seed: random seed; the same seed gives the same samples (default 0).
            unknown: policy for seed characters not in the vocabulary: "error" (default) or "skip".
        """
        ids = encode(seed_text, self.chars, unknown)
        kept = decode(ids, self.chars)
        out = self.sample_ids(ids, length, num_samples, temperature, top_k, top_p, seed)
        return [kept + decode(row, self.chars) for row in out]
