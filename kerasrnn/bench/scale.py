"""`kerasrnn bench scale`: training throughput on 1 vs 2 workers, and on paper for N nodes.

Measured: a char model (Embedding 64 → LSTM → Dense, vocabulary 65) trained with
`kerasrnn.train`'s Keras ``fit`` on synthetic tokens, one worker process (TensorFlow's
default strategy) and then two worker processes on 127.0.0.1 (MultiWorkerMirroredStrategy,
``TF_CONFIG``), each with one intra-op thread. Weak scaling: every worker takes
``--batch-size`` sequences per step, so the global batch is ``batch × workers``.
The first epoch (compile, warm-up) is discarded; the second, ``--steps`` steps, is timed.
XLA is off in both (TF 2.21 cannot XLA-compile CPU collectives; `kerasrnn.distribute`).

Scaling efficiency = examples/s with 2 workers / (2 × examples/s with 1).

On paper: a ring all-reduce moves about 2 × (N-1)/N × parameter bytes in and out of
every node per step; for the 2×LSTM(512) char model (float32) that time on a
10/25/100 Gb/s link is compared with a measured single-worker step of that model
(``--paper-batch`` sequences of ``--seq-len``), assuming no overlap of communication and
compute: speed-up(N) = N · t_step / (t_step + t_allreduce(N)).

    kerasrnn bench scale                 # ~2 min on 2 idle cores
    kerasrnn bench scale --json
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VOCAB = 65
LINKS_GBPS = (10, 25, 100)
NODES = (2, 4, 8, 16, 32)


def free_ports(n: int) -> list[int]:
    """`n` free TCP ports on 127.0.0.1 (bound, read, released)."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def worker(out: str, units: int, layers: int, seq_len: int, batch: int, steps: int) -> None:
    """One measuring process (run by `measure` as ``python -m kerasrnn.bench.scale``)."""
    import numpy as np  # lazy (this whole block): the worker sets TensorFlow up before anything imports it
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    from kerasrnn import distribute  # lazy: after the thread setting above

    placement = distribute.activate({"strategy": "multi_worker" if os.environ.get("TF_CONFIG") else "one_device",
                                     "peer_timeout_seconds": 120})
    import keras  # lazy (this block): only once the strategy exists, as MultiWorkerMirroredStrategy needs

    from kerasrnn import data, train
    from kerasrnn.recipes import TrainConfig
    from kerasrnn.tasks.generation import build_model
    from kerasrnn.tasks.generation_schema import CharModel

    global_batch = batch * placement.num_workers
    scope = placement.strategy.scope() if placement.strategy is not None else __import__("contextlib").nullcontext()
    with scope:
        keras.utils.set_random_seed(0)
        model = build_model(VOCAB, CharModel(units=units, num_layers=layers, dropout=0.0, embedding_dim=64))
        cfg = TrainConfig(jit_compile="false", steps_per_epoch=steps)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        train.compile_model(model, cfg, loss, [], "lstm")
        ids = np.random.default_rng(0).integers(0, VOCAB, size=(seq_len + 1) * global_batch * 4)
        ds = distribute.shard_dataset(data.char_dataset(ids, seq_len, global_batch, shuffle=True, repeat=True))
        times = []

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.t = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                times.append(time.perf_counter() - self.t)

        model.fit(ds, epochs=2, steps_per_epoch=steps, verbose=0, callbacks=[Timer()])
    if placement.kind == "multi_worker":
        distribute.barrier(placement)
    params = int(model.count_params())
    Path(out).write_text(json.dumps({"seconds": times[1], "steps": steps, "global_batch": global_batch,
                                     "workers": placement.num_workers, "params": params}))


def _run_workers(n: int, args: list[str], folder: Path) -> list[dict]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_NUM_INTRAOP_THREADS": "1", "OMP_NUM_THREADS": "1",
           "CUDA_VISIBLE_DEVICES": ""}
    env.pop("TF_CONFIG", None)
    ports = free_ports(n)
    procs = []
    for i in range(n):
        if n > 1:
            env = {**env, "TF_CONFIG": json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                                                   "task": {"type": "worker", "index": i}})}
        procs.append(subprocess.Popen([sys.executable, "-m", "kerasrnn.bench.scale", str(folder / f"w{n}-{i}.json"),
                                       *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=1800)
        if p.returncode != 0:
            raise RuntimeError(f"a bench worker failed: {err.strip().splitlines()[-1] if err.strip() else p.returncode}")
    return [json.loads((folder / f"w{n}-{i}.json").read_text()) for i in range(n)]


def paper(step_seconds: float, params: int) -> list[dict]:
    """Ring all-reduce time and speed-up for N nodes on each link (no compute/communication overlap).

    >>> row = paper(1.0, 250_000_000)[0]   # 1 GB of float32 over 10 Gb/s, 2 nodes
    >>> row["allreduce_s"], round(row["speedup"], 3)
    (0.8, 1.111)
    """
    rows = []
    nbytes = 4 * params
    for gbps in LINKS_GBPS:
        for n in NODES:
            seconds = 2 * (n - 1) / n * nbytes * 8 / (gbps * 1e9)
            rows.append({"link_gbps": gbps, "nodes": n, "allreduce_s": round(seconds, 6),
                         "speedup": n * step_seconds / (step_seconds + seconds),
                         "efficiency": step_seconds / (step_seconds + seconds)})
    return rows


def measure(units=128, layers=1, seq_len=64, batch=32, steps=20, paper_batch=64, paper_steps=3) -> dict:
    """Run the measurement (1 worker, 2 workers, then one 2×LSTM(512) worker for the paper model)."""
    with tempfile.TemporaryDirectory(prefix="kerasrnn-bench-scale-") as tmp:
        folder = Path(tmp)
        args = [str(units), str(layers), str(seq_len), str(batch), str(steps)]
        one = _run_workers(1, args, folder)[0]
        two = _run_workers(2, args, folder)
        big = _run_workers(1, ["512", "2", str(seq_len), str(paper_batch), str(paper_steps)], folder)[0]
    rate = {}
    for name, rows in (("1", [one]), ("2", two)):
        seconds = max(r["seconds"] for r in rows)  # the slowest worker sets the pace
        rate[name] = {"workers": len(rows), "global_batch": rows[0]["global_batch"],
                      "steps_per_s": rows[0]["steps"] / seconds,
                      "examples_per_s": rows[0]["steps"] * rows[0]["global_batch"] / seconds}
    big_step = big["seconds"] / big["steps"]
    return {
        "model": f"Embedding 64 -> {layers}xLSTM({units}) -> Dense({VOCAB}), seq_len {seq_len}, "
                 f"{batch} sequences per worker per step, {one['params']:,} parameters",
        "one_worker": rate["1"], "two_workers": rate["2"],
        "scaling_efficiency": rate["2"]["examples_per_s"] / (2 * rate["1"]["examples_per_s"]),
        "allreduce_bytes_per_step": 2 * 4 * one["params"],
        "paper_model": {"name": f"Embedding 64 -> 2xLSTM(512) -> Dense({VOCAB})", "params": big["params"],
                        "param_bytes": 4 * big["params"], "ring_bytes_per_step": 2 * 4 * big["params"],
                        "measured_step_s": big_step, "batch": paper_batch, "seq_len": seq_len,
                        "nodes": paper(big_step, big["params"])},
    }


def report(result: dict) -> str:
    one, two, big = result["one_worker"], result["two_workers"], result["paper_model"]
    lines = [f"Model: {result['model']}; XLA off, one intra-op thread per worker, 127.0.0.1.", "",
             "| workers | global batch | steps/s | examples/s |", "|---|---|---|---|"]
    for r in (one, two):
        lines.append(f"| {r['workers']} | {r['global_batch']} | {r['steps_per_s']:.2f} | {r['examples_per_s']:.0f} |")
    lines += ["", f"Scaling efficiency (2 workers): {result['scaling_efficiency']:.0%}; all-reduce volume per step "
                  f"(ring, 2 x parameter bytes): {result['allreduce_bytes_per_step'] / 1e6:.2f} MB", "",
              f"On paper: {big['name']}, {big['params']:,} parameters = {big['param_bytes'] / 1e6:.1f} MB float32; "
              f"ring all-reduce ~{big['ring_bytes_per_step'] / 1e6:.1f} MB per node per step; measured step "
              f"{big['measured_step_s']:.2f} s (batch {big['batch']} x {big['seq_len']}, one CPU thread).", "",
              "| link | " + " | ".join(f"N={n}" for n in NODES) + " |", "|---|" + "---|" * len(NODES)]
    for gbps in LINKS_GBPS:
        rows = [r for r in big["nodes"] if r["link_gbps"] == gbps]
        lines.append(f"| {gbps} Gb/s | " + " | ".join(
            f"{r['speedup']:.1f}x ({r['allreduce_s'] * 1e3:.0f} ms)" for r in rows) + " |")
    lines += ["", "Cells: speed-up over one node (all-reduce time per step); no compute/communication overlap "
                  "assumed; a GPU step is far shorter than this CPU step, so there the links weigh much more."]
    return "\n".join(lines)


if __name__ == "__main__":
    worker(sys.argv[1], *(int(a) for a in sys.argv[2:7]))
