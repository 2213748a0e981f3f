"""Stratified K-fold cross-validation splits and their summaries.

`stratified_folds` deals the examples of every class round-robin (after a
seeded shuffle) into K parts, so each part holds ``n_c / K`` examples of class
``c`` (±1) and every example lands in exactly one part. Fold ``k`` tests on part
``k`` and trains on the other K−1; `carve_validation` holds out a stratified
slice of that training part for early stopping, so the test part is never seen
while training or choosing the epoch.

>>> labels = [0, 0, 0, 0, 1, 1, 1, 1]
>>> parts = stratified_folds(labels, 2, seed=0)
>>> sorted(int(i) for p in parts for i in p) == list(range(8))
True
>>> [sorted(int(labels[i]) for i in p) for p in parts]
[[0, 0, 1, 1], [0, 0, 1, 1]]
"""

from __future__ import annotations

import numpy as np

from kerasrnn.errors import UserError


def check_folds(labels, k: int, class_names: list[str] | None = None) -> None:
    """`UserError` unless `k` is 0 (no CV) or at least 2 and no larger than the smallest class.

    >>> try:
    ...     check_folds([0, 0, 1, 1], 3, ["neg", "pos"])
    ... except UserError as e:
    ...     print(e)
    eval.folds = 3 is more than the 2 examples of class 'neg'; every fold needs one example of each class: use eval.folds <= 2 or more data
    """
    if k == 0:
        return
    if k == 1 or k < 0:
        raise UserError(f"eval.folds must be 0 (one train/validation/test split) or at least 2, got {k}; "
                        "use e.g. eval.folds = 10")
    counts = np.bincount(np.asarray(labels, dtype=np.int64))
    present = np.flatnonzero(counts)
    smallest = int(present[np.argmin(counts[present])])
    if counts[smallest] < k:
        name = class_names[smallest] if class_names else str(smallest)
        raise UserError(f"eval.folds = {k} is more than the {int(counts[smallest])} examples of class {name!r}; "
                        f"every fold needs one example of each class: use eval.folds <= {int(counts[smallest])} "
                        "or more data")


def stratified_folds(labels, k: int, seed: int = 0) -> list[np.ndarray]:
    """Split example indices into `k` disjoint, complete, class-stratified parts.

    Args:
        labels: integer class ids, one per example.
        k: number of parts (>= 2, at most the size of the smallest class).
        seed: shuffle seed (default 0).

    Returns:
        `k` sorted int64 index arrays; their union is ``range(len(labels))``.
        Within each class the part sizes differ by at most one.
    """
    labels = np.asarray(labels, dtype=np.int64)
    check_folds(labels, k)
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in range(k)]
    offset = 0
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        for j, index in enumerate(members):
            # continue the round-robin across classes so the part sizes stay within one of each other
            parts[(offset + j) % k].append(int(index))
        offset = (offset + len(members)) % k
    return [np.array(sorted(p), dtype=np.int64) for p in parts]


def carve_validation(indices, labels, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split `indices` into (train, validation), stratified by class.

    Each class keeps ``round(fraction * n_c)`` examples for validation (at least
    one when it has two or more), so early stopping sees every class.

    >>> train, val = carve_validation(np.arange(10), [0] * 5 + [1] * 5, 0.2)
    >>> len(train), len(val), sorted(int(v) // 5 for v in val)
    (8, 2, [0, 1])
    """
    indices = np.asarray(indices, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    if not 0 < fraction < 1:
        raise UserError(f"eval.val_fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(labels[indices]):
        members = rng.permutation(indices[labels[indices] == c])
        n_val = int(round(fraction * len(members)))
        if len(members) >= 2:
            n_val = min(max(n_val, 1), len(members) - 1)
        else:
            n_val = 0
        val.extend(members[:n_val].tolist())
    val_set = set(val)
    train = np.array([i for i in indices if int(i) not in val_set], dtype=np.int64)
    return train, np.array(sorted(val), dtype=np.int64)


def summarize(values) -> dict:
    """``{"mean", "std", "per_fold"}`` of per-fold values (std with ddof=1; 0 for one value).

    >>> summarize([0.8, 0.9])["mean"]
    0.85
    """
    values = [float(v) for v in values]
    arr = np.asarray(values, dtype=np.float64)
    std = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
    return {"mean": round(float(arr.mean()), 6) if len(arr) else None, "std": round(std, 6), "per_fold": values}


def percent(summary: dict) -> str:
    """``"80.4% ± 1.2"`` for a `summarize` result of fractions.

    >>> percent({"mean": 0.8043, "std": 0.012})
    '80.4% ± 1.2'
    """
    return f"{100 * summary['mean']:.1f}% ± {100 * summary['std']:.1f}"
