"""The recipe schema of char-level generation: its ``[data]``, ``[model]`` and ``[eval]`` keys.

Kept apart from `kerasrnn.tasks.generation` so that resolving a recipe
(``kerasrnn recipe show``) does not import TensorFlow. Every numeric key declares
its limits with `kerasrnn.recipes.setting`.

>>> SCHEMA["model"]().units
256
"""

from __future__ import annotations

from dataclasses import dataclass

from kerasrnn.recipes import RunConfig, TrainConfig, setting

SOURCES = ("tfds", "text", "python_stdlib")
UNKNOWN_CHAR_POLICIES = ("error", "skip")


@dataclass
class GenerationData:
    """``[data]`` for generation. Keys not used by the chosen `source` are ignored.

    Attributes:
        source: "tfds", "text" (local files) or "python_stdlib" (default "text").
        paths: text files, concatenated (source "text").
        encoding: text encoding of `paths` (default "utf-8").
        name: TFDS dataset name (default "tiny_shakespeare").
        train_split: TFDS training split (default "train").
        val_split: TFDS validation split (default "validation").
        text_key: TFDS feature holding the text (default "text").
        data_dir: TFDS data directory, "" = TFDS default / $TFDS_DATA_DIR.
        max_bytes: cap on the Python stdlib source read, >= 1 (default 3,000,000).
        val_fraction: share of the text held out (its end) for validation,
            sources "text" and "python_stdlib", in (0, 1) (default 0.05).
        seq_len: characters per training window, >= 2 (default 100).
    """

    source: str = setting("text", choices=SOURCES)
    paths: list[str] = setting(default_factory=list)
    encoding: str = "utf-8"
    name: str = "tiny_shakespeare"
    train_split: str = "train"
    val_split: str = "validation"
    text_key: str = "text"
    data_dir: str = ""
    max_bytes: int = setting(3_000_000, ge=1)
    val_fraction: float = setting(0.05, gt=0, lt=1)
    seq_len: int = setting(100, ge=2)


@dataclass
class CharModel:
    """``[model]``: Embedding → ``num_layers`` × ``cell(units)`` → Dense(V).

    Attributes:
        cell: "lstm", "gru" or "simple_rnn" (default "lstm").
        units: units per recurrent layer, >= 1 (default 256).
        num_layers: recurrent layers, >= 1 (default 2).
        embedding_dim: embedding width, >= 1 (default 64).
        dropout: dropout after each recurrent layer, in [0, 1), 0 = none (default 0.0).
    """

    cell: str = "lstm"
    units: int = setting(256, ge=1)
    num_layers: int = setting(2, ge=1)
    embedding_dim: int = setting(64, ge=1)
    dropout: float = setting(0.0, ge=0, lt=1)


@dataclass
class GenerationEval:
    """``[eval]``: the sample printed after training (also the `generate` defaults).

    Attributes:
        seed_text: text the sample starts from (default "\\n").
        sample_length: characters to generate, >= 1 (default 300).
        temperature: sampling temperature, >= 0, 0 = greedy (default 0.8).
        top_k: top-k filter, >= 0, 0 = off (default 0).
        top_p: nucleus filter in (0, 1], 1.0 = off (default 1.0).
        unknown_char_policy: seed characters missing from the vocabulary:
            "error" (default) or "skip" (dropped).
    """

    seed_text: str = "\n"
    sample_length: int = setting(300, ge=1)
    temperature: float = setting(0.8, ge=0)
    top_k: int = setting(0, ge=0)
    top_p: float = setting(1.0, gt=0, le=1)
    unknown_char_policy: str = setting("error", choices=UNKNOWN_CHAR_POLICIES)


SCHEMA = {"run": RunConfig, "data": GenerationData, "model": CharModel, "train": TrainConfig,
          "eval": GenerationEval}
