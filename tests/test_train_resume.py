"""A training process killed mid-epoch by a real signal and resumed ends with exactly the
weights of an uninterrupted run; a 2-process torchrun run ends with identical weights on both
ranks."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sparse.data.synth import SynthConfig, synthesize_corpus
from sparse.train.checkpoints import load_checkpoint
from tests.helpers import TINY_KWS_RUN, kill_mid_epoch

TINY = [
    *TINY_KWS_RUN,
    "train.batch_size=16", "train.epochs=3", "train.checkpoint_every=3",
    "train.evaluate_test=false",
    # the lr changes at every step, so a resume that restarts the curve anywhere else shows
    "schedule.kind=cosine", "schedule.warmup_steps=2",
]


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.getbasetemp() / "sparse-data"
    synthesize_corpus(SynthConfig.tiny(0), root=d / "tiny", workers=2)
    e = dict(os.environ)
    e.update(SPARSE_DATA_DIR=str(d), OMP_NUM_THREADS="1")
    return e


def _args(env: dict[str, str], out: Path, *extra: str) -> list[str]:
    sets = [*TINY, f"data.synth_dir={Path(env['SPARSE_DATA_DIR']) / 'tiny'}", *extra]
    return ["train", "--out", str(out), *[x for s in sets for x in ("--set", s)]]


def _run(env: dict[str, str], args: list[str], timeout: float = 240
         ) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "sparse.cli", *args], env=env,
                       capture_output=True, text=True, timeout=timeout)
    return r


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs"


def _records(run: Path) -> list[dict]:
    out = []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        r = json.loads(line)
        for k in ("epoch_seconds", "valid_seconds", "train_utterances_per_second"):
            r.pop(k)
        out.append(r)
    return out


@pytest.fixture(scope="module")
def reference(env, tmp_path_factory) -> Path:
    """An uninterrupted run."""
    out = tmp_path_factory.mktemp("reference") / "run"
    r = _run(env, _args(env, out))
    assert r.returncode == 0, r.stderr
    return out


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_mid_epoch_then_resumed_equals_uninterrupted(env, reference, tmp_path, sig):
    out = tmp_path / "run"
    code = kill_mid_epoch(_args(env, out), env, out, sig)
    assert code == (-signal.SIGKILL if sig == signal.SIGKILL else 130)
    state = load_checkpoint(out / "checkpoints" / "last.pt")
    p = state["progress"]
    assert p["epoch"] < 3 and p["step_in_epoch"] > 0, p  # it really stopped mid-epoch
    r = _run(env, ["train", "--resume", "--out", str(out)])
    assert r.returncode == 0, r.stderr
    assert "resumed" in r.stdout
    _assert_same(_weights(out / "checkpoints" / "last.pt"),
                 _weights(reference / "checkpoints" / "last.pt"))
    _assert_same(_weights(out / "checkpoints" / "best.pt"),
                 _weights(reference / "checkpoints" / "best.pt"))
    assert _records(out) == _records(reference)


def test_resume_refuses_another_architecture(env, reference, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(reference, run)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    cfg = run / "config.yaml"
    r = _run(env, ["train", str(cfg), "--resume", "--out", str(run), "--set",
                   "model.cortex_layer_sizes=[40]", "--set", "train.epochs=4"])
    assert r.returncode == 2
    assert "cortex_layer_sizes" in r.stderr and "Traceback" not in r.stderr
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_torchrun_two_processes_identical_weights(env, tmp_path):
    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.exists():
        pytest.skip("torchrun is not installed next to this Python")
    out = tmp_path / "ddp"
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "sparse.cli",
           *_args(env, out, "train.epochs=2", "train.checkpoint_every=0")]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    dist = json.loads((out / "distributed.json").read_text())
    assert dist["world_size"] == 2 and dist["identical"]
    assert dist["weights_sha256"][0] == dist["weights_sha256"][1]
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in records] == [1, 2]  # rank 0 alone writes the log
    state = load_checkpoint(out / "checkpoints" / "last.pt")
    assert state["world_size"] == 2
    # 105 clips in batches of 16: 7 batches, padded to 8 and split over 2 ranks = 4 steps each
    assert state["progress"]["global_step"] == 8
