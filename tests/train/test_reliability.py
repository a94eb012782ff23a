"""``bayesncl fit`` loses nothing and continues nothing silently wrong (issue 18 items 1-4, 8, 9,
12, 13; issue 11: the resume position stored by the data module, ``fit(callbacks=...)``).

Every fit here is tiny (128 digits images, batches of 16, no validation)."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from bayesncl.cli import main
from bayesncl.train.checkpointing import AtomicCheckpointIO, prev_path
from bayesncl.train.fit import fit
from bayesncl.train.rundir import RESUMABLE_KEYS, RunDirError, RunDirLock, check_writable

from ..conftest import TINY_FIT

SMALL = [
    *TINY_FIT, "--data.train_subset", "128", "--data.batch_size", "16", "--data.val_subset", "32",
    "--trainer.limit_val_batches", "0", "--trainer.log_every_n_steps", "1",
]  # fmt: skip
STEPS_PER_EPOCH = 8  # 128 / 16


def args(run_dir: Path, *extra: str) -> list[str]:
    return [*SMALL, "--run_dir", str(run_dir), *extra]


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def last(run_dir: Path) -> Path:
    return run_dir / "checkpoints" / "last.ckpt"


class Interrupted(Exception):
    pass


class StopAt(Callback):
    """Raise before the step that would make ``global_step == step + 1`` (a crash: the
    checkpoint written at ``step`` is the last one)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            raise Interrupted


def interrupted_then_resumed(run_dir: Path, argv: list[str], stop: int) -> dict:
    with pytest.raises(Interrupted):
        fit(argv, callbacks=[StopAt(stop)])
    assert load(last(run_dir))["global_step"] == stop
    fit(argv)  # the same command again: auto-resume
    return load(last(run_dir))


def assert_same_weights(a: dict, b: dict) -> None:
    assert a["global_step"] == b["global_step"]
    sa, sb = a["state_dict"], b["state_dict"]
    assert sa.keys() == sb.keys()
    diff = {k: (sa[k].double() - sb[k].double()).abs().max().item() for k in sa}
    assert all(torch.equal(sa[k], sb[k]) for k in sa), max(diff.items(), key=lambda kv: kv[1])


# ----------------------------------------------------------------- item 8 + issue 11 item 6
@pytest.mark.parametrize(
    "extra,stop",
    [
        # per-image augmentation in a loader worker, resumed mid-epoch 1 (was 0.199 apart)
        (["--data.augment_on", "sample", "--data.num_workers", "1"], STEPS_PER_EPOCH + 4),
        # epochs shortened by limit_train_batches: the position is not a function of global_step
        (["--trainer.limit_train_batches", "0.5"], STEPS_PER_EPOCH // 2 + 2),
    ],
    ids=["sample-path-with-worker", "limit-train-batches"],
)
def test_resume_in_epoch_1_is_bit_identical(tmp_path, extra, stop):
    common = ["--trainer.max_epochs", "2", "--trainer.checkpoint_every_n_steps", "2", *extra]
    straight = tmp_path / "straight"
    fit(args(straight, *common))
    resumed = interrupted_then_resumed(
        tmp_path / "resumed", args(tmp_path / "resumed", *common), stop
    )
    assert_same_weights(load(last(straight)), resumed)


# ----------------------------------------------------------------------------------- item 2
def test_resumed_run_continues_metrics_csv(tmp_path):
    run = tmp_path / "run"
    argv = args(run, "--trainer.max_epochs", "3", "--trainer.checkpoint_every_n_steps", "2")
    # each segment logs one step after its last checkpoint (steps 6 and 14), which the next
    # segment trains and logs again: it must replace the old row, not duplicate it
    with pytest.raises(Interrupted):
        fit(argv, callbacks=[StopAt(7)])
    with pytest.raises(Interrupted):
        fit(argv, callbacks=[StopAt(15)])
    fit(argv)
    rows = list(csv.DictReader((run / "logs" / "metrics.csv").open()))
    steps = [int(r["step"]) for r in rows if r.get("train/loss")]
    assert steps == list(range(3 * STEPS_PER_EPOCH)), steps  # every step of the 3 segments, once
    epochs = [r["epoch"] for r in rows if r.get("train/loss_epoch")]
    assert epochs == ["0", "1", "2"]


# ----------------------------------------------------------------------------- item 1 and 12
DYING_WRITER = """
import io, os, sys
import bayesncl.train.checkpointing as ckpt
real, calls = ckpt._write, []
def dying(checkpoint, f):
    calls.append(1)
    if len(calls) == 2:  # the second checkpoint: half written, then the process dies
        buf = io.BytesIO()
        real(checkpoint, buf)
        f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
        f.flush()
        os._exit(9)
    real(checkpoint, f)
ckpt._write = dying
from bayesncl.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def shm_run_dir():
    """A run directory on a RAM disk (tmpfs), another filesystem than the test's TMPDIR."""
    if not Path("/dev/shm").is_dir():
        pytest.skip("no /dev/shm")
    d = Path("/dev/shm") / f"bayesncl-test-{uuid.uuid4().hex}"
    yield d / "run"
    shutil.rmtree(d, ignore_errors=True)


def test_kill_during_checkpoint_write_on_another_filesystem_than_tmpdir(
    tmp_path, shm_run_dir, monkeypatch
):
    tmpdir = tmp_path / "tmpdir"  # on disk; the run dir is on tmpfs
    tmpdir.mkdir()
    assert os.stat(tmpdir).st_dev != os.stat("/dev/shm").st_dev
    argv = args(shm_run_dir, "--trainer.checkpoint_every_n_steps", "2")
    env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": str(Path.cwd() / "src")}
    out = subprocess.run(
        [sys.executable, "-c", DYING_WRITER, "fit", *argv], env=env, capture_output=True, text=True
    )
    assert out.returncode == 9, out.stderr[-2000:]
    assert load(last(shm_run_dir))["global_step"] == 2  # the previous checkpoint is intact
    assert (shm_run_dir / "checkpoints" / ".last.ckpt.tmp").is_file()  # the torn temp file
    assert list(tmpdir.iterdir()) == []  # nothing written to (or left in) $TMPDIR
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    monkeypatch.setattr(tempfile, "tempdir", None)
    assert main(["fit", *argv]) == 0  # rerun: resumes from step 2
    assert load(last(shm_run_dir))["global_step"] == STEPS_PER_EPOCH
    assert not (shm_run_dir / "checkpoints" / ".last.ckpt.tmp").exists()
    assert list(tmpdir.iterdir()) == []


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished 1-epoch run with last.ckpt (epoch end, step 8) and last.prev.ckpt (step 8,
    saved at the last step) (copied per test)."""
    run = tmp_path_factory.mktemp("finished") / "run"
    assert main(["fit", *args(run, "--trainer.checkpoint_every_n_steps", "4")]) == 0
    return run


@pytest.fixture
def run_copy(finished_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    return run


def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous_one(run_copy, capsys):
    newest = last(run_copy)
    prev = load(prev_path(newest))
    newest.write_bytes(newest.read_bytes()[:5000])  # truncated
    assert main(["fit", *args(run_copy, "--trainer.checkpoint_every_n_steps", "4")]) == 0
    err = capsys.readouterr().err
    assert f"{newest} does not load" in err and "resuming from the previous checkpoint" in err
    assert newest.with_name("last.ckpt.bad").is_file()
    assert load(newest)["global_step"] == prev["global_step"]


@pytest.mark.parametrize("kind", ["truncated", "not-a-checkpoint", "foreign-model"])
def test_an_unloadable_checkpoint_is_a_clear_error(run_copy, capsys, kind):
    newest = last(run_copy)
    prev_path(newest).unlink()
    if kind == "truncated":
        newest.write_bytes(newest.read_bytes()[:5000])
        why = "does not load"
    elif kind == "not-a-checkpoint":
        torch.save({"weights": torch.zeros(3)}, newest)
        why = "is not a checkpoint written by bayesncl fit"
    else:
        ckpt = load(newest)
        ckpt["state_dict"] = {k + ".other": v for k, v in ckpt["state_dict"].items()}
        torch.save(ckpt, newest)
        why = "was written by another model"
    argv = args(run_copy, "--trainer.checkpoint_every_n_steps", "4")
    assert main(["fit", *argv]) == 2
    err = capsys.readouterr().err
    assert f"{newest} {why}" in err, err
    assert f"delete it (rm {newest})" in err and "--resume never" in err
    assert main(["fit", *argv, "--resume", "never"]) == 0  # the fix the message gives works
    assert load(newest)["global_step"] == STEPS_PER_EPOCH


class Payload:
    """Unpickling this creates a file: what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_resume_never_unpickles_code(run_copy, tmp_path, monkeypatch, capsys):
    """item 13: even with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1, fit loads weights-only."""
    marker = tmp_path / "pwned"
    newest = last(run_copy)
    prev_path(newest).unlink()
    ckpt = load(newest)
    ckpt["payload"] = Payload(marker)
    torch.save(ckpt, newest)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    assert main(["fit", *args(run_copy, "--trainer.checkpoint_every_n_steps", "4")]) == 2
    assert not marker.exists()
    assert "weights-only load refuses" in capsys.readouterr().err


def test_non_finite_weights_are_never_checkpointed(tmp_path):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(2)}, "global_step": 1}, path)
    with pytest.raises(FloatingPointError, match=f"the last finite checkpoint {path} was kept"):
        io.save_checkpoint({"state_dict": {"w": torch.tensor([1.0, float("nan")])}}, path)
    assert load(path)["global_step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


# ----------------------------------------------------------------------------------- item 9
def test_a_rerun_with_other_settings_is_refused(run_copy, capsys):
    config = (run_copy / "config.yaml").read_text()
    base = ["--trainer.checkpoint_every_n_steps", "4"]
    assert main(["fit", *args(run_copy, *base, "--model.optim.lr", "0.1", "--seed", "3")]) == 2
    err = capsys.readouterr().err
    assert "model.optim.lr: 0.4 -> 0.1" in err and "seed: 0 -> 3" in err
    assert "another --run_dir" in err and "--resume force" in err
    assert (run_copy / "config.yaml").read_text() == config  # not overwritten
    # settings that do not change what is trained may differ
    assert "data.num_workers" in RESUMABLE_KEYS
    assert main(["fit", *args(run_copy, "--trainer.checkpoint_every_n_steps", "2")]) == 0
    # on purpose: continues, keeps the old config
    forced = args(run_copy, *base, "--model.optim.lr", "0.1", "--resume", "force")
    assert main(["fit", *forced]) == 0
    assert "model.optim.lr: 0.4 -> 0.1" in capsys.readouterr().err
    assert "lr: 0.4" in (run_copy / "config.1.yaml").read_text()
    assert "lr: 0.1" in (run_copy / "config.yaml").read_text()


# ----------------------------------------------------------------------------------- item 3
def test_unwritable_run_dir_fails_at_start_up(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["fit", *args(blocker / "run")]) == 2
    assert f"{blocker} is a file, not a directory" in capsys.readouterr().err
    # read-only checkpoints/: as root chmod does not stop writes, so os.access stands in for it
    ckpts = tmp_path / "run" / "checkpoints"
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if Path(p) == ckpts else real_access(p, m))
    with pytest.raises(RunDirError, match=f"{ckpts} is not writable: make it writable"):
        check_writable(ckpts)
    assert main(["fit", *args(tmp_path / "run")]) == 2
    assert f"{ckpts} is not writable" in capsys.readouterr().err
    assert not (ckpts / "last.ckpt").exists()


# ----------------------------------------------------------------------------------- item 4
HOLD_LOCK = """
import sys, time
from pathlib import Path
from bayesncl.train.rundir import RunDirLock
RunDirLock(Path(sys.argv[1])).acquire()
print("locked", flush=True)
time.sleep(120)
"""


def test_a_second_fit_on_a_locked_run_dir_is_refused_and_a_killed_holder_does_not_block(
    tmp_path, capsys
):
    run = tmp_path / "run"
    run.mkdir()
    env = {**os.environ, "PYTHONPATH": str(Path.cwd() / "src")}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(run)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["fit", *args(run)]) == 2
        err = capsys.readouterr().err
        assert f"in use by another bayesncl fit (pid {holder.pid} on host" in err, err
        with pytest.raises(RunDirError, match=f"pid {holder.pid}"):
            RunDirLock(run).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert main(["fit", *args(run)]) == 0  # the kernel dropped the dead holder's lock
    assert f"pid {os.getpid()} " in (run / ".lock").read_text()
