"""One writer per output folder: a second `sparse train` into a folder another process is
writing is refused (exit 2, the holder named) and the folder holds the first run only; a
stale lock is taken over; the lock goes away on SIGTERM; `evaluate` and `analyze` honour it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from sparse.data.synth import SynthConfig, synthesize_corpus
from sparse.train.checkpoints import load_checkpoint
from sparse.train.lock import LOCK_NAME, LockError, folder_lock, read_lock
from tests.helpers import TINY_KWS_RUN
from tests.slow_train import slowed

TINY = [
    *TINY_KWS_RUN,
    "train.batch_size=16", "train.epochs=2", "train.evaluate_test=false",
]


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.getbasetemp() / "sparse-data"
    synthesize_corpus(SynthConfig.tiny(0), root=d / "tiny", workers=2)
    e = dict(os.environ)
    e.update(SPARSE_DATA_DIR=str(d), OMP_NUM_THREADS="1")
    return e


def _train_args(env: dict[str, str], out: Path, *extra: str) -> list[str]:
    sets = [*TINY, f"data.synth_dir={Path(env['SPARSE_DATA_DIR']) / 'tiny'}", *extra]
    return [sys.executable, "-m", "sparse.cli", "train", "--out", str(out),
            *[x for s in sets for x in ("--set", s)]]


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, f"the process ended early: {proc.communicate()[1]}"
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_second_training_into_the_same_folder_is_refused(env, tmp_path, monkeypatch):
    out = tmp_path / "run"
    # 3 s after each of 14 steps: about 40 s
    first = subprocess.Popen(slowed(_train_args(env, out, "seed=1"), 3000), env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(out / "config.yaml", first)  # data loaded, training about to start
        second = subprocess.run(_train_args(env, out, "seed=2"), env=env, capture_output=True,
                                text=True, timeout=240)
        still_running = first.poll() is None
        stdout, stderr = first.communicate(timeout=400)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert still_running, "the first run ended before the second tried; slow it down"
    assert second.returncode == 2, second.stderr
    err = second.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert f"pid {first.pid}" in err and socket.gethostname() in err and "since" in err
    assert first.returncode == 0, stderr
    # the folder holds the first run only
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    assert yaml.safe_load((out / "config.yaml").read_text())["seed"] == 1
    for name in ("best.pt", "last.pt"):
        assert load_checkpoint(out / "checkpoints" / name)["config"]["seed"] == 1
    assert "seed=1" in " ".join(json.loads((out / "versions.json").read_text())["argv"])
    assert not (out / LOCK_NAME).exists()

    # evaluate and analyze refuse an output folder another live process is writing
    from sparse.cli import main

    monkeypatch.setenv("SPARSE_DATA_DIR", env["SPARSE_DATA_DIR"])
    holder = {"pid": os.getppid(), "host": socket.gethostname(), "since": time.time(),
              "command": "sparse evaluate elsewhere"}
    for command, folder in (("evaluate", "evaluation"), ("analyze", "analysis")):
        (out / folder).mkdir(exist_ok=True)
        (out / folder / LOCK_NAME).write_text(json.dumps(holder))
        code = main([command, str(out), "--split", "valid"])
        assert code == 2, command
        assert read_lock(out / folder) == holder  # left alone
        assert [p.name for p in (out / folder).iterdir()] == [LOCK_NAME]


def test_stale_lock_is_taken_over_and_a_live_one_is_not(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    host = socket.gethostname()
    stale = {"pid": _dead_pid(), "host": host, "since": 0.0, "command": "sparse train"}
    (folder / LOCK_NAME).write_text(json.dumps(stale))
    with folder_lock(folder):
        assert read_lock(folder)["pid"] == os.getpid()
    assert not (folder / LOCK_NAME).exists()

    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for holder in ({"pid": live.pid, "host": host, "since": time.time()},
                       {"pid": _dead_pid(), "host": "another-host", "since": time.time()}):
            (folder / LOCK_NAME).write_text(json.dumps(holder))
            with pytest.raises(LockError) as e, folder_lock(folder):
                pass
            assert f"pid {holder['pid']}" in str(e.value) and holder["host"] in str(e.value)
            assert read_lock(folder) == holder
    finally:
        live.kill()
        live.wait()


def test_lock_is_released_on_sigterm_and_an_unused_folder_removed(tmp_path):
    folder = tmp_path / "new" / "out"
    code = ("import sys, time\nfrom sparse.train.lock import folder_lock\n"
            f"with folder_lock({str(folder)!r}):\n    print('held', flush=True)\n"
            "    time.sleep(120)\n")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        assert read_lock(folder)["pid"] == proc.pid
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM
    assert not folder.exists()  # nothing was written there: the folder is gone again
    # nested holders in one process share the lock
    with folder_lock(folder), folder_lock(folder):
        (folder / "x").write_text("x")
    assert not (folder / LOCK_NAME).exists() and (folder / "x").is_file()
