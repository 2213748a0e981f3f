"""Several LiteRT interpreters of one model, running a list of batches concurrently.

One LiteRT interpreter runs its ops one after another on one thread (its own
``num_threads`` pool did not help our recurrent ``WHILE`` models: measured slower
at batch 1 and 32). ``Interpreter.invoke`` releases Python's GIL, so
`InterpreterPool` opens `workers` interpreters of the same flatbuffer and lets
each of `workers` threads take the next batch from a shared queue and run it on
*its own* interpreter (an interpreter is not thread-safe: no two threads ever
share one). Results come back in input order, so the pool is a drop-in for a
loop over batches.

What it buys is throughput over many batches, not latency of one: a single
batch still runs on one interpreter. Measured on 2 cores (polarity-sentiment
BiGRU 64, 2,048 sentences sorted by length, token ids made beforehand; the
README's Export benchmark, mean of 3 ``kerasrnn bench export`` invocations):

=====================  ==================  ==================
sentences/s            1 interpreter       2 interpreters
=====================  ==================  ==================
batch 1                9,110               15,450
batch 32               48,560              74,810
=====================  ==================  ==================

Splitting *one* batch in halves over two interpreters was slower than not
splitting (25,280 vs 32,690 sentences/s at batch 32: two thread hand-offs per
call for half the work each), so the pool hands out whole batches.

>>> pool = InterpreterPool(flatbuffer, workers=2)  # doctest: +SKIP
>>> outs = pool.map([{"token_ids": a}, {"token_ids": b}])  # doctest: +SKIP
"""

from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor

from kerasrnn.errors import UserError
from kerasrnn.export import tflite as tflite_mod

MAX_DEFAULT_WORKERS = 2  # measured on 2 cores; more interpreters cost memory (weights packed per interpreter)


def default_workers() -> int:
    """Interpreters a runner opens by default: the usable cores, at most `MAX_DEFAULT_WORKERS`."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(MAX_DEFAULT_WORKERS, cores))


class InterpreterPool:
    """`workers` signature runners of one ``.tflite`` model; `map` runs calls on them concurrently.

    Args:
        source: ``.tflite`` path or flatbuffer bytes.
        workers: interpreters (and threads), >= 1; default `default_workers()`.
        signature: the signature to run (default ``serving_default``).

    `map` may be called from several threads: calls into one pool are
    serialised by a lock, so no interpreter is ever used by two threads.
    """

    def __init__(self, source, workers: int | None = None, signature: str = tflite_mod.SIGNATURE):
        workers = default_workers() if workers is None else int(workers)
        if workers < 1:
            raise UserError(f"workers must be at least 1, got {workers}")
        self.runners = [tflite_mod.open_signature(source, signature) for _ in range(workers)]
        self._lock = threading.Lock()
        self._threads = ThreadPoolExecutor(workers, thread_name_prefix="litert") if workers > 1 else None

    def get_input_details(self) -> dict:
        return self.runners[0].get_input_details()

    def map(self, calls: list[dict]) -> list[dict]:
        """The outputs of ``runner(**call)`` for each of `calls`, in order."""
        calls = list(calls)
        with self._lock:
            if self._threads is None or len(calls) < 2:
                return [self.runners[0](**c) for c in calls]
            todo = queue.SimpleQueue()
            for i in range(len(calls)):
                todo.put(i)
            outs = [None] * len(calls)

            def drain(runner):
                while True:
                    try:
                        i = todo.get_nowait()
                    except queue.Empty:
                        return
                    outs[i] = runner(**calls[i])

            used = self.runners[: min(len(self.runners), len(calls))]
            for future in [self._threads.submit(drain, r) for r in used]:
                future.result()  # re-raises a worker's error here
            return outs
