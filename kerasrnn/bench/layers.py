"""`kerasrnn bench layers`: our sequence layers vs `keras.layers` vs PyTorch.

For each cell (LSTM, GRU, SimpleRNN) at batch B, length T, input size I and
H units, every *contender* is timed on

* a **training step**: forward over the whole sequence (``return_sequences=True``),
  MSE to a fixed random target, backward, Adam update. For Keras layers this
  is one `tf.function` (``jit_compile`` True or False) holding exactly what
  `model.fit` runs per step (tape, `loss`, `tape.gradient`,
  `optimizer.apply`), without the data-adapter and callback overhead of
  `train_on_batch`; for PyTorch the usual eager
  ``zero_grad/forward/backward/step``.
* **inference**: the compiled forward pass (``training=False``; PyTorch under
  `torch.inference_mode`).

Contenders: ``kerasrnn`` (ours) and ``keras`` (the built-in), each with XLA
off and on, and ``torch`` (``nn.LSTM/GRU/RNN``, ``torch.set_num_threads`` =
``--threads``, default the CPU cores) when PyTorch is importable. They run in one process, in
interleaved rounds (each round runs every contender once, in a rotating
order, so a noisy neighbour hurts everyone alike); the first ``warmup``
rounds are discarded and the medians of the next ``reps`` are reported.
Ratios are speed-ups (> 1 = faster) against the built-in Keras layer in its
faster XLA setting, and against PyTorch.

``--user-path`` times the path a user takes instead of the raw step functions:
``keras.Sequential([Input, layer(return_sequences=True)])`` + ``compile("adam", "mse")``
with Keras' defaults (``jit_compile="auto"``, which turns XLA *off* on a CPU-only
machine) + ``train_on_batch`` / ``predict_on_batch``. Contenders: ours and the
built-in with the defaults (``xla=auto``) and with ``jit_compile=True``, ours
with ``jit_compile=kerasrnn.layers.recommended_jit_compile(cell)`` (the
documented fast setting, label ``xla=rec``), and PyTorch. The ``x keras``
reference is the built-in in its faster setting.

``--threads N`` runs TensorFlow (intra- and inter-op pools) and PyTorch with N threads;
``--cpu-time`` reports each call's process CPU time instead of wall time (the PyTorch child
measures its own). On a machine other jobs are using, ``--threads 1 --cpu-time`` gives
stable, comparable numbers (wall times then measure the neighbours as much as the code).
``--tf-intra-threads 1`` gives TensorFlow's intra-op pool one thread and leaves its inter-op
pool (and PyTorch) alone: the two half-batch loops of the fused path (`fused.batch_parts`)
then run one per core without competing for the intra-op pool.

Achieved GFLOP/s use the analytic count ``2·B·T·(I+H)·G·H`` per forward
(G = 4 LSTM, 3 GRU, 1 SimpleRNN; ×3 for a training step) and are compared
with a measured float32 matmul peak: a ``(B·T, I+H) × (I+H, G·H)`` sgemm.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from kerasrnn import cells as cell_registry
from kerasrnn.errors import UserError

GATES = {cell: cell_registry.gate_count(cell) for cell in ("lstm", "gru", "simple_rnn")}
KERAS_NAMES = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "SimpleRNN"}
TORCH_NAMES = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "RNN"}
QUICK = {"batch": 8, "length": 12, "input": 16, "units": 32, "reps": 3, "warmup": 1}


@dataclass
class BenchConfig:
    """What to measure. Defaults are the issue's reference point (LSTM b64/T100/128→256)."""

    cells: tuple[str, ...] = ("lstm", "gru", "simple_rnn")
    batch: int = 64
    length: int = 100
    input: int = 128
    units: int = 256
    reps: int = 10
    warmup: int = 3
    torch: bool = True  # include PyTorch when importable
    seed: int = 0
    user_path: bool = False  # Sequential + compile defaults + train_on_batch/predict_on_batch
    threads: int | None = None  # CPU threads for TensorFlow and PyTorch alike; None = all cores
    tf_intra_threads: int | None = None  # TensorFlow's intra-op pool only (inter-op and PyTorch unchanged)
    cpu_time: bool = False  # time process CPU instead of wall clock (robust on a busy machine, 1 thread)


@dataclass
class Result:
    """Medians of one contender on one cell (times in milliseconds)."""

    cell: str
    contender: str  # "kerasrnn", "keras" or "torch"
    xla: bool | str | None  # None for torch; "auto" / "rec" in the user path
    train_ms: float
    infer_ms: float
    train_first_s: float  # first call: tracing + XLA compilation + one step
    infer_first_s: float
    train_gflops: float
    infer_gflops: float
    train_samples_ms: list[float] = field(default_factory=list, repr=False)
    infer_samples_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def label(self) -> str:
        if self.xla is None:
            return self.contender
        if isinstance(self.xla, str):
            return f"{self.contender} xla={self.xla}"
        return f"{self.contender} xla={'on' if self.xla else 'off'}"


def forward_flops(cfg: BenchConfig, cell: str) -> float:
    """Analytic multiply-add FLOPs of one forward pass: 2·B·T·(I+H)·G·H.

    >>> forward_flops(BenchConfig(), "lstm") / 1e9
    5.0331648
    """
    return 2.0 * cfg.batch * cfg.length * (cfg.input + cfg.units) * GATES[cell] * cfg.units


# --------------------------------------------------------------------------
# Contenders: objects with .train() and .infer(), each running one step.
# --------------------------------------------------------------------------
class KerasContender:
    """A Keras sequence layer with a compiled train step and forward."""

    def __init__(self, layer_cls, cfg: BenchConfig, x, y, jit: bool):
        import tensorflow as tf  # lazy: TensorFlow loads in seconds; imported only when measuring

        from kerasrnn.claims.measure import make_step_functions  # lazy: with TensorFlow

        layer = layer_cls(cfg.units, return_sequences=True)
        layer(x[:1])
        self.layer = layer
        self._infer, self._train = make_step_functions(layer, jit_compile=jit)
        self.x, self.y = tf.constant(x), tf.constant(y)

    def train(self):
        return float(self._train(self.x, self.y))

    def infer(self):
        return self._infer(self.x).numpy()


class UserPathContender:
    """What a user writes: ``Sequential([Input, layer])``, ``compile("adam", "mse")``,
    ``train_on_batch`` and ``predict_on_batch``.

    `jit` is passed to ``compile(jit_compile=...)``: ``"auto"`` is Keras' default.
    """

    def __init__(self, layer_cls, cfg: BenchConfig, x, y, jit):
        import keras  # lazy: TensorFlow loads only when the bench runs

        self.model = keras.Sequential([keras.Input((cfg.length, cfg.input)),
                                       layer_cls(cfg.units, return_sequences=True)])
        self.model.compile(optimizer="adam", loss="mse", jit_compile=jit)
        self.x, self.y = x, y

    def train(self):
        return self.model.train_on_batch(self.x, self.y)

    def infer(self):
        return self.model.predict_on_batch(self.x)


class TorchContender:
    """`torch.nn.LSTM/GRU/RNN` (batch_first) trained with Adam on the same MSE."""

    def __init__(self, cell: str, cfg: BenchConfig, x, y):
        import torch  # lazy: optional dependency

        torch.manual_seed(cfg.seed)
        self.torch = torch
        module = getattr(torch.nn, TORCH_NAMES[cell])
        self.model = module(cfg.input, cfg.units, batch_first=True)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)

    def train(self):
        self.optimizer.zero_grad(set_to_none=True)
        out, _ = self.model(self.x)
        loss = ((out - self.y) ** 2).mean()
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    def infer(self):
        with self.torch.inference_mode():
            return self.model(self.x)[0]


def _torch_worker(conn, cell, cfg_dict, x, y, threads):
    """Child-process loop: build a TorchContender, then time "train"/"infer" on request."""
    import torch  # lazy: optional dependency

    torch.set_num_threads(threads)
    contender = TorchContender(cell, BenchConfig(**cfg_dict), x, y)
    conn.send("ready")
    while True:
        command = conn.recv()
        if command == "stop":
            break
        start, start_cpu = time.perf_counter(), time.process_time()
        getattr(contender, command)()
        conn.send((time.perf_counter() - start, time.process_time() - start_cpu))


class TorchProcess:
    """PyTorch in a child process, driven step by step from the bench's rounds.

    Measured here: after TensorFlow has run in a process, PyTorch's OpenMP
    threads in that same process run 5-15x slower (1.7 s instead of ~0.12 s
    per LSTM training step; ``OMP_WAIT_POLICY=PASSIVE`` only partly helps
    and slows PyTorch alone 2x). A child process keeps both runtimes at
    their own speed while the rounds stay interleaved; the time is taken
    inside the child, so the pipe round trip is not counted.
    """

    def __init__(self, cell: str, cfg: BenchConfig, x, y):
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=_torch_worker,
            args=(child, cell, asdict(cfg), x, y, cfg.threads or os.cpu_count() or 1),
            daemon=True,
        )
        self.process.start()
        if self.conn.recv() != "ready":  # pragma: no cover
            raise RuntimeError("the PyTorch worker did not start")

    def _time(self, command) -> tuple[float, float]:
        self.conn.send(command)
        return self.conn.recv()  # (wall, process CPU) seconds, measured in the child

    def train(self):
        return self._time("train")

    def infer(self):
        return self._time("infer")

    def close(self):
        self.conn.send("stop")
        self.process.join(timeout=30)


def torch_available() -> bool:
    try:
        import torch  # noqa: F401  (lazy: optional dependency)
    except Exception:  # pragma: no cover - depends on the machine
        return False
    return True


class MatmulPeak:
    """A float32 ``(B·T, I+H) × (I+H, G·H)`` matmul: the achievable GFLOP/s reference.

    Timed in the same interleaved rounds as the contenders, so it sees the
    same machine load.
    """

    def __init__(self, cfg: BenchConfig, cell: str):
        import tensorflow as tf  # lazy: TensorFlow loads in seconds; imported only when measuring

        rng = np.random.default_rng(cfg.seed)
        k = cfg.input + cfg.units
        self.a = tf.constant(rng.standard_normal((cfg.batch * cfg.length, k), dtype=np.float32))
        self.b = tf.constant(rng.standard_normal((k, GATES[cell] * cfg.units), dtype=np.float32))
        self.flops = 2.0 * cfg.batch * cfg.length * k * GATES[cell] * cfg.units
        self._matmul = tf.function(lambda a, b: tf.reduce_sum(tf.matmul(a, b)))
        self.run()

    def run(self):
        return float(self._matmul(self.a, self.b))


def _timed(fn, cpu: bool = False) -> float:
    """Seconds one call of `fn` takes: wall clock, or with `cpu` this process's CPU time.

    A `TorchProcess` times itself in its child and returns both.
    """
    start, start_cpu = time.perf_counter(), time.process_time()
    value = fn()
    elapsed = (time.process_time() - start_cpu) if cpu else (time.perf_counter() - start)
    if isinstance(getattr(fn, "__self__", None), TorchProcess):
        return value[1] if cpu else value[0]
    return elapsed


def bench_cell(cfg: BenchConfig, cell: str, echo=lambda msg: None) -> tuple[list[Result], float]:
    """Time every contender on one cell in interleaved rounds.

    Returns their medians and the matmul peak (GFLOP/s) measured in the same rounds.
    """
    import keras  # lazy: Keras/TensorFlow load in seconds; imported only when measuring

    import kerasrnn.layers as ours  # lazy: imports Keras

    rng = np.random.default_rng(cfg.seed)
    x = rng.standard_normal((cfg.batch, cfg.length, cfg.input), dtype=np.float32)
    y = rng.standard_normal((cfg.batch, cfg.length, cfg.units), dtype=np.float32)
    keras.utils.set_random_seed(cfg.seed)

    contenders = []
    ours_cls, builtin_cls = ours.get_layer_class(cell), getattr(keras.layers, KERAS_NAMES[cell])
    if cfg.user_path:
        recommended = ours.recommended_jit_compile(cell)
        contenders.append(("kerasrnn", "auto", UserPathContender(ours_cls, cfg, x, y, "auto")))
        contenders.append(("keras", "auto", UserPathContender(builtin_cls, cfg, x, y, "auto")))
        contenders.append(("kerasrnn", "rec", UserPathContender(ours_cls, cfg, x, y, recommended)))
        contenders.append(("kerasrnn", True, UserPathContender(ours_cls, cfg, x, y, True)))
        contenders.append(("keras", True, UserPathContender(builtin_cls, cfg, x, y, True)))
    else:
        for jit in (False, True):
            contenders.append(("kerasrnn", jit, KerasContender(ours_cls, cfg, x, y, jit)))
            contenders.append(("keras", jit, KerasContender(builtin_cls, cfg, x, y, jit)))
    if cfg.torch and torch_available():
        contenders.append(("torch", None, TorchProcess(cell, cfg, x, y)))

    peak = MatmulPeak(cfg, cell)
    peak_samples = []
    first = {}
    for name, jit, c in contenders:
        echo(f"  {cell}: first call of {name} xla={jit} ...")
        first[(name, jit)] = (_timed(c.train), _timed(c.infer))  # compile time: wall clock

    samples = {(name, jit): ([], []) for name, jit, _ in contenders}
    for round_ in range(cfg.warmup + cfg.reps):
        shift = round_ % len(contenders)
        t_peak = _timed(peak.run, cfg.cpu_time)
        if round_ >= cfg.warmup:
            peak_samples.append(t_peak)
        for name, jit, c in contenders[shift:] + contenders[:shift]:
            t_train, t_infer = _timed(c.train, cfg.cpu_time), _timed(c.infer, cfg.cpu_time)
            if round_ >= cfg.warmup:
                samples[(name, jit)][0].append(t_train * 1e3)
                samples[(name, jit)][1].append(t_infer * 1e3)

    for _, _, c in contenders:
        if isinstance(c, TorchProcess):
            c.close()
    flops = forward_flops(cfg, cell)
    peak_gflops = peak.flops / statistics.median(peak_samples) / 1e9
    results = []
    for name, jit, _ in contenders:
        train, infer = samples[(name, jit)]
        train_ms, infer_ms = statistics.median(train), statistics.median(infer)
        results.append(
            Result(
                cell=cell,
                contender=name,
                xla=jit,
                train_ms=train_ms,
                infer_ms=infer_ms,
                train_first_s=first[(name, jit)][0],
                infer_first_s=first[(name, jit)][1],
                train_gflops=3 * flops / train_ms / 1e6,
                infer_gflops=flops / infer_ms / 1e6,
                train_samples_ms=train,
                infer_samples_ms=infer,
            )
        )
    return results, peak_gflops


def summarize(cfg: BenchConfig, results: list[Result], peaks: dict[str, float]) -> dict:
    """Turn results into the JSON report: medians, speed-ups and % of matmul peak."""
    import keras  # lazy: Keras/TensorFlow load in seconds; imported only when measuring
    import tensorflow as tf  # lazy: TensorFlow loads in seconds; imported only when measuring

    rows = []
    for cell in cfg.cells:
        cell_results = [r for r in results if r.cell == cell]
        builtin = [r for r in cell_results if r.contender == "keras"]
        best_train = min(r.train_ms for r in builtin)
        best_infer = min(r.infer_ms for r in builtin)
        torch_r = next((r for r in cell_results if r.contender == "torch"), None)
        for r in cell_results:
            row = asdict(r)
            row["label"] = r.label
            row["train_vs_keras_best"] = best_train / r.train_ms
            row["infer_vs_keras_best"] = best_infer / r.infer_ms
            row["train_vs_torch"] = torch_r.train_ms / r.train_ms if torch_r else None
            row["infer_vs_torch"] = torch_r.infer_ms / r.infer_ms if torch_r else None
            row["train_pct_peak"] = 100 * r.train_gflops / peaks[cell]
            row["infer_pct_peak"] = 100 * r.infer_gflops / peaks[cell]
            rows.append(row)
    versions = {"tensorflow": tf.__version__, "keras": keras.__version__}
    if cfg.torch and torch_available():
        import torch  # lazy: optional dependency

        versions["torch"] = torch.__version__
    return {
        "config": asdict(cfg),
        "training_step": ("Sequential + compile('adam', 'mse', jit_compile per row) + train_on_batch"
                          if cfg.user_path else
                          "tf.function(tape + MSE + tape.gradient + Adam.apply), jit_compile per row")
        + "; torch: eager zero_grad/forward/backward/Adam.step",
        "inference": ("predict_on_batch" if cfg.user_path else "compiled forward, training=False")
        + "; torch under inference_mode",
        "cpu_count": os.cpu_count(),
        "threads": cfg.threads or os.cpu_count(),
        "versions": versions,
        "matmul_peak_gflops": peaks,
        "results": rows,
    }


def format_table(report: dict) -> str:
    """The human-readable table of a `summarize` report."""
    cfg = report["config"]
    lines = [
        f"B={cfg['batch']} T={cfg['length']} {cfg['input']}->{cfg['units']}, "
        f"medians of {cfg['reps']} interleaved reps after {cfg['warmup']} warm-up, "
        f"{report['cpu_count']} CPU cores, {report.get('threads', report['cpu_count'])} threads"
        + (f", TensorFlow intra-op pool {cfg['tf_intra_threads']}" if cfg.get("tf_intra_threads") else "")
        + (", process CPU time" if cfg.get("cpu_time") else ", wall time")
        + (", user path (Sequential + compile + train_on_batch/predict_on_batch)" if cfg.get("user_path") else ""),
        "speed-up = reference time / row time (> 1 = faster than the reference)",
    ]
    header = (
        f"{'cell':<10} {'contender':<17} {'train ms':>9} {'x keras':>8} {'x torch':>8} "
        f"{'GFLOP/s':>8} {'infer ms':>9} {'x keras':>8} {'x torch':>8} {'GFLOP/s':>8} {'1st s':>6}"
    )
    for cell in cfg["cells"]:
        peak = report["matmul_peak_gflops"][cell]
        lines += ["", f"{cell}: matmul peak {peak:.0f} GFLOP/s", header, "-" * len(header)]
        for r in (r for r in report["results"] if r["cell"] == cell):
            vs_torch = lambda v: f"{v:8.2f}" if v is not None else f"{'-':>8}"  # noqa: E731
            lines.append(
                f"{cell:<10} {r['label']:<17} {r['train_ms']:9.1f} {r['train_vs_keras_best']:8.2f} "
                f"{vs_torch(r['train_vs_torch'])} {r['train_gflops']:8.1f} {r['infer_ms']:9.1f} "
                f"{r['infer_vs_keras_best']:8.2f} {vs_torch(r['infer_vs_torch'])} "
                f"{r['infer_gflops']:8.1f} {r['train_first_s']:6.1f}"
            )
    return "\n".join(lines)


def run_bench(cfg: BenchConfig, echo=lambda msg: None) -> dict:
    """Measure every cell of `cfg`; return the `summarize` report.

    >>> report = run_bench(BenchConfig(cells=("gru",), batch=2, length=3, input=4,
    ...                                units=4, reps=1, warmup=0, torch=False))
    >>> sorted({r["contender"] for r in report["results"]})
    ['keras', 'kerasrnn']
    """
    results, peaks = [], {}
    for cell in cfg.cells:
        cell_results, peaks[cell] = bench_cell(cfg, cell, echo)
        results += cell_results
    return summarize(cfg, results, peaks)


def parse_cells(text: str) -> tuple[str, ...]:
    """``"lstm,gru"`` -> ``("lstm", "gru")``; aliases from `kerasrnn.cells` (``rnn`` -> ``simple_rnn``)."""
    cells = []
    for part in (part.strip() for part in text.split(",") if part.strip()):
        try:
            name = cell_registry.canonical_name(part, argument="cell")
        except ValueError:
            name = None
        if name not in GATES:
            raise UserError(
                f"unknown cell {part!r} in --cells {text!r}; use a comma-separated list of "
                "lstm, gru, simple_rnn"
            )
        if name not in cells:
            cells.append(name)
    if not cells:
        raise UserError(f"--cells {text!r} names no cell; use e.g. --cells lstm,gru,simple_rnn")
    return tuple(cells)


def config_from(cells: str = "lstm,gru,simple_rnn", quick: bool = False, torch: bool = True,
                user_path: bool = False, threads: int | None = None, cpu_time: bool = False,
                tf_intra_threads: int | None = None, **sizes) -> BenchConfig:
    """A `BenchConfig` from the command's options: `sizes` (batch, length, input, units, reps,
    warmup; None = default, or the quick size) and `threads` must be >= 1 (warmup >= 0)."""
    for name, value in {**sizes, "threads": threads, "tf_intra_threads": tf_intra_threads}.items():
        if value is not None and value < (0 if name == "warmup" else 1):
            raise UserError(f"{name} must be {'>= 0' if name == 'warmup' else '>= 1'}, got {value}")
    base = QUICK if quick else asdict(BenchConfig())
    merged = {k: (sizes.get(k) if sizes.get(k) is not None else base[k]) for k in QUICK}
    return BenchConfig(cells=parse_cells(cells), torch=torch, user_path=user_path, threads=threads,
                       cpu_time=cpu_time, tf_intra_threads=tf_intra_threads, **merged)
