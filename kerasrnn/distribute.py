"""Training on several devices or machines with `tf.distribute` (``train.strategy``).

``train.strategy``:

- ``one_device``: TensorFlow's default strategy, one device, no replication (what
  kerasrnn always did).
- ``mirrored``: `tf.distribute.MirroredStrategy` over the local devices: every GPU, or
  with no GPU every logical CPU device (tests make two with
  `tf.config.set_logical_device_configuration`).
- ``multi_worker``: `tf.distribute.MultiWorkerMirroredStrategy`, the cluster read from the
  standard ``TF_CONFIG`` environment variable.
- ``auto`` (default): ``multi_worker`` when ``TF_CONFIG`` names more than one worker
  (chief included), ``mirrored`` when there are several GPUs, else ``one_device``.

**Decision: one training loop = Keras ``fit``, in every mode.** ``fit`` does run under
all three strategies once two defects of Keras 3.15's TensorFlow trainer are patched
(keras-team/keras#20585), so `kerasrnn.train.fit` keeps its callbacks, outputs and
resume semantics unchanged and no second, hand-written loop exists to drift apart:

1. ``TensorFlowTrainer._maybe_symbolic_build`` takes the first distributed input
   batch and calls ``strategy.reduce("MEAN", batch)`` on it only to learn its shapes;
   under MultiWorkerMirroredStrategy that fails ("PerReplica ... unsupported type ...
   to a Tensor"), and under any strategy that batch is lost to training when
   ``steps_per_epoch`` is set (the iterator lives on across epochs), so the
   distributed run sees other batches than one device. Patched: the shapes and dtypes
   are read from the dataset's ``element_spec``; no batch is consumed.
2. ``reduce_per_replica(..., reduction="auto")`` reduces scalar per-replica metrics
   with ``strategy.reduce("MEAN", v, axis=0)`` in multi-worker mode, which fails on a
   scalar ("Invalid reduction dimension 0"). Patched: ``axis=None`` for those.

A third patch makes distributed training *equal* to one device, not only run:

3. Keras' TF optimizer clips gradients (``clipnorm``, on by default in every recipe)
   *before* its cross-replica all-reduce, i.e. per replica, so with clipping active N
   replicas do not compute what one device does. Patched: the gradients are summed
   across replicas first, then clipped (the all-reduce inside the optimizer is then
   skipped, so there is still exactly one).

All three touch ``keras.src`` internals; every such import is in `_keras_internals`
below, and `check_keras_internals` (run by the tests) fails with a message naming
what moved if a Keras upgrade renames them. Patch 1 acts under any strategy (never on
one device), patch 2 only under a multi-worker strategy, patch 3 only with more than
one replica in sync.

**Batch and loss.** ``train.batch_size`` is the *global* batch: the pipelines batch
with it and `strategy.experimental_distribute_dataset` (inside ``fit``) splits each
batch across the replicas. Keras scales each replica's mean loss by 1 /
num_replicas, which equals ``tf.nn.compute_average_loss(..., global_batch_size)``
whenever the replicas get equal shares (always for generation, whose batches are
full; a classification or forecasting epoch's final, smaller batch weights its
replicas' means equally instead of per example).

**XLA.** TensorFlow 2.21 cannot XLA-compile collectives on CPU devices ("Collectives
are not yet implemented for CPU devices when compiling with XLA"), and Keras compiles
the whole train step, all-reduce included; so with more than one replica on CPUs
``train.jit_compile`` is turned off (`allowed_jit`). GPUs keep it.

**Sharding.** Every kerasrnn source is read into memory before ``tf.data`` sees it
(``from_tensor_slices``), so the input is sharded by DATA (`shard_dataset`):
every worker builds the same pipeline (same shuffle seed) and keeps its part of
each global batch, so every example is seen once per epoch across the workers.
A pipeline that reads files with ``tf.data`` itself would use FILE (one file per
worker); kerasrnn has none today.

**The chief alone writes the run directory.** The chief (task ``chief``, or
``worker`` 0 when there is none) takes the run's lock and writes ``.partial-<name>``
and the published run directory; every other worker trains in a temporary
directory that is removed at the end (`worker_dir`), and shows no progress bar
(``verbose`` 0). Metrics in ``fit``'s logs are already reduced across workers, so
early stopping on ``val_loss`` decides the same everywhere.

**Collective decisions.** A callback that stops training on a per-worker
measurement would leave the others waiting in the next all-reduce forever. So
with ``multi_worker``, ``train.max_minutes`` (a wall-clock decision) is refused
with a one-line error, and the step backup's one-minute time trigger is off
(backups follow ``train.backup_every_steps`` and epoch ends only: the same steps on
every worker).

**Fault tolerance.** Resume state is the chief's: ``.partial-<name>/checkpoints`` in
the chief's runs folder. Every worker must see that folder at the same path (a
shared file system across machines; on one machine it is simply the same folder):
at a ``--resume`` each non-chief worker copies the chief's work directory into its
temporary one before training, so all load the same backup. If a worker dies, the
others fail within ``train.peer_timeout_seconds`` (TensorFlow's coordination-service
heartbeat) with a one-line error; restart every worker with ``--resume``. A worker
that cannot reach its peers at start-up (a peer not started, a wrong address)
prints one line naming ``TF_CONFIG`` and the unreachable address and the process
then ends after ``train.peer_timeout_seconds``: TensorFlow's cluster start-up blocks
inside native code (holding Python's GIL) without a deadline, so a small watchdog
process prints the line and kills the blocked one (exit status 137, SIGKILL).

>>> resolve_kind("one_device")
'one_device'
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

from kerasrnn import atomic
from kerasrnn.errors import UserError

KINDS = ("auto", "one_device", "mirrored", "multi_worker")

#: Default of ``train.peer_timeout_seconds``.
PEER_TIMEOUT_SECONDS = 120.0


@dataclass
class Placement:
    """Where this process trains.

    Attributes:
        kind: ``one_device``, ``mirrored`` or ``multi_worker``.
        strategy: the `tf.distribute.Strategy`, or None for TensorFlow's default.
        is_chief: whether this process writes the run directory.
        worker_index: this worker's rank among the chief and workers (chief first).
        num_workers: number of workers (1 unless ``multi_worker``).
    """

    kind: str = "one_device"
    strategy: object = None
    is_chief: bool = True
    worker_index: int = 0
    num_workers: int = 1

    @property
    def replicas(self) -> int:
        return 1 if self.strategy is None else int(self.strategy.num_replicas_in_sync)


_ACTIVE: Placement | None = None
_MULTI_WORKER: Placement | None = None  # a MultiWorkerMirroredStrategy can be created once per process


# ----------------------------------------------------------------------------- TF_CONFIG


def tf_config() -> dict | None:
    """``TF_CONFIG`` parsed, or None when unset/empty; malformed -> `UserError`."""
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return None
    try:
        cfg = json.loads(raw)
    except ValueError as e:
        raise UserError(f"TF_CONFIG is not valid JSON ({e}); set it to e.g. "
                        '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
                        ) from None
    cluster = cfg.get("cluster") if isinstance(cfg, dict) else None
    task = cfg.get("task") if isinstance(cfg, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise UserError("TF_CONFIG needs a \"cluster\" object and a \"task\" object, e.g. "
                        '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}')
    return cfg


def cluster_members(cfg: dict) -> list[tuple[str, int, str]]:
    """``(job, index, address)`` of the training tasks (chief first, then workers)."""
    out = []
    for job in ("chief", "worker"):
        addresses = cfg["cluster"].get(job) or []
        if not isinstance(addresses, list):
            raise UserError(f"TF_CONFIG cluster.{job} must be a list of \"host:port\" strings, got {addresses!r}")
        out += [(job, i, str(a)) for i, a in enumerate(addresses)]
    return out


def _my_task(cfg: dict) -> tuple[str, int]:
    task = cfg["task"]
    job, index = task.get("type"), task.get("index", 0)
    members = cluster_members(cfg)
    if not isinstance(index, int) or (job, index) not in {(j, i) for j, i, _ in members}:
        raise UserError(f"TF_CONFIG task {task!r} is not in its cluster (chief/worker: "
                        f"{', '.join(f'{j} {i} = {a}' for j, i, a in members)}); give each worker its own "
                        "task.index into cluster.worker")
    return job, index


def multi_worker_configured() -> bool:
    """True when ``TF_CONFIG`` names more than one training task (chief + workers)."""
    cfg = tf_config()
    return cfg is not None and len(cluster_members(cfg)) > 1


# ----------------------------------------------------------------------------- choosing


def resolve_kind(setting: str) -> str:
    """``train.strategy`` with ``auto`` resolved (see the module docstring)."""
    if setting not in KINDS:
        raise UserError(f"train.strategy must be one of {', '.join(KINDS)}, got {setting!r}")
    if setting != "auto":
        return setting
    if multi_worker_configured():
        return "multi_worker"
    import tensorflow as tf  # lazy: heavy import

    return "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "one_device"


def activate(train_section: dict | None) -> Placement:
    """Create (or reuse) the strategy of a recipe's ``[train]`` section and make it current."""
    global _ACTIVE, _MULTI_WORKER
    train_section = train_section or {}
    kind = resolve_kind(str(train_section.get("strategy", "auto")))
    timeout = float(train_section.get("peer_timeout_seconds", PEER_TIMEOUT_SECONDS))
    if kind == "multi_worker":
        if float(train_section.get("max_minutes", 0) or 0) > 0:
            raise UserError("train.max_minutes is a per-worker wall-clock decision and would leave the other "
                            "workers waiting forever; with train.strategy = \"multi_worker\" set train.max_minutes = 0 "
                            "(use train.epochs / train.steps_per_epoch to bound the run)")
        if _MULTI_WORKER is None:
            _MULTI_WORKER = _create_multi_worker(timeout)
        placement = _MULTI_WORKER
    elif kind == "mirrored":
        import tensorflow as tf  # lazy: heavy import

        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        placement = Placement("mirrored", tf.distribute.MirroredStrategy(devices))
    else:
        placement = Placement("one_device")
    if placement.strategy is not None:
        install_keras_patches()
    _ACTIVE = placement
    return placement


def current() -> Placement:
    """The active placement (one device when none was activated)."""
    return _ACTIVE if _ACTIVE is not None else Placement()


def is_chief() -> bool:
    """Whether this process writes run directories (False only on non-chief workers)."""
    if _ACTIVE is not None:
        return _ACTIVE.is_chief
    cfg = tf_config() if multi_worker_configured() else None
    return cfg is None or _rank(cfg, *_my_task(cfg)) == 0


def verbosity(verbose: int) -> int:
    """Keras ``verbose``: as asked on the chief, 0 on the other workers (one progress bar)."""
    return verbose if is_chief() else 0


def backup_max_seconds() -> float | None:
    """The step backup's time trigger: None (its default) except multi-worker, where it is off (inf)."""
    return float("inf") if current().kind == "multi_worker" else None


def allowed_jit(jit: bool, setting: str = "auto") -> bool:
    """`jit` unless several replicas run on CPUs: TF 2.21's XLA cannot compile CPU collectives."""
    placement = current()
    if not jit or placement.replicas < 2:
        return jit
    import tensorflow as tf  # lazy: heavy import

    if tf.config.list_logical_devices("GPU"):
        return jit
    if str(setting).lower() not in ("auto", "false"):
        print("Note: train.jit_compile = true is ignored: XLA cannot compile the cross-replica all-reduce on "
              "CPUs (TensorFlow b/194942685); training without XLA.")
    return False


def shard_dataset(ds):
    """`ds` with DATA auto-sharding (kerasrnn's sources are in memory); unchanged on one device."""
    if current().strategy is None or not hasattr(ds, "with_options"):
        return ds
    import tensorflow as tf  # lazy: heavy import

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


@contextlib.contextmanager
def placed(recipe: dict):
    """Run a task inside the strategy of ``recipe["train"]`` (model creation and compile included)."""
    global _ACTIVE
    placement = activate(recipe.get("train"))
    try:
        scope = placement.strategy.scope() if placement.strategy is not None else contextlib.nullcontext()
        quiet = contextlib.nullcontext()
        if not placement.is_chief:  # one console: the chief's (errors still reach stderr)
            print(f"Worker {placement.worker_index} of {placement.num_workers} (TF_CONFIG): training with the chief; "
                  "progress and results are printed by the chief.", flush=True)
            quiet = contextlib.redirect_stdout(open(os.devnull, "w"))
        with scope, quiet:
            yield placement
        if placement.kind == "multi_worker":
            barrier(placement)  # leave together: a worker exiting while a peer still works can crash TF's shutdown
    except Exception as e:  # a peer that dies mid-run: one line, and how to continue
        if type(e).__name__ not in ("UnavailableError", "DeadlineExceededError", "AbortedError") or \
                placement.kind != "multi_worker":
            raise
        first = " ".join(str(e).split())[:240]
        _free_failed_all_reduce(e)
        raise UserError(f"a peer worker in TF_CONFIG failed or stopped responding ({first}); if it printed an "
                        "error, fix that; otherwise restart every worker with resume=True to continue from the "
                        "last backup",
                        cli_message=f"a peer worker in TF_CONFIG failed or stopped responding ({first}); if it "
                                    "printed an error, fix that; otherwise restart every worker with --resume to "
                                    "continue from the last backup") from None
    finally:
        _ACTIVE = None


def _free_failed_all_reduce(error: BaseException) -> None:
    """Free, now, what the failed collective's frames hold (TensorFlow's leaked ThreadPool).

    When an eager all-reduce fails, TensorFlow's ``_all_reduce_per_replica_values``
    leaves its ``multiprocessing.pool.ThreadPool`` open (tensorflow#50487). The
    error's traceback, which the one-line error keeps as its context, holds the
    pool until the interpreter exits. Its finaliser then writes to a pipe that is
    already closed and prints ``Exception ignored ... OSError: [Errno 9] Bad file
    descriptor`` after the one-line error. Clearing the traceback's finished
    frames drops the pool here, while its pipe still works.
    """
    traceback.clear_frames(error.__traceback__)
    gc.collect()


def barrier(placement: Placement) -> None:
    """Wait until every worker got here (a tiny all-reduce)."""
    import tensorflow as tf  # lazy: heavy import

    strategy = placement.strategy

    @tf.function
    def everyone():
        return strategy.reduce("SUM", strategy.run(lambda: tf.constant(1.0)), axis=None)

    float(everyone())


def placed_runner(fn):
    """Wrap a task's ``run(recipe, run_dir, ...)`` so it runs inside its recipe's strategy."""

    def run(recipe, run_dir, *args, **kwargs):
        with placed(recipe):
            return fn(recipe, run_dir, *args, **kwargs)

    run.__name__, run.__doc__, run.__wrapped__ = getattr(fn, "__name__", "run"), fn.__doc__, fn
    return run


# ----------------------------------------------------------------------------- multi-worker start-up


def _rank(cfg: dict, job: str, index: int) -> int:
    return [(j, i) for j, i, _ in cluster_members(cfg)].index((job, index))


def _create_multi_worker(timeout: float) -> Placement:
    import tensorflow as tf  # lazy: heavy import

    cfg = tf_config()
    if cfg is None or len(cluster_members(cfg)) < 2:
        raise UserError("train.strategy = \"multi_worker\" needs TF_CONFIG naming two or more workers, e.g. "
                        'TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                        '"task": {"type": "worker", "index": 0}}\'; or use train.strategy = "auto"')
    job, index = _my_task(cfg)
    members = cluster_members(cfg)
    me = f"{job} {index} ({members[_rank(cfg, job, index)][2]})"
    _configure_heartbeat(cfg, timeout)
    # TF's cluster start-up blocks in native code, GIL held, with no deadline: a watchdog
    # *process* ends this one if the strategy is not up within the timeout.
    watchdog = _start_watchdog(timeout, me, [(j, i, a) for j, i, a in members if (j, i) != (job, index)],
                               [a for *_, a in members])
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as e:
        raise UserError(f"cannot start multi-worker training ({' '.join(str(e).split())[:200]}); "
                        "the strategy must be created before TensorFlow runs anything in this process") from None
    finally:
        watchdog.stdin.close()  # tells it the start-up is over
        watchdog.wait()
    return Placement("multi_worker", strategy, is_chief=_rank(cfg, job, index) == 0,
                     worker_index=_rank(cfg, job, index), num_workers=len(members))


_WATCHDOG = r"""
import json, os, select, signal, socket, sys
parent, timeout, me, peers, everyone = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4]), sys.argv[5]
if select.select([sys.stdin], [], [], timeout)[0]:
    sys.exit(0)  # start-up over (or the parent died: end of file)
def up(address):
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=1).close()
        return True
    except (OSError, ValueError):
        return False
down = [f"{j} {i} at {a}" for j, i, a in peers if not up(a)]
what = f"could not reach {', '.join(down)}" if down else f"saw every peer's port open but the cluster did not form ({everyone})"
sys.stderr.write(f"Error: TF_CONFIG {me} {what} within train.peer_timeout_seconds = {timeout:g} s; start every "
                 "worker listed in TF_CONFIG['cluster'] (each with its own task.index) or fix the address\n")
sys.stderr.flush()
os.kill(parent, signal.SIGKILL)
"""


def _start_watchdog(timeout: float, me: str, peers: list, everyone: list):

    return subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(timeout), me,
                             json.dumps(peers), ", ".join(everyone)], stdin=subprocess.PIPE)


def _configure_heartbeat(cfg: dict, timeout: float) -> None:
    """TF's coordination service, as MultiWorkerMirroredStrategy would set it, with our heartbeat timeout."""
    internals = _keras_internals()
    context, pb2 = internals["context"], internals["coordination_config_pb2"]
    if context.context().coordination_service is not None:
        return
    jobs = [pb2.CoordinatedJob(name=j, num_tasks=len(cfg["cluster"][j]))
            for j in ("chief", "worker") if cfg["cluster"].get(j)]
    leader = "/job:chief/replica:0/task:0" if cfg["cluster"].get("chief") else "/job:worker/replica:0/task:0"
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=leader, coordinated_jobs=jobs,
        heartbeat_timeout_in_ms=int(max(timeout, 1) * 1000))


# ----------------------------------------------------------------------------- non-chief work directories


@contextlib.contextmanager
def worker_dir(run_dir: Path, resume: bool = False):
    """A non-chief worker's stand-in for the run lifecycle: a temporary directory, removed at the end.

    One left by a killed worker (its pid is in the name) is removed when the next one starts.

    With `resume`, the chief's work directory (or finished run) is copied in first, so
    this worker loads the same backup as the chief.
    """
    from kerasrnn import rundir  # lazy: rundir imports this module (import cycle)

    run_dir = Path(run_dir)
    for old in Path(tempfile.gettempdir()).glob(f"kerasrnn-worker*-{run_dir.name}-pid*-*"):
        pid = old.name.split("-pid")[-1].split("-")[0]  # left by a killed worker: remove it
        if old.is_dir() and pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"kerasrnn-worker{current().worker_index}-{run_dir.name}-pid{os.getpid()}-"))
    try:
        if resume:
            source = rundir.work_dir_for(run_dir)
            source = source if source.is_dir() else run_dir
            if not source.is_dir():
                raise UserError(f"worker {current().worker_index} cannot see the chief's run {source}; with "
                                "train.strategy = \"multi_worker\" the runs folder must be shared by every worker "
                                "(same path on a shared file system)")
            # The chief runs at the same time and writes its files by temp-and-rename (`kerasrnn.atomic`):
            # a temp file listed here may be renamed away before it is copied, and is never needed.
            shutil.copytree(source, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns(f"{atomic.TEMP_PREFIX}*"))
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True
    except OSError:
        return False
    return True


# ----------------------------------------------------------------------------- Keras internals (one place)


def _keras_internals() -> dict:
    """Every private TensorFlow/Keras name kerasrnn.distribute relies on (a Keras upgrade may move them)."""
    from keras.src import tree  # noqa: F401
    from keras.src.backend.tensorflow import optimizer as tf_optimizer  # lazy: heavy import
    from keras.src.backend.tensorflow import trainer as tf_trainer  # lazy: heavy import
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2  # lazy: heavy import
    from tensorflow.python.eager import context  # lazy: heavy import

    return {"tree": tree, "trainer": tf_trainer, "optimizer": tf_optimizer, "context": context,
            "coordination_config_pb2": coordination_config_pb2}


#: (module key, attribute) pairs the patches replace or call.
_REQUIRED = (("trainer", "TensorFlowTrainer"), ("trainer", "reduce_per_replica"),
             ("trainer", "_collective_all_reduce_multi_worker"), ("optimizer", "TFOptimizer"),
             ("context", "context"), ("coordination_config_pb2", "CoordinatedJob"))


def check_keras_internals() -> None:
    """Raise `RuntimeError` naming what moved if a Keras/TF upgrade broke the patches' assumptions."""
    import keras  # lazy: heavy import

    try:
        internals = _keras_internals()
    except ImportError as e:
        raise RuntimeError(f"kerasrnn.distribute: a private module moved in Keras {keras.__version__} ({e}); "
                           "update kerasrnn/distribute.py (_keras_internals)") from None
    missing = [f"{mod}.{name}" for mod, name in _REQUIRED if not hasattr(internals[mod], name)]
    trainer_cls, opt_cls = internals["trainer"].TensorFlowTrainer, internals["optimizer"].TFOptimizer
    missing += [f"TensorFlowTrainer.{m}" for m in ("_maybe_symbolic_build", "_symbolic_build")
                if not hasattr(trainer_cls, m)]
    missing += [f"TFOptimizer.{m}" for m in ("_clip_gradients", "_all_reduce_sum_gradients")
                if not hasattr(opt_cls, m)]
    if missing:
        raise RuntimeError(f"kerasrnn.distribute: Keras {keras.__version__} no longer has {', '.join(missing)}; "
                           "the tf.distribute patches in kerasrnn/distribute.py must be updated")


class _Spec:
    """What Keras' symbolic build reads of an input batch: its shape and dtype."""

    def __init__(self, shape, dtype):
        self.shape, self.dtype = shape, dtype


_PATCHED = False
_reduced_here = threading.local()  # MirroredStrategy runs each replica in its own thread


def install_keras_patches() -> None:
    """Install the three patches of the module docstring (idempotent)."""
    global _PATCHED
    if _PATCHED:
        return
    check_keras_internals()
    import tensorflow as tf  # lazy: heavy import

    k = _keras_internals()
    tree, tft, tfo = k["tree"], k["trainer"], k["optimizer"]

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):  # patch 1
        if self._distribute_strategy is None:
            return
        if iterator is not None:  # shapes and dtypes only, from the dataset's spec: taking a batch
            # would also drop it from training (with steps_per_epoch the iterator lives on)
            data_batch = tree.map_structure(lambda spec: _Spec(spec.shape, spec.dtype),
                                            iterator.data_adapter.get_tf_dataset().element_spec)
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    original_reduce = tft.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):  # patch 2
        if reduction in ("auto", "mean") and tft._collective_all_reduce_multi_worker(strategy):
            return tree.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=None)
                if isinstance(v, tf.distribute.DistributedValues) else v, values)
        return original_reduce(values, strategy, reduction)

    original_clip = tfo.TFOptimizer._clip_gradients
    original_all_reduce = tfo.TFOptimizer._all_reduce_sum_gradients

    def _clip_gradients(self, grads):  # patch 3: all-reduce, then clip
        ctx = tf.distribute.get_replica_context()
        if (ctx is not None and ctx.num_replicas_in_sync > 1 and not self.gradient_accumulation_steps
                and not tf.distribute.in_cross_replica_context()):
            present = [i for i, g in enumerate(grads) if g is not None]
            reduced = ctx.all_reduce(tf.distribute.ReduceOp.SUM, [grads[i] for i in present])
            grads = list(grads)
            for i, g in zip(present, reduced):
                grads[i] = g
            _reduced_here.done = True
        return original_clip(self, grads)

    def _all_reduce_sum_gradients(self, grads_and_vars):
        if getattr(_reduced_here, "done", False):
            _reduced_here.done = False
            return list(grads_and_vars)
        return original_all_reduce(self, grads_and_vars)

    tft.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build
    tft.reduce_per_replica = reduce_per_replica
    tfo.TFOptimizer._clip_gradients = _clip_gradients
    tfo.TFOptimizer._all_reduce_sum_gradients = _all_reduce_sum_gradients
    _PATCHED = True
