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
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # as `kerasrnn` does before any command that
    import_tensorflow_quietly()                         # needs TensorFlow (XLA logs at its first compile)
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


def test_recipe_show_of_every_shipped_recipe_is_quiet_and_never_imports_tensorflow():
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "KERASRNN_VERBOSE")}
    code = ("import sys; from kerasrnn import recipes; from kerasrnn.cli import main\n"
            "names = recipes.list_recipes()\n"
            "assert len(names) >= 9, names\n"
            "for name in names:\n"
            "    try:\n        main(['recipe', 'show', name], prog_name='kerasrnn')\n"
            "    except SystemExit as e:\n        assert not e.code, name\n"
            "    assert 'tensorflow' not in sys.modules, name  # every task schema lives in a TF-free module\n")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.count("[run]") >= 9, result.stderr
    assert not [tag for tag in (*TF_NOISE, "WARNING:absl") if tag in result.stderr], result.stderr


def test_a_classifier_run_prints_no_tensorflow_line(tmp_path):
    """Masked classifiers made TensorFlow print an E-level oneDNN line at run time (after import)."""
    rows = ["text,label"] + [f"{'good fun' if i % 2 else 'dull plot'} {i},{'pos' if i % 2 else 'neg'}" for i in range(40)]
    (tmp_path / "reviews.csv").write_text("\n".join(rows) + "\n")
    args = ["recipe", "run", "csv-sentiment", "--runs-dir", tmp_path / "runs", "--set", f"data.path={tmp_path}/reviews.csv"]
    for s in ("model.units=4", "model.embedding_dim=4", "model.max_len=8", "model.max_tokens=50", "train.epochs=1",
              "train.batch_size=4", "train.verbose=0", "train.jit_compile=false", "eval.baseline=false"):
        args += ["--set", s]
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "KERASRNN_VERBOSE")}
    result = subprocess.run([sys.executable, "-m", "kerasrnn.cli", *map(str, args)], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not [tag for tag in (*TF_NOISE, "WARNING:absl") if tag in result.stderr], result.stderr
    # ... nor does running its TFLite export: LiteRT's native "INFO: Created TensorFlow Lite XNNPACK
    # delegate" line stays off stderr (it is printed when the interpreter is made).
    run_dir = tmp_path / "runs" / "csv-sentiment"
    for command in (["export", run_dir, "--format", "tflite"],
                    ["classify", "--tflite", run_dir / "export" / "tflite" / "model.tflite", "good fun 3"]):
        result = subprocess.run([sys.executable, "-m", "kerasrnn.cli", *map(str, command)], env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        assert not [tag for tag in (*TF_NOISE, "WARNING:absl", "XNNPACK", "INFO:") if tag in result.stderr], \
            result.stderr
    assert result.stdout.split("\t")[0] in ("pos", "neg"), result.stdout


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


def leave_interrupted_run(recipe, run_dir):
    """Start `recipe` in `run_dir` and die after one checkpoint file: a run ``--resume`` can pick up."""
    with pytest.raises(RuntimeError):
        with rundir.lifecycle(recipe, run_dir) as work:
            (work / "checkpoints").mkdir()
            (work / "checkpoints" / "x").write_text("1")
            raise RuntimeError("killed")


def test_resume_checks_the_recipe_and_allows_only_continuation_keys(tmp_path):
    run_dir = tmp_path / "demo"
    leave_interrupted_run(RECIPE, run_dir)
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
        assert_one_error_line(result, f"pid {holder.pid}", "wait for it to finish", "--set run.name=NEW")
        rundir.work_dir_for(run_dir).mkdir()  # the live run's work dir is not an "interrupted" one
        for extra in ([], ["--resume"], ["--restart"]):
            result = cli("recipe", "run", "sine-forecast", "--runs-dir", tmp_path, "--set", "run.name=demo", *extra)
            assert_one_error_line(result, "in use by another kerasrnn process")
        rundir.work_dir_for(run_dir).rmdir()
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
# The kill campaign (a benchmark): KERASRNN_KILL_CAMPAIGN=N adds N more kill points, distinct, drawn
# (seeded) from every step backup and every file the run writes after its work directory appears.
_CAMPAIGN = sorted({*[("backup", i, "-") for i in range(1, 9)],
                    *[("write", i, "weights-") for i in range(1, 9)],
                    *[("write", i, "state.json") for i in range(1, 9)],  # backup commits and epoch checkpoints
                    ("write", 1, "last.keras"), ("write", 2, "last.keras"), ("write", 1, "best.keras"),
                    ("write", 1, "training_curves.png"), ("write", 1, "samples.npz"),
                    ("write", 1, "metrics.json"), ("write", 1, "vocab.json"), ("write", 1, "run.json"),
                    ("write", 3, "recipe.toml")} - set(KILL_POINTS))  # 1, 2: the start (write, fsync_tree)
KILL_POINTS += random.Random(10).sample(_CAMPAIGN, min(len(_CAMPAIGN), int(os.environ.get("KERASRNN_KILL_CAMPAIGN",
                                                                                          "0"))))


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


def test_kill_before_the_work_dir_appears_leaves_nothing_and_the_same_command_starts_over(tmp_path):
    text = make_text(tmp_path / "corpus.txt")
    runs = tmp_path / "runs"
    killed = fault("write", 1, "origin.json", run_args(runs, text))  # inside the start's temporary folder
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (runs / NAME).exists() and not rundir.work_dir_for(runs / NAME).exists()
    assert [p.name for p in runs.glob(".tmp-*")]  # the temporary folder, which no reader looks at
    again = cli(*run_args(runs, text))
    assert again.exit_code == 0, again.output
    assert_valid_run(runs / NAME)  # and the leftover was cleaned up


def test_leftovers_of_a_killed_run_are_cleaned_without_touching_another_runs(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    mine = [tmp_path / ".tmp-.partial-demo-abc_12", tmp_path / f".old-demo-{dead}"]
    others = [tmp_path / ".tmp-.partial-demo-2-abc_12", tmp_path / f".old-demo-2-{dead}"]
    for folder in mine + others:
        folder.mkdir()
    (tmp_path / "demo").mkdir()
    rundir._remove_leftovers(tmp_path / "demo")
    assert [f.exists() for f in mine + others] == [False, False, True, True]
    (tmp_path / "demo").rmdir()  # killed between finish's two renames: the old run is put back
    rundir._remove_leftovers(tmp_path / "demo-2")
    assert (tmp_path / "demo-2").is_dir() and not others[1].exists() and not others[0].exists()


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


# ----------------------------------------------------------------------------- a new user's bad inputs

def _setup_bad_inputs(root):
    """Files the bad inputs point at: texts, CSVs, recipes, a tiny generation run, damaged runs."""
    import keras

    from kerasrnn.rundir import save_model, write_json

    (root / "empty.txt").write_text("")
    (root / "cp1252.txt").write_bytes(("caf\xe9 " * 200).encode("cp1252"))
    make_text(root / "corpus.txt")
    (root / "reviews.csv").write_text("text,label\n" + "".join(f"film {i},{'pos' if i % 2 else 'neg'}\n"
                                                                for i in range(40)))
    (root / "one_class.csv").write_text("text,label\n" + "".join(f"film {i},pos\n" for i in range(40)))
    (root / "broken.toml").write_text("[run\ntask = 'generation'\n")
    (root / "badtask.toml").write_text("[run]\ntask = 'translation'\n")
    (root / "blocker").write_text("a file, not a folder")
    gen = root / "gen"
    gen.mkdir()
    model = keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(3, 2),
                              keras.layers.LSTM(4, return_sequences=True), keras.layers.Dense(3)])
    save_model(model, gen / "model.keras")
    write_json(gen / "vocab.json", {"chars": ["a", "b", "c"], "unknown_char_policy": "error"})
    write_json(gen / "run.json", {"task": "generation", "name": "gen", "recipe": {"eval": {"seed_text": "a"}}})
    truncated = root / "truncated"
    truncated.mkdir()
    for name in ("vocab.json", "run.json"):
        (truncated / name).write_bytes((gen / name).read_bytes())
    (truncated / "model.keras").write_bytes((gen / "model.keras").read_bytes()[:3000])
    labels = root / "labels"
    labels.mkdir()
    write_json(labels / "run.json", {"task": "classification", "name": "labels", "recipe": {}})
    (labels / "labels.json").write_text('{"class_names": ["neg"')
    (root / "notarun").mkdir()
    # runs/: a finished run "done", an interrupted run "cut"
    runs = root / "runs"
    publish(runs / "done")
    (runs / ".partial-cut" / "checkpoints").mkdir(parents=True)
    (runs / ".partial-cut" / "checkpoints" / "state.json").write_text("{}")


R = "{root}"  # replaced by the folder of `_setup_bad_inputs`
TXT = ["--set", f"data.paths={R}/corpus.txt"]
# (id, CLI arguments, fragments the one "Error:" line must contain). Each is what a new user types.
BAD_INPUTS = [
    ("unknown-recipe", ["recipe", "run", "no-such-recipe"], ["unknown recipe", "recipe list"]),
    ("missing-recipe-file", ["recipe", "run", f"{R}/missing.toml"], ["does not exist"]),
    ("broken-toml", ["recipe", "show", f"{R}/broken.toml"], ["not valid TOML"]),
    ("unknown-task", ["recipe", "show", f"{R}/badtask.toml"], ["run.task", "generation"]),
    ("set-without-equals", ["recipe", "show", "text-char", "--set", "train.epochs"], ["section.key=value"]),
    ("unknown-section", ["recipe", "show", "text-char", "--set", "training.epochs=3"], ["[training]", "valid sections: run, data, model, train"]),
    ("misspelt-key", ["recipe", "show", "text-char", "--set", "train.epoch=3"], ["'epoch'", "epochs"]),
    ("wrong-type", ["recipe", "show", "text-char", "--set", "train.epochs=three"], ["train.epochs", "int"]),
    ("epochs-negative", ["recipe", "run", "sine-forecast", "--set", "train.epochs=-1"], ["train.epochs", ">= 1"]),
    ("epochs-zero", ["recipe", "run", "sine-forecast", "--set", "train.epochs=0"], ["train.epochs", ">= 1"]),
    ("batch-size-zero", ["recipe", "run", "sine-forecast", "--set", "train.batch_size=0"], ["train.batch_size"]),
    ("lr-negative", ["recipe", "run", "sine-forecast", "--set", "train.learning_rate=-1"],
     ["train.learning_rate", "> 0"]),
    ("lr-nan", ["recipe", "run", "sine-forecast", "--set", "train.learning_rate=nan"], ["train.learning_rate", "finite"]),
    ("lr-inf", ["recipe", "run", "sine-forecast", "--set", "train.learning_rate=inf"], ["train.learning_rate", "finite"]),
    ("clipnorm-negative", ["recipe", "run", "text-char", "--set", "train.clipnorm=-1"], ["train.clipnorm", ">= 0"]),
    ("max-minutes-negative", ["recipe", "run", "text-char", "--set", "train.max_minutes=-5"], ["train.max_minutes"]),
    ("backup-negative", ["recipe", "run", "text-char", "--set", "train.backup_every_steps=-1"],
     ["train.backup_every_steps"]),
    ("jit-typo", ["recipe", "run", "text-char", "--set", "train.jit_compile=yes please"], ["train.jit_compile"]),
    ("units-zero", ["recipe", "run", "text-char", "--set", "model.units=0"], ["model.units", ">= 1"]),
    ("dropout-one", ["recipe", "run", "text-char", "--set", "model.dropout=1"], ["model.dropout", "< 1"]),
    ("unknown-cell", ["recipe", "run", "sine-forecast", "--set", "model.cell=transformer"], ["model.cell", "lstm"]),
    ("seq-len-one", ["recipe", "run", "text-char", "--set", "data.seq_len=1"], ["data.seq_len", ">= 2"]),
    ("temperature-negative", ["recipe", "run", "text-char", "--set", "eval.temperature=-1"], ["eval.temperature"]),
    ("top-p-zero", ["recipe", "run", "text-char", "--set", "eval.top_p=0"], ["eval.top_p", "> 0"]),
    ("top-p-above-one", ["recipe", "run", "text-char", "--set", "eval.top_p=1.5"], ["eval.top_p", "<= 1"]),
    ("fractions-sum", ["recipe", "run", "sine-forecast", "--set", "data.fractions=0.5,0.5,0.5"],
     ["data.fractions", "sum to 1"]),
    ("fractions-count", ["recipe", "run", "sine-forecast", "--set", "data.fractions=0.8,0.2"],
     ["data.fractions", "3 values"]),
    ("delimiter-two-chars", ["recipe", "run", "csv-sentiment", "--set", "data.delimiter=;;"], ["data.delimiter"]),
    ("run-name-path", ["recipe", "run", "text-char", "--set", "run.name=../elsewhere"], ["run.name"]),
    ("no-text-file", ["recipe", "run", "text-char", "--runs-dir", f"{R}/runs"], ["data.paths"]),
    ("missing-text-file", ["recipe", "run", "text-char", "--runs-dir", f"{R}/runs", "--set",
                           f"data.paths={R}/nope.txt"], ["data.paths", "nope.txt"]),
    ("empty-text-file", ["recipe", "run", "text-char", "--runs-dir", f"{R}/runs", "--set",
                         f"data.paths={R}/empty.txt"], ["empty", "data.paths"]),
    ("undecodable-text", ["recipe", "run", "text-char", "--runs-dir", f"{R}/runs", "--set",
                          f"data.paths={R}/cp1252.txt"], ["data.encoding=cp1252"]),
    ("csv-no-path", ["recipe", "run", "csv-sentiment", "--runs-dir", f"{R}/runs"], ["data.path"]),
    ("csv-wrong-column", ["recipe", "run", "csv-sentiment", "--runs-dir", f"{R}/runs", "--set",
                          f"data.path={R}/reviews.csv", "--set", "data.text_column=review"], ["'review'", "'text', 'label'"]),
    ("csv-one-class", ["recipe", "run", "csv-sentiment", "--runs-dir", f"{R}/runs", "--set",
                       f"data.path={R}/one_class.csv"], ["class"]),
    ("unwritable-runs-dir", ["recipe", "run", "text-char", "--runs-dir", f"{R}/blocker/runs", *TXT],
     ["cannot write run directories", "--runs-dir"]),
    ("rerun-finished", ["recipe", "run", "text-char", "--runs-dir", f"{R}/runs", "--set", "run.name=done", *TXT],
     ["already holds a finished run", "--overwrite", "run.name"]),
    ("rerun-interrupted", ["recipe", "run", "text-char", "--runs-dir", f"{R}/runs", "--set", "run.name=cut", *TXT],
     ["interrupted run", "--resume", "--restart"]),
    ("resume-nothing", ["recipe", "run", "text-char", "--runs-dir", f"{R}/runs", "--set", "run.name=none", "--resume"],
     ["nothing to resume", "without --resume"]),
    ("resume-and-restart", ["recipe", "run", "text-char", "--runs-dir", f"{R}/runs", "--set", "run.name=cut",
                            "--resume", "--restart"], ["--resume and --restart"]),
    ("generate-not-a-run", ["generate", f"{R}/notarun"], ["not a kerasrnn run directory"]),
    ("generate-truncated-model", ["generate", f"{R}/truncated", "--length", "3"], ["model.keras", "truncated"]),
    ("generate-seed-outside-vocab", ["generate", f"{R}/gen", "--seed-text", "xyz", "--length", "3"], ["seed"]),
    ("generate-temperature-negative", ["generate", f"{R}/gen", "--temperature", "-1"], ["--temperature"]),
    ("generate-top-p-zero", ["generate", f"{R}/gen", "--top-p", "0"], ["--top-p"]),
    ("classify-damaged-labels", ["classify", f"{R}/labels", "fine"], ["labels.json"]),
    ("forecast-on-generation-run", ["forecast", f"{R}/gen"], ["'generation' run", "forecasting"]),
    ("inspect-missing-file", ["data", "inspect", f"{R}/nope.txt"], ["nope.txt"]),
]


@pytest.fixture(scope="module")
def bad_input_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    _setup_bad_inputs(root)
    return root


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("args,fragments", [b[1:] for b in BAD_INPUTS], ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_is_one_error_line_naming_the_fix_and_writes_nothing(bad_input_root, args, fragments):
    args = [a.replace(R, str(bad_input_root)) for a in args]
    if "recipe" in args and "run" in args and "--runs-dir" not in args:
        args += ["--runs-dir", str(bad_input_root / "runs")]
    before = _tree(bad_input_root)
    result = cli(*args)
    assert_one_error_line(result, *fragments)
    assert _tree(bad_input_root) == before  # nothing written, nothing lost (no half-run, no lock left)


def test_early_stopping_keeps_the_latest_weights_between_fit_calls(tmp_path):
    """A resume makes two fit calls (the cut epoch's rest, then the others): the second must go on
    from the latest weights and optimizer state, not from the best epoch's; `fit` restores the best at the end."""
    import keras
    import numpy as np

    from kerasrnn import train

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.5), "mse")
    x, y = np.random.default_rng(0).normal(size=(32, 3)), np.ones((32, 1))
    early = train.ResumableEarlyStopping(tmp_path, patience=0)
    checkpoint = train.EpochCheckpoint(tmp_path, early)
    model.fit(x, y, validation_data=(x, -100 * y), epochs=3, verbose=0, callbacks=[early, checkpoint])
    latest = model.get_weights()
    optimizer_state = [v.numpy() for v in model.optimizer.variables]
    assert early.best_epoch == 0 and (tmp_path / "best.keras").is_file()  # val_loss only grows here
    assert not all(np.allclose(a, b) for a, b in zip(latest, early.best_weights))  # best != latest
    fresh = train.ResumableEarlyStopping(tmp_path, patience=0)  # as a resumed fit call makes it
    fresh.set_model(model)
    fresh.on_train_begin()
    fresh.on_train_end()
    assert fresh.best_epoch == 0 and all(np.allclose(a, b) for a, b in zip(fresh.best_weights, early.best_weights))
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), latest))
    assert all(np.array_equal(v.numpy(), o) for v, o in zip(model.optimizer.variables, optimizer_state))


def test_resume_accepts_a_recipe_stored_before_new_keys_with_defaults_existed(tmp_path):
    """A run started by an older kerasrnn (its recipe.toml lacks a key added since) still resumes."""
    from kerasrnn import recipes

    recipe = recipes.load_recipe("sine-forecast", ["run.name=demo"])
    run_dir = tmp_path / "demo"
    leave_interrupted_run(recipe, run_dir)
    stored = rundir.work_dir_for(run_dir) / "recipe.toml"
    old = recipes.read_toml(stored)
    defaults = recipes.TrainConfig()
    added = [k for k in old["train"] if old["train"][k] == getattr(defaults, k)][:3]  # keys "added later",
    assert len(added) == 3                                                               # at their defaults
    for key in added:
        del old["train"][key]
    stored.write_text(recipes.to_toml(old))
    publish(run_dir, recipe, resume=True)
    assert (run_dir / "run.json").is_file()
