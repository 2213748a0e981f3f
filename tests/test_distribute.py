"""train.strategy: Keras fit under tf.distribute (kerasrnn/distribute.py), proved on loopback.

The multi-worker tests launch real `kerasrnn recipe run` worker processes on free
127.0.0.1 ports with TF_CONFIG, one intra-op thread each, on a tiny char recipe.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from kerasrnn import distribute
from kerasrnn.bench.scale import free_ports
from kerasrnn.errors import UserError

TINY = ["--set", "data.seq_len=16", "--set", "model.units=8", "--set", "model.num_layers=1",
        "--set", "model.embedding_dim=4", "--set", "model.dropout=0", "--set", "train.batch_size=8",
        "--set", "train.jit_compile=false", "--set", "train.patience=0", "--set", "train.verbose=2",
        "--set", "eval.sample_length=5", "--set", "eval.seed_text=the"]
#: SGD with a large step and clipping that is surely active: a missing, doubled or per-replica
#: reduction (or a skipped batch) shows up far above the 1e-5 bound.
SGD = ["--set", "train.optimizer=sgd", "--set", "train.learning_rate=0.5", "--set", "train.clipnorm=0.05",
       "--set", "train.epochs=2", "--set", "train.steps_per_epoch=5"]
HANG_GUARD = 240  # seconds: a broken collective must fail the test, never hang the suite


@pytest.fixture()
def corpus(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    words = "the cat sat on a mat and then ran far away from home to see big dogs".split()
    path = tmp_path / "corpus.txt"
    path.write_text(" ".join(rng.choice(words, 1500)), encoding="utf-8")
    return path


def _env(tmp: Path, ports=None, index=0) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="2", OMP_NUM_THREADS="1",
               TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    if ports is not None:
        env["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                                       "task": {"type": "worker", "index": index}})
        scratch = tmp / f"tmp-worker{index}"  # where a non-chief's temporary run directory goes
        scratch.mkdir(exist_ok=True)
        env["TMPDIR"] = str(scratch)
    return env


def _command(runs: Path, corpus: Path, extra) -> list[str]:
    return [sys.executable, "-m", "kerasrnn.cli", "recipe", "run", "text-char", "--runs-dir", str(runs),
            "--set", f"data.paths={corpus}", *TINY, *extra]


def launch_workers(tmp: Path, runs: Path, corpus: Path, extra, ports=None) -> list[subprocess.Popen]:
    ports = ports or free_ports(2)
    return [subprocess.Popen(_command(runs, corpus, extra), env=_env(tmp, ports, i), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for i in range(len(ports))]


def finish(procs, timeout=HANG_GUARD) -> list[tuple[int, str, str]]:
    out = []
    for p in procs:
        try:
            stdout, stderr = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise AssertionError("a worker hung (collective deadlock?)") from None
        out.append((p.returncode, stdout, stderr))
    return out


def weights(path: Path) -> list[np.ndarray]:
    import keras

    import kerasrnn.dropout  # noqa: F401
    import kerasrnn.layers  # noqa: F401

    return keras.saving.load_model(path).get_weights()


def max_diff(a: Path, b: Path) -> float:
    wa, wb = weights(a), weights(b)
    assert [w.shape for w in wa] == [w.shape for w in wb]
    return max(float(np.max(np.abs(x - y))) for x, y in zip(wa, wb))


# ----------------------------------------------------------------------------- loopback proofs


def test_two_workers_with_sgd_equal_one_process_and_only_the_chief_writes(tmp_path, corpus):
    runs, ref = tmp_path / "runs", tmp_path / "ref"
    procs = launch_workers(tmp_path, runs, corpus, SGD)
    single = subprocess.run(_command(ref, corpus, [*SGD, "--set", "train.strategy=one_device"]),
                            env=_env(tmp_path), capture_output=True, text=True, timeout=HANG_GUARD)
    (rc0, out0, err0), (rc1, out1, err1) = finish(procs)
    assert (rc0, rc1, single.returncode) == (0, 0, 0), (err0[-2000:], err1[-2000:], single.stderr[-2000:])

    # 10 SGD steps over the same global batches of 8: worker weights == one process
    assert max_diff(runs / "text-char/checkpoints/last.keras", ref / "text-char/checkpoints/last.keras") <= 1e-5
    # the chief's run directory is complete; the other worker left nothing anywhere
    from kerasrnn import rundir

    run = rundir.load_run(runs / "text-char", task="generation", load_model=False)
    assert run.metrics["epochs_run"] == 2
    assert sorted(p.name for p in runs.iterdir()) == ["text-char"]
    assert list((tmp_path / "tmp-worker1").glob("kerasrnn-*")) == []
    # one console: epochs and results on the chief only
    assert "Epoch 2/2" in out0 and "Run directory" in out0
    assert "Epoch" not in out1 and "Run directory" not in out1 and "training with the chief" in out1
    # metrics were reduced across workers: the chief logs what one process logs
    hist = [l.split(",") for l in (runs / "text-char/history.csv").read_text().splitlines()]
    ref_hist = [l.split(",") for l in (ref / "text-char/history.csv").read_text().splitlines()]
    col = hist[0].index("val_loss")
    assert [float(r[col]) for r in hist[1:]] == pytest.approx([float(r[col]) for r in ref_hist[1:]], abs=1e-5)


def test_killed_worker_fails_the_other_and_resume_finishes_with_adam(tmp_path, corpus):
    runs = tmp_path / "runs"
    ports = free_ports(2)
    extra = ["--set", "train.epochs=60", "--set", "train.steps_per_epoch=4", "--set", "train.backup_every_steps=2",
             "--set", "train.peer_timeout_seconds=10"]
    procs = launch_workers(tmp_path, runs, corpus, extra, ports)
    state_path = runs / ".partial-text-char/checkpoints/backup/state.json"
    deadline = time.monotonic() + HANG_GUARD
    while not (state_path.is_file() and json.loads(state_path.read_text() or "{}").get("epoch", 0) >= 1):
        assert procs[0].poll() is None and time.monotonic() < deadline, "the run did not reach epoch 2"
        time.sleep(0.05)
    procs[1].send_signal(signal.SIGKILL)
    (rc0, _, err0), _ = finish(procs)
    assert rc0 == 1
    last = err0.strip().splitlines()[-1]
    assert last.startswith("Error: a peer worker in TF_CONFIG failed or stopped responding") and "--resume" in last, \
        err0[-4000:]
    assert "Exception ignored" not in err0, err0[-4000:]  # TensorFlow's leaked all-reduce pool (distribute.py)
    state = json.loads(state_path.read_text())

    resumed = launch_workers(tmp_path, runs, corpus, [*extra, "--resume", "--set", f"train.epochs={state['epoch'] + 1}"],
                             ports)
    (rc0, out0, err0), (rc1, _, err1) = finish(resumed)
    assert (rc0, rc1) == (0, 0), (err0[-2000:], err1[-2000:])
    assert "Resuming at epoch" in out0
    from kerasrnn import rundir

    run = rundir.load_run(runs / "text-char", task="generation")
    assert run.metrics["resumed_at"]["epoch"] == state["epoch"] + 1
    assert run.metrics["epochs_run"] == state["epoch"] + 1
    assert np.isfinite(run.metrics["val_loss_nats_per_char"])
    # the killed worker's temporary directory was removed by the restarted one, which removed its own
    assert list((tmp_path / "tmp-worker1").glob("kerasrnn-*")) == []


def test_unreachable_peer_is_one_line_naming_tf_config_and_the_address(tmp_path, corpus):
    ports = free_ports(2)
    lone = subprocess.Popen(_command(tmp_path / "runs", corpus, ["--set", "train.peer_timeout_seconds=3"]),
                            env=_env(tmp_path, ports, 0), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ((rc, _, err),) = finish([lone])
    assert rc == -signal.SIGKILL  # the watchdog ends the start-up that TF blocks in native code
    assert list((tmp_path / "runs").iterdir()) == []  # no run, no work directory, no lock
    line = err.strip().splitlines()[-1]
    assert line.startswith("Error: TF_CONFIG worker 0") and f"could not reach worker 1 at 127.0.0.1:{ports[1]}" in line
    assert "train.peer_timeout_seconds = 3 s" in line


MIRRORED = r"""
import sys, tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(1)
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from kerasrnn import recipes
from kerasrnn.tasks import registry
sets = sys.argv[3:]
for kind in ("one_device", "mirrored"):
    recipe = recipes.load_recipe("text-char", [*sets, f"train.strategy={kind}", f"run.name={kind}",
                                               "train.verbose=0"])
    registry.runner("generation")(recipe, __import__("pathlib").Path(sys.argv[1]) / kind)
"""


def test_mirrored_on_two_logical_cpus_equals_one_device(tmp_path, corpus):
    sets = [a for a in [*TINY, *SGD] if a != "--set"] + [f"data.paths={corpus}"]
    done = subprocess.run([sys.executable, "-c", MIRRORED, str(tmp_path), "x", *sets], env=_env(tmp_path),
                          capture_output=True, text=True, timeout=HANG_GUARD)
    assert done.returncode == 0, done.stderr[-3000:]
    assert max_diff(tmp_path / "one_device/checkpoints/last.keras", tmp_path / "mirrored/checkpoints/last.keras") <= 1e-5


# ----------------------------------------------------------------------------- settings and errors


def _tf_config(monkeypatch, workers=2, index=0, chief=False):
    cluster = {"worker": [f"127.0.0.1:{1000 + i}" for i in range(workers)]}
    if chief:
        cluster["chief"] = ["127.0.0.1:999"]
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))


def test_auto_picks_multi_worker_only_when_tf_config_names_several(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribute.resolve_kind("auto") == "one_device"  # CPU only (conftest hides GPUs)
    _tf_config(monkeypatch, workers=1)
    assert distribute.resolve_kind("auto") == "one_device"
    _tf_config(monkeypatch, workers=2)
    assert distribute.resolve_kind("auto") == "multi_worker"


def test_chief_is_worker_0_unless_there_is_a_chief_task(monkeypatch):
    _tf_config(monkeypatch, index=0)
    assert distribute.is_chief()
    _tf_config(monkeypatch, index=1)
    assert not distribute.is_chief() and distribute.verbosity(1) == 0
    _tf_config(monkeypatch, index=0, chief=True)
    assert not distribute.is_chief()


def test_bad_tf_config_and_refused_settings_are_one_line_errors(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(UserError, match="TF_CONFIG is not valid JSON"):
        distribute.resolve_kind("auto")
    _tf_config(monkeypatch, index=5)
    with pytest.raises(UserError, match="task.index"):
        distribute.is_chief()
    _tf_config(monkeypatch)
    with pytest.raises(UserError, match=r"train.max_minutes = 0"):
        distribute.activate({"strategy": "multi_worker", "max_minutes": 4.5})
    monkeypatch.delenv("TF_CONFIG")
    with pytest.raises(UserError, match="needs TF_CONFIG naming two or more workers"):
        distribute.activate({"strategy": "multi_worker"})
    with pytest.raises(UserError, match="train.strategy must be one of"):
        distribute.resolve_kind("horovod")


def test_recipe_keys_are_validated_and_sgd_is_available():
    from kerasrnn import recipes, train

    with pytest.raises(UserError, match="train.strategy"):
        recipes.load_recipe("text-char", ["train.strategy=horovod"])
    with pytest.raises(UserError, match="train.optimizer"):
        recipes.load_recipe("text-char", ["train.optimizer=rmsprop"])
    cfg = recipes.TrainConfig(optimizer="sgd", clipnorm=0.5)
    opt = train.make_optimizer(cfg)
    assert type(opt).__name__ == "SGD" and opt.clipnorm == 0.5
    assert type(train.make_optimizer(recipes.TrainConfig())).__name__ == "Adam"


def test_keras_internals_the_patches_need_are_there_and_a_move_is_named(monkeypatch):
    distribute.check_keras_internals()  # fails loudly after a Keras upgrade that moved them
    from keras.src.backend.tensorflow import optimizer as tfo

    monkeypatch.delattr(tfo.TFOptimizer, "_all_reduce_sum_gradients")
    with pytest.raises(RuntimeError, match=r"no longer has TFOptimizer._all_reduce_sum_gradients"):
        distribute.check_keras_internals()


def test_bench_scale_paper_model_arithmetic_and_registration():
    from click.testing import CliRunner

    from kerasrnn.commands.bench import BENCHES, bench
    from kerasrnn.bench.scale import paper

    rows = {(r["link_gbps"], r["nodes"]): r for r in paper(0.5, 3_318_401)}
    # ring all-reduce: 2 (N-1)/N x 13.27 MB over 10 Gb/s = 10.6 ms for 2 nodes, 20.6 ms for 32
    assert rows[(10, 2)]["allreduce_s"] == pytest.approx(2 * 0.5 * 4 * 3_318_401 * 8 / 10e9, rel=1e-4)
    assert rows[(10, 32)]["allreduce_s"] == pytest.approx(2 * 31 / 32 * 4 * 3_318_401 * 8 / 10e9, rel=1e-4)
    assert rows[(100, 8)]["speedup"] == pytest.approx(8 * 0.5 / (0.5 + 2 * 7 / 8 * 4 * 3_318_401 * 8 / 100e9))
    assert "scale" in BENCHES
    assert "--batch-size" in CliRunner().invoke(bench, ["scale", "--help"]).output


def test_resuming_worker_copies_the_chiefs_run_without_its_temp_files(tmp_path):
    """The chief writes by temp-and-rename while a resuming worker copies its work directory: a temp
    file listed by the copy may vanish before it is read (a FileNotFoundError that failed a resume)."""
    from kerasrnn import distribute, rundir

    run_dir = tmp_path / "runs" / "demo"
    work = rundir.work_dir_for(run_dir)
    (work / "checkpoints").mkdir(parents=True)
    (work / "recipe.toml").write_text("x = 1\n")
    (work / "checkpoints" / "state.json").write_text("{}")
    (work / ".tmp-origin.json-abc123").write_text("half")
    (work / "checkpoints" / ".tmp-state.json-def456").mkdir()
    with distribute.worker_dir(run_dir, resume=True) as copy:
        names = sorted(str(p.relative_to(copy)) for p in copy.rglob("*"))
    assert names == ["checkpoints", "checkpoints/state.json", "recipe.toml"]
    assert not copy.exists()
