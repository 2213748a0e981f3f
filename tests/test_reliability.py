"""Nothing lost, nothing silent: the run lifecycle, integrity checks and fault injection.

Fault injection runs the real CLI in a subprocess that kills itself (SIGKILL) at a
chosen point — after a step-level backup, or while a checkpoint / the final model
is being written (after the temporary file is written, before its rename) — or
interrupts itself (SIGINT), or runs under a tiny ``RLIMIT_FSIZE`` (a full disk).
Then ``recipe run --resume`` (no ``--set`` retyped) must finish a valid run.
"""

import json
import os
import random
import resource
import signal
import subprocess
import sys
import textwrap
import zipfile

import pytest
from click.testing import CliRunner

from kerasrnn import atomic, rundir
from kerasrnn.cli import main
from kerasrnn.errors import UserError
from kerasrnn.rundir import load_run

NAME = "text-char"
TINY = ["model.units=8", "model.num_layers=1", "model.embedding_dim=4", "data.seq_len=12", "train.batch_size=8",
        "train.epochs=2", "train.steps_per_epoch=10", "train.backup_every_steps=3", "train.verbose=0",
        "train.jit_compile=false", "eval.sample_length=5", "eval.seed_text=the"]

# Runs the CLI; kills itself at the chosen point. argv: POINT N KEY cli-args...
FAULT_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from kerasrnn.cli import import_tensorflow_quietly
    import_tensorflow_quietly()  # as `kerasrnn` does before any command that needs TensorFlow
    from kerasrnn import atomic, train
    point, n, key, args = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
    seen = [0]
    train.BACKUP_MAX_SECONDS = 1e9  # backups on the step schedule only, however loaded the machine is

    def hit(sig=signal.SIGKILL):
        seen[0] += 1
        if seen[0] == n:
            os.kill(os.getpid(), sig)

    if point == "backup":  # right after the n-th committed step backup
        save = train.StepBackup.save
        def patched(self, *a):
            save(self, *a)
            hit()
        train.StepBackup.save = patched
    elif point == "write":  # while writing the n-th file named like KEY: data written, not yet renamed
        fsync = atomic.fsync_file
        def patched(path):
            fsync(path)
            if key in os.path.basename(str(path)):
                hit()
        atomic.fsync_file = patched
    elif point == "sigint":  # Ctrl-C after the n-th training step
        step = train.TimeBudget.on_train_batch_end
        def patched(self, batch, logs=None):
            step(self, batch, logs)
            hit(signal.SIGINT)
        train.TimeBudget.on_train_batch_end = patched
    from kerasrnn.cli import main
    main(args, prog_name="kerasrnn")
""")


def make_text(path):
    rng = random.Random(0)
    words = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran"]
    path.write_text("\n".join(" ".join(rng.choice(words) for _ in range(8)) for _ in range(200)) + "\n")
    return path


def run_args(runs, text, *extra):
    args = ["recipe", "run", NAME, "--runs-dir", str(runs), "--set", f"data.paths={text}"]
    for s in TINY:
        args += ["--set", s]
    return args + list(extra)


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_error_line(result, *fragments):
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    for fragment in fragments:
        assert fragment in errors[0], result.output


def fault(point, n, key, args, preexec_fn=None):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "KERASRNN_VERBOSE")}
    return subprocess.run([sys.executable, "-c", FAULT_SCRIPT, point, str(n), key, *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=300, preexec_fn=preexec_fn)


TF_NOISE = ("I0000", "W0000", "E0000", "absl::", "cuInit", "oneDNN", "cuda")


def test_verbose_shows_tensorflow_log_lines_again(tmp_path):
    env = {**os.environ, "KERASRNN_VERBOSE": "1"}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    (tmp_path / "empty").mkdir()
    result = subprocess.run([sys.executable, "-m", "kerasrnn.cli", "data", "prepare", "tiny_shakespeare",
                             "--manual-dir", str(tmp_path / "empty"), "--data-dir", str(tmp_path / "tfds")],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "Error: " in result.stderr, result.stderr
    assert [tag for tag in (*TF_NOISE, "WARNING:absl") if tag in result.stderr], result.stderr  # lines are back


def history(run_dir):
    import csv

    with open(run_dir / "history.csv", newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def assert_valid_run(run_dir):
    run = load_run(run_dir, task="generation")  # model.keras, vocab.json, run.json all load
    assert run.model is not None and run.vocab["chars"]
    assert not rundir.work_dir_for(run_dir).exists()
    assert not list(run_dir.parent.glob(".tmp-*")) and not list(run_dir.parent.glob(".lock-*"))
    return run


# ----------------------------------------------------------------------------- lifecycle (no training)

RECIPE = {"run": {"task": "generation", "name": "demo", "seed": 0}, "train": {"epochs": 1, "batch_size": 8}}


def publish(run_dir, recipe=RECIPE, **kw):
    with rundir.lifecycle(recipe, run_dir, **kw) as work:
        (work / "run.json").write_text(json.dumps({"task": "generation", "recipe": recipe}))
        (work / "checkpoints").mkdir(exist_ok=True)
        (work / "checkpoints" / "state.json").write_text("{}")
    return run_dir


def test_lifecycle_refuses_to_replace_or_discard_without_being_asked(tmp_path):
    run_dir = publish(tmp_path / "demo")
    assert (run_dir / "recipe.toml").is_file() and not rundir.work_dir_for(run_dir).exists()
    with pytest.raises(rundir.RunExistsError, match="overwrite=True.*run.name") as e:
        publish(run_dir)
    assert "--overwrite" in e.value.cli_message
    publish(run_dir, overwrite=True)

    # an interrupted work dir: neither a new run nor an overwrite may discard it
    work = rundir.work_dir_for(run_dir)
    with pytest.raises(KeyboardInterrupt):
        with rundir.lifecycle(RECIPE, run_dir, overwrite=True) as work:
            (work / "checkpoints").mkdir()
            (work / "checkpoints" / "state.json").write_text("{}")
            raise KeyboardInterrupt
    assert work.is_dir() and (run_dir / "run.json").is_file()  # both kept
    for kw in ({}, {"overwrite": True}):
        with pytest.raises(rundir.RunInterruptedError, match="resume=True.*restart=True") as e:
            publish(run_dir, **kw)
        assert "--resume" in e.value.cli_message and "--restart" in e.value.cli_message
    publish(run_dir, restart=True, overwrite=True)
    assert not work.exists()


def test_failed_fresh_run_leaves_nothing_but_resumable_state_is_kept(tmp_path):
    run_dir = tmp_path / "demo"
    with pytest.raises(UserError, match="bad data"):
        with rundir.lifecycle(RECIPE, run_dir):
            raise UserError("bad data")
    assert not rundir.work_dir_for(run_dir).exists() and not run_dir.exists()
    assert not list(tmp_path.glob(".lock-*"))


def test_resume_checks_the_recipe_and_allows_only_continuation_keys(tmp_path):
    run_dir = tmp_path / "demo"
    with pytest.raises(RuntimeError):
        with rundir.lifecycle(RECIPE, run_dir) as work:
            (work / "checkpoints").mkdir()
            (work / "checkpoints" / "x").write_text("1")
            raise RuntimeError("killed")
    assert (rundir.work_dir_for(run_dir) / "recipe.toml").is_file()  # written at the start
    changed = {**RECIPE, "train": {"epochs": 1, "batch_size": 4}, "run": {**RECIPE["run"], "seed": 3}}
    with pytest.raises(rundir.RecipeChangedError, match=r"run.seed \(0 -> 3\), train.batch_size \(8 -> 4\)"):
        publish(run_dir, changed, resume=True)
    publish(run_dir, {**RECIPE, "train": {"epochs": 5, "batch_size": 8}}, resume=True)  # more epochs: fine
    assert (run_dir / "run.json").is_file()
    with pytest.raises(rundir.NothingToResumeError):
        publish(tmp_path / "other", resume=True)


def test_lock_refuses_a_concurrent_run_and_takes_over_a_stale_one(tmp_path):
    run_dir = tmp_path / "demo"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from kerasrnn.rundir import RunLock; "
                               f"RunLock({str(run_dir)!r}).acquire(); print('locked', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(rundir.RunLockedError, match=f"in use by another kerasrnn process \\(pid {holder.pid}"):
            publish(run_dir)
        result = cli("recipe", "run", "sine-forecast", "--runs-dir", tmp_path, "--set", "run.name=demo")
        assert_one_error_line(result, f"pid {holder.pid}", "wait for it to finish")
    finally:
        holder.kill()  # SIGKILL: the lock file stays behind with a dead pid
        holder.wait()
    assert rundir.lock_path_for(run_dir).exists()
    lock = rundir.RunLock(run_dir).acquire()
    assert lock.stale_pid == holder.pid
    lock.release()
    publish(run_dir)


def test_unwritable_runs_dir_and_corrupt_run_files_are_one_line_errors(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert_one_error_line(cli("recipe", "run", "sine-forecast", "--runs-dir", blocker / "runs"),
                          "cannot write run directories", "--runs-dir")

    import keras

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    model = keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(3, 2),
                              keras.layers.Dense(3)])
    model.save(run_dir / "model.keras")
    (run_dir / "run.json").write_text(json.dumps({"task": "generation", "recipe": {"eval": {}}}))
    (run_dir / "vocab.json").write_text(json.dumps({"chars": ["a", "b", "c"]}))
    assert load_run(run_dir).model is not None
    good = (run_dir / "model.keras").read_bytes()
    for damage, fragment in ((good[: len(good) // 2], "truncated or corrupt"),
                             (good[:100] + b"\0" * 200 + good[300:], "corrupt"), (b"", "truncated or corrupt")):
        (run_dir / "model.keras").write_bytes(damage)
        assert_one_error_line(cli("generate", run_dir, "--seed-text", "ab", "--length", "3"), fragment)
    (run_dir / "model.keras").write_bytes(good)
    for text in ('{"chars": ["a", "b"', '{"chars": []}', '["a"]', '{"chars": ["ab"]}'):
        (run_dir / "vocab.json").write_text(text)
        assert_one_error_line(cli("generate", run_dir, "--seed-text", "a"), "vocab.json")
    (run_dir / "vocab.json").write_text(json.dumps({"chars": ["a", "b", "c"]}))
    (run_dir / "run.json").write_text(json.dumps({"task": "classification", "recipe": {}}))
    (run_dir / "labels.json").write_text('{"class_names": ["neg"')
    assert_one_error_line(cli("classify", run_dir, "fine"), "labels.json")


def test_atomic_writes_fsync_the_file_and_its_directory(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(atomic, "fsync_file", lambda p: synced.append(("file", os.path.basename(p))))
    monkeypatch.setattr(atomic, "fsync_dir", lambda p: synced.append(("dir", str(p))))
    atomic.write_text(tmp_path / "a.txt", "x")
    assert synced[0][0] == "file" and synced[0][1].startswith(".tmp-a.txt") and synced[1] == ("dir", str(tmp_path))
    assert (tmp_path / "a.txt").read_text() == "x"


# ----------------------------------------------------------------------------- fault injection (subprocesses)

KILL_POINTS = [  # (point, n, file-name key): seeded-random n within each kind
    ("backup", 2, "-"),  # mid-epoch 1, step 6 of 10
    ("write", random.Random(1).randint(2, 4), "weights-"),  # writing a step backup's weights
    ("write", random.Random(2).randint(2, 4), "state.json"),  # committing a backup (after a first commit)
    ("write", 1, "model.keras"),  # writing the final model, just before the run is published
]
# The kill campaign (a benchmark): KERASRNN_KILL_CAMPAIGN=N adds N more seeded-random kill points.
_campaign = random.Random(10)
KILL_POINTS += [_campaign.choice([("backup", _campaign.randint(1, 6), "-"),
                                  ("write", _campaign.randint(1, 7), "weights-"),
                                  ("write", _campaign.randint(1, 7), "state.json"),
                                  ("write", _campaign.randint(1, 2), "last.keras"),
                                  ("write", 1, "best.keras"),
                                  ("write", 1, "samples.npz"),
                                  ("write", 1, "metrics.json"),
                                  ("write", 1, "vocab.json")])
                for _ in range(int(os.environ.get("KERASRNN_KILL_CAMPAIGN", "0")))]


@pytest.mark.parametrize("point,n,key", KILL_POINTS, ids=[f"{i}-{p}-{k}-{n}" for i, (p, n, k) in enumerate(KILL_POINTS)])
def test_kill_minus_9_then_resume_finishes_a_valid_run(tmp_path, point, n, key):
    text = make_text(tmp_path / "corpus.txt")
    runs = tmp_path / "runs"
    killed = fault(point, n, key, run_args(runs, text))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    run_dir = runs / NAME
    assert not run_dir.exists() and rundir.work_dir_for(run_dir).is_dir()  # nothing published, nothing lost
    assert (rundir.work_dir_for(run_dir) / "recipe.toml").is_file()
    fresh = cli(*run_args(runs, text))
    assert_one_error_line(fresh, "--resume", "--restart")
    resumed = cli("recipe", "run", NAME, "--runs-dir", runs, "--resume")  # no --set retyped
    assert resumed.exit_code == 0, resumed.output
    assert_valid_run(run_dir)
    rows = history(run_dir)
    assert sorted({int(r["epoch"]) for r in rows}) == [0, 1] and all(r["epoch_complete"] == 1 for r in rows)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2
    if point == "backup" or key == "model.keras":
        assert metrics["resumed_at"] is not None  # a committed backup was used
    assert [(int(r["epoch"]), int(r["epoch_steps"])) for r in rows] == [(0, 10), (1, 10)]
    if point == "backup":  # backups at steps 3, 6, 9 and the epoch end: the n-th one is where it resumed
        epoch, r = divmod(n - 1, 4)
        expected = {"epoch": epoch + 1, "steps_done": 3 * (r + 1)} if r < 3 else {"epoch": epoch + 2, "steps_done": 0}
        assert metrics["resumed_at"] == expected  # a mid-epoch resume ran only the epoch's remaining steps:
        # its history row still counts 10 steps in all (steps_done before + the rest after the resume)


def test_sigint_exits_130_with_the_resume_hint_and_resumes(tmp_path):
    text = make_text(tmp_path / "corpus.txt")
    runs = tmp_path / "runs"
    interrupted = fault("sigint", 14, "-", run_args(runs, text))  # epoch 2, after the step-12 backup
    assert interrupted.returncode == 130, interrupted.stderr[-2000:]
    assert f"Continue with: kerasrnn recipe run {NAME} --resume --runs-dir {runs}" in interrupted.stderr
    assert "Traceback" not in interrupted.stderr
    assert not [tag for tag in TF_NOISE if tag in interrupted.stderr], interrupted.stderr  # a quiet CLI
    resumed = cli("recipe", "run", NAME, "--runs-dir", runs, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert_valid_run(runs / NAME)
    assert json.loads((runs / NAME / "metrics.json").read_text())["resumed_at"] == {"epoch": 2, "steps_done": 3}


def test_full_disk_is_a_clear_error_and_the_previous_run_stays_intact(tmp_path):
    text = make_text(tmp_path / "corpus.txt")
    runs = tmp_path / "runs"
    first = cli(*run_args(runs, text))
    assert first.exit_code == 0, first.output
    before = {p.name: p.read_bytes() for p in (runs / NAME).iterdir() if p.is_file()}

    def tiny_file_size_limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (8_000, 8_000))

    full = fault("none", 0, "-", run_args(runs, text, "--overwrite"), preexec_fn=tiny_file_size_limit)
    assert full.returncode == 1, full.stderr[-3000:]
    errors = [line for line in full.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "File too large" in errors[0] and "Traceback" not in full.stderr, full.stderr
    assert {p.name: p.read_bytes() for p in (runs / NAME).iterdir() if p.is_file()} == before
    assert not rundir.work_dir_for(runs / NAME).exists()
    with zipfile.ZipFile(runs / NAME / "model.keras") as z:
        assert z.testzip() is None


def test_time_budget_records_a_cut_epoch_as_partial_and_resume_completes_it(tmp_path):
    text = make_text(tmp_path / "corpus.txt")
    runs = tmp_path / "runs"
    cut = cli(*run_args(runs, text, "--set", "train.max_minutes=0.0005"))  # 30 ms: crossed by the first step
    assert cut.exit_code == 0, cut.output
    rows = history(runs / NAME)
    assert len(rows) == 1 and rows[0]["epoch_complete"] == 0 and 1 <= rows[0]["epoch_steps"] < 10
    metrics = json.loads((runs / NAME / "metrics.json").read_text())
    assert metrics["stopped_by_time_budget"] is True
    assert metrics["partial_last_epoch"] == {"epoch": 1, "steps_done": int(rows[0]["epoch_steps"])}
    more = cli("recipe", "run", NAME, "--runs-dir", runs, "--resume", "--set", "train.max_minutes=0")
    assert more.exit_code == 0, more.output
    rows = history(runs / NAME)
    assert [(int(r["epoch"]), int(r["epoch_steps"]), int(r["epoch_complete"])) for r in rows] == [
        (0, rows[0]["epoch_steps"], 0), (0, 10, 1), (1, 10, 1)]
    assert_valid_run(runs / NAME)


def test_step_backup_also_saves_once_its_time_floor_has_passed(tmp_path):
    """`backup_every_steps` far above the steps run: the time floor (here 0 s) still backs up every step."""
    import keras
    import numpy as np

    from kerasrnn import train

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    saves = []
    backup = train.StepBackup(tmp_path / "backup", every_steps=1000, max_seconds=0.0)
    original = backup.save
    backup.save = lambda epoch, steps: (saves.append((epoch, steps)), original(epoch, steps))
    model.fit(np.ones((12, 3)), np.ones((12, 1)), batch_size=4, epochs=1, verbose=0, callbacks=[backup])
    assert saves == [(0, 1), (0, 2), (0, 3), (1, 0)]
    state = train.StepBackup.read_state(tmp_path / "backup")
    assert state["epoch"] == 1 and state["steps_done"] == 0
    assert [p.name for p in (tmp_path / "backup").glob("weights-*")] == [state["weights"]]  # older ones removed
