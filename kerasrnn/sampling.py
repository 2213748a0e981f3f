"""Sampling text from a char-level generation model, one step per character.

The trained sequence model is turned into a streaming step model
(`kerasrnn.streaming.build_step_model`): the seed text is fed through it once,
then every new character costs exactly one step of each recurrent layer — the
prefix is never re-run. The whole loop (seed + new characters, for a batch of
``num_samples``) runs inside one XLA-compiled `tf.function`, about 5x faster
than one Python call per character.

Per step: logits / temperature → top-k filter → top-p (nucleus) filter →
categorical draw with `tf.random.stateless_categorical`, seeded by
``(seed, step)``, so the same ``--seed`` gives the same text.
``temperature=0`` means greedy (argmax).

Seed characters that are not in the vocabulary: policy ``"error"`` (default)
raises a `UserError` listing them; ``"skip"`` drops them (and says so).

>>> sampler = Sampler(model, vocab_chars)  # doctest: +SKIP
>>> sampler.generate("ROMEO:", length=200, num_samples=2, temperature=0.8, seed=1)  # doctest: +SKIP
['ROMEO:\\nWhat ...', 'ROMEO:\\nI ...']
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from kerasrnn.errors import UserError

UNKNOWN_POLICIES = ("error", "skip")


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
        raise UserError(f"unknown-character policy must be one of {UNKNOWN_POLICIES}, got {unknown!r}")
    index = {c: i for i, c in enumerate(chars)}
    missing = sorted({c for c in text if c not in index})
    if missing and unknown == "error":
        shown = ", ".join(repr(c) for c in missing[:20])
        raise UserError(f"seed text has {len(missing)} character(s) not in the model's vocabulary: {shown}; "
                        "change the seed text or pass --unknown skip to drop them")
    return [index[c] for c in text if c in index]


def decode(ids, chars: list[str]) -> str:
    """Token ids back to text.

    >>> decode([1, 0], ["a", "b"])
    'ba'
    """
    return "".join(chars[int(i)] for i in ids)


def filter_logits(logits, top_k: int = 0, top_p: float = 1.0):
    """Keep the `top_k` largest logits, then the smallest set whose probability reaches `top_p`.

    Filtered-out entries become ``-inf``. ``top_k=0`` and ``top_p>=1`` disable a filter.
    The most likely token is always kept. Works inside XLA (dynamic `top_k`).

    Args:
        logits: (B, V) float tensor (already divided by the temperature).
        top_k: number of tokens kept (0 = all).
        top_p: nucleus probability mass in (0, 1] (1 = all).

    >>> filter_logits(np.log([[0.5, 0.3, 0.2]]), top_p=0.6).numpy().round(2)  # doctest: +SKIP
    array([[-0.69, -1.2 , -inf]], dtype=float32)
    """
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


class Sampler:
    """Streaming sampler for a generation model (see module docstring).

    Args:
        model: the trained generation model (contract in `kerasrnn.rundir`).
        chars: its vocabulary (index = token id).
        jit_compile: compile the sampling loop with XLA (default True).
    """

    def __init__(self, model, chars: list[str], jit_compile: bool = True):
        from kerasrnn.streaming import build_step_model, initial_states

        self.chars = list(chars)
        self.step_model = build_step_model(model)
        self._initial_states = initial_states
        self._loop = tf.function(self._sample_loop, jit_compile=jit_compile, reduce_retracing=True)

    def _sample_loop(self, seed_ids, states, length: int, temperature, top_k, top_p, seed, greedy: bool):
        batch = tf.shape(states[0])[0]
        n_seed = tf.shape(seed_ids)[0]

        def step(token, states):
            outputs = self.step_model([token, *states], training=False)
            new_states = [tf.ensure_shape(n, s.shape) for n, s in zip(outputs[1:], states)]
            return outputs[0], new_states

        # feed all seed characters but the last: their outputs are not needed
        def prefix_body(i, states):
            token = tf.fill([batch], seed_ids[i])
            _, states = step(token, states)
            return i + 1, states

        _, states = tf.while_loop(lambda i, s: i < n_seed - 1, prefix_body, (tf.constant(0), states))

        def body(i, token, states, out):
            logits, states = step(token, states)
            if greedy:
                nxt = tf.argmax(logits, axis=-1, output_type=tf.int32)
            else:
                logits = filter_logits(logits / temperature, top_k, top_p)
                nxt = tf.random.stateless_categorical(logits, 1, seed=tf.stack([seed, i]),
                                                      dtype=tf.int32)[:, 0]
            nxt = tf.ensure_shape(nxt, token.shape)
            return i + 1, nxt, states, out.write(i, nxt)

        first = tf.fill([batch], seed_ids[n_seed - 1])
        out = tf.TensorArray(tf.int32, size=length)
        _, _, _, out = tf.while_loop(lambda i, *_: i < length, body,
                                     (tf.constant(0), first, states, out), maximum_iterations=length)
        return tf.transpose(out.stack())

    def sample_ids(self, seed_ids: list[int], length: int, num_samples: int = 1, temperature: float = 1.0,
                   top_k: int = 0, top_p: float = 1.0, seed: int = 0) -> np.ndarray:
        """Token ids (num_samples, length) that follow `seed_ids` (see `generate`)."""
        if not seed_ids:
            raise UserError("the seed text is empty (after dropping unknown characters); give at least one "
                            "character that is in the vocabulary")
        validate_options(length, num_samples, temperature, top_k, top_p)
        states = [tf.constant(s) for s in self._initial_states(self.step_model, num_samples)]
        ids = self._loop(tf.constant(seed_ids, tf.int32), states, int(length),
                         tf.constant(max(temperature, 1e-6), tf.float32), tf.constant(top_k, tf.int32),
                         tf.constant(top_p, tf.float32), tf.constant(seed, tf.int32), temperature <= 0)
        return ids.numpy()

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
            unknown: policy for seed characters not in the vocabulary: "error" or "skip".
        """
        ids = encode(seed_text, self.chars, unknown)
        kept = decode(ids, self.chars)
        out = self.sample_ids(ids, length, num_samples, temperature, top_k, top_p, seed)
        return [kept + decode(row, self.chars) for row in out]


def validate_options(length: int, num_samples: int, temperature: float, top_k: int, top_p: float) -> None:
    """`UserError` for out-of-range sampling options."""
    if length < 1:
        raise UserError(f"--length must be at least 1, got {length}")
    if num_samples < 1:
        raise UserError(f"--num-samples must be at least 1, got {num_samples}")
    if temperature < 0:
        raise UserError(f"--temperature must be >= 0 (0 = greedy), got {temperature}")
    if top_k < 0:
        raise UserError(f"--top-k must be >= 0 (0 = off), got {top_k}")
    if not 0 < top_p <= 1:
        raise UserError(f"--top-p must be in (0, 1] (1 = off), got {top_p}")
