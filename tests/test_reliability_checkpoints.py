"""Nothing lost, nothing silently wrong, around checkpoints and the folders commands write:

* a checkpoint whose model holds a non-finite number or a neuron parameter out of its range is
  refused by ``sparse evaluate``, ``sparse analyze``, the Python restore path and resuming,
  naming the file and the first such tensor; training that diverges writes no checkpoint of
  the diverged state;
* an analysis that fails leaves its output folder as it was (earlier results included);
* the temporary file of a checkpoint write killed before its rename (a real process, SIGKILL)
  is removed when the run resumes, and nothing else is;
* two ``sparse synth --force`` into one folder at once (real processes): the second is refused
  at once, naming the first, and the first completes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import sparse
from sparse.cli import main
from sparse.data.synth import SynthConfig, synthesize_corpus
from sparse.train.checkpoints import (
    CheckpointError,
    first_invalid_tensor,
    load_checkpoint,
    save_checkpoint,
)
from sparse.train.config import load_config
from sparse.train.run import train_run
from tests.helpers import TINY_KWS_RUN

TINY = [
    *TINY_KWS_RUN,
    "train.batch_size=8", "data.limit_train=16", "data.limit_eval=8", "train.epochs=1",
    "train.evaluate_test=false",
]
WEIGHT = "encoder.front.cortex.layers.0.linear.weight"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """SPARSE_DATA_DIR for these tests, holding the tiny corpus (shared by the test files)."""
    d = tmp_path_factory.getbasetemp() / "sparse-data"
    synthesize_corpus(SynthConfig.tiny(0), root=d / "tiny", workers=2)
    return d


@pytest.fixture
def sub_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` that makes a subprocess import this very ``sparse``."""
    tree = str(Path(sparse.__file__).resolve().parents[1])
    e = dict(env)
    e["PYTHONPATH"] = os.pathsep.join(p for p in (tree, env.get("PYTHONPATH")) if p)
    return e


def _config(data_dir: Path, *extra: str):
    return load_config(None, [*TINY, f"data.synth_dir={data_dir / 'tiny'}", *extra])


def _train(data_dir: Path, out: Path, *extra: str, resume: bool = False) -> dict:
    old = os.environ.get("SPARSE_DATA_DIR")
    os.environ["SPARSE_DATA_DIR"] = str(data_dir)
    try:
        return train_run(_config(data_dir, *extra), out, resume=resume, verbose=False)
    finally:
        if old is None:
            os.environ.pop("SPARSE_DATA_DIR", None)
        else:
            os.environ["SPARSE_DATA_DIR"] = old


@pytest.fixture(scope="module")
def run_dir(data_dir, tmp_path_factory) -> Path:
    """A run folder trained for two steps on the tiny corpus."""
    return Path(_train(data_dir, tmp_path_factory.mktemp("reliability") / "run")["run_dir"])


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` (relative path -> SHA-1), folders as ``name/ -> ""``."""
    return {
        p.relative_to(root).as_posix() + ("/" if p.is_dir() else ""):
            "" if p.is_dir() else hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
    }


def _altered(run_dir: Path, path: Path, key: str, index: tuple[int, ...], value: float,
             **also: float) -> Path:
    """A copy of the run's best checkpoint with ``state_dict[key][index] = value`` (and the
    same ``index`` of ``key``'s siblings named in ``also``)."""
    state = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    state.pop("format")
    state["model"][key][index] = value
    for name, v in also.items():
        state["model"][key.rsplit(".", 1)[0] + "." + name][index] = v
    return save_checkpoint(state, path)


def _one_paragraph(err: str, command: str) -> None:
    assert err.startswith(f"sparse {command}: error: ") and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err


# ------------------------------------------------------------------ models that cannot be right


@pytest.mark.parametrize("key,index,value,also,says", [
    (WEIGHT, (3, 5), float("nan"), {},
     "1 NaN of its 1024 value(s) (the first at index [3, 5])"),
    ("encoder.readout.norm.running_var", (2,), float("inf"), {}, "1 +inf"),
    ("encoder.front.nerve.tau_u", (7,), 0.5, {},
     "outside its range [3, 25] ms (the first, 0.5 ms, at index [7])"),
    # tau_u 25 ms and tau_w 30 ms cap a at 25 / 3000: a = 0.5 is in [-0.5, 5] but oscillates
    ("encoder.front.cortex.layers.0.neurons.a", (0,), 0.5, {"tau_u": 25.0, "tau_w": 30.0},
     "above the cap (tau_w - tau_u)^2 / (4 tau_u tau_w) of their neuron"),
], ids=["nan-weight", "inf-buffer", "tau-out-of-range", "a-above-cap"])
def test_evaluate_refuses_a_checkpoint_that_holds_no_usable_model(
        run_dir, env, tmp_path, capsys, key, index, value, also, says):
    bad = _altered(run_dir, tmp_path / "bad.pt", key, index, value, **also)
    out = tmp_path / "evaluation"
    capsys.readouterr()
    code = main(["evaluate", str(bad), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    _one_paragraph(err, "evaluate")
    assert str(bad) in err and f"'{key}'" in err and says in err
    assert not out.exists()  # nothing written


def test_evaluate_of_a_nan_checkpoint_exits_2_as_a_real_process(run_dir, sub_env, tmp_path):
    bad = _altered(run_dir, tmp_path / "nan.pt", WEIGHT, (0, 0), float("nan"))
    r = subprocess.run([sys.executable, "-m", "sparse.cli", "evaluate", str(bad), "--out",
                        str(tmp_path / "evaluation")], env=sub_env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 2, (r.stdout, r.stderr)
    _one_paragraph(r.stderr, "evaluate")
    assert str(bad) in r.stderr and f"'{WEIGHT}' holds 1 NaN" in r.stderr
    assert "accuracy" not in r.stdout
    assert not (tmp_path / "evaluation").exists()


def test_analyze_refuses_a_nan_checkpoint_and_leaves_folders_as_they_were(
        run_dir, sub_env, tmp_path, capsys):
    bad = _altered(run_dir, tmp_path / "nan.pt", "encoder.front.nerve.tau_w", (1,),
                   float("nan"))
    earlier = tmp_path / "analysis"  # the outputs of an earlier analysis
    (earlier / "figures").mkdir(parents=True)
    (earlier / "index.html").write_text("<html>earlier analysis</html>\n")
    (earlier / "figures" / "parameters.png").write_bytes(b"\x89PNG earlier")
    before = tree(earlier)
    r = subprocess.run([sys.executable, "-m", "sparse.cli", "analyze", str(bad), "--out",
                        str(earlier), "--num-utterances", "1", "--shuffles", "5", "--quiet"],
                       env=sub_env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, (r.stdout, r.stderr)
    _one_paragraph(r.stderr, "analyze")
    assert str(bad) in r.stderr and "'encoder.front.nerve.tau_w' holds 1 NaN" in r.stderr
    assert tree(earlier) == before

    fresh = tmp_path / "fresh"
    capsys.readouterr()
    code = main(["analyze", str(bad), "--out", str(fresh), "--num-utterances", "1",
                 "--shuffles", "5", "--quiet"])
    assert code == 2 and "'encoder.front.nerve.tau_w'" in capsys.readouterr().err
    assert not fresh.exists()


def test_restore_and_resume_refuse_a_nan_checkpoint(run_dir, data_dir, tmp_path):
    from sparse.train.restore import restore_run

    bad = _altered(run_dir, tmp_path / "nan.pt", "encoder.readout.tau_u", (4,), float("-inf"))
    with pytest.raises(CheckpointError) as info:
        restore_run(bad)
    message = str(info.value)
    assert str(bad) in message and "'encoder.readout.tau_u' holds 1 -inf" in message

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    last = run / "checkpoints" / "last.pt"
    _altered(run_dir, last, WEIGHT, (1, 1), float("nan"))
    before = tree(run)
    with pytest.raises(CheckpointError) as info:
        _train(data_dir, run, "train.epochs=2", resume=True)
    assert str(last) in str(info.value) and f"'{WEIGHT}' holds 1 NaN" in str(info.value)
    assert tree(run) == before


def test_training_that_diverges_writes_no_checkpoint_of_it(data_dir, tmp_path, monkeypatch):
    """A step that leaves a weight NaN (its loss was finite: the next loss would show it) at
    the end of the second epoch: the epoch's checkpoints are not written."""
    from sparse.train import trainer

    real = trainer.constrain_parameters
    steps = []

    def poisoned(module: torch.nn.Module) -> None:  # runs after every optimiser step
        real(module)
        steps.append(1)
        if len(steps) == 4:  # 2 steps per epoch: the last step of epoch 2
            module.state_dict()[WEIGHT][2, 3] = float("nan")

    monkeypatch.setattr(trainer, "constrain_parameters", poisoned)
    out = tmp_path / "run"
    with pytest.raises(FloatingPointError) as info:
        _train(data_dir, out, "train.epochs=2")
    message = str(info.value)
    assert "diverged at epoch 2" in message and f"'{WEIGHT}' holds 1 NaN" in message
    assert "[2, 3]" in message and "No checkpoint of this state was written" in message
    for name in ("last.pt", "best.pt"):
        state = load_checkpoint(out / "checkpoints" / name)
        assert state["progress"]["epoch"] == 1  # epoch 1's, the last good state
        assert torch.isfinite(state["model"][WEIGHT]).all()
    records = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in records] == [1]


# ------------------------------------------------------------------ analysis: all or nothing


def test_an_analysis_that_fails_leaves_the_earlier_one_untouched(run_dir, tmp_path, monkeypatch):
    from sparse.analysis import outputs as analysis_outputs
    from sparse.analysis.analyze import analyze_checkpoint

    def analyze(out: Path, n: int) -> dict:
        return analyze_checkpoint(run_dir, out, num_utterances=n, n_shuffles=5,
                                  plot_utterances=n, progress=False)

    out = tmp_path / "analysis"
    first = analyze(out, 1)
    before = tree(out)
    assert "index.html" in before and len(first["figures"]) >= 2
    assert all(Path(p).is_file() and out in Path(p).parents for p in first["figures"].values())

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:  # the re-run (two utterances) fails near its end
        m.setattr(analysis_outputs, "write_all", fail)
        with pytest.raises(OSError, match="No space left"):
            analyze(out, 2)
        assert tree(out) == before  # nothing of the failed run, nothing of the earlier lost
        with pytest.raises(OSError, match="No space left"):
            analyze(tmp_path / "fresh", 1)
        assert not (tmp_path / "fresh").exists()

    # a staging folder that a killed analysis left is removed by the next one, which
    # replaces the earlier outputs
    stale = out / ".sparse-partial-999999999-0123abcd"
    (stale / "figures").mkdir(parents=True)
    (stale / "figures" / "half.png").write_bytes(b"half")
    second = analyze(out, 2)
    assert not stale.exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".sparse-partial-")]
    assert len(second["utterances"]) == 2 and Path(second["index"]) == out / "index.html"
    page = (out / "index.html").read_text()
    for path in second["figures"].values():
        assert Path(path).is_file() and Path(path).relative_to(out).as_posix() in page
    summary = json.loads((out / "analysis_summary.json").read_text())
    assert summary["utterances"] == second["utterances"]


# ------------------------------------------------------------------ orphan checkpoint writes

#: ``os.replace`` onto ``last.pt`` the second time: the temporary file is complete, and the
#: process waits there to be killed (the first argument: a file that says it got there)
_HANG_BEFORE_RENAME = """
import os, sys, time
from pathlib import Path
real, marker, calls = os.replace, Path(sys.argv[1]), []

def replace(src, dst, *a, **k):
    if Path(dst).name == "last.pt":
        calls.append(dst)
        if len(calls) == 2:
            marker.write_text(str(src))
            time.sleep(600)
    return real(src, dst, *a, **k)

os.replace = replace
from sparse.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_a_checkpoint_write_killed_before_its_rename_is_cleaned_on_resume(
        data_dir, sub_env, tmp_path):
    out = tmp_path / "run"
    sets = [*TINY, f"data.synth_dir={data_dir / 'tiny'}", "data.limit_train=24",
            "train.checkpoint_every=1"]  # 3 steps; 'last' at steps 1 and 2
    marker = tmp_path / "at-rename"
    proc = subprocess.Popen(
        [sys.executable, "-c", _HANG_BEFORE_RENAME, str(marker), "train", "--out", str(out),
         *[x for s in sets for x in ("--set", s)]],
        env=sub_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 600  # generous: a machine shared by other jobs
        while not marker.exists():
            assert proc.poll() is None, f"training ended early: {proc.communicate()[1]}"
            assert time.monotonic() < deadline, "the second checkpoint write never came"
            time.sleep(0.05)
        proc.kill()  # SIGKILL between the write and the rename
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    ckpt = out / "checkpoints"
    orphan = Path(marker.read_text())
    assert orphan.parent == ckpt and orphan.is_file()
    assert re.fullmatch(rf"\.last\.pt\.{proc.pid}\.[0-9a-f]{{8}}\.tmp", orphan.name)
    assert load_checkpoint(ckpt / "last.pt")["progress"]["global_step"] == 1
    legacy = ckpt / ".best.pt.k3j_x9a2.tmp"  # the name earlier versions gave
    legacy.write_bytes(b"half a checkpoint")
    gone = 999999999  # above any pid: a writer that is not running
    foreign = [  # names like it that are not a checkpoint's temporary file
        ckpt / ".last.pt.tmp", ckpt / ".last.pt.notes.tmp", ckpt / f"last.pt.{gone}.0123abcd.tmp",
        ckpt / f".last.pt.{gone}.0123abcd.tmp.keep", ckpt / f".last.pt.{gone}.0123.tmp",
        ckpt / f".notes.{gone}.0123abcd.tmp",
        ckpt / f".last.pt.{gone}.0123abcd.tmp" / "a folder's file",  # a folder of that name
        ckpt / f".best.pt.{os.getpid()}.0123abcd.tmp",  # its writer is running
        out / f".last.pt.{gone}.0123abcd.tmp",  # not in the checkpoints folder
    ]
    for path in foreign:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("mine")

    r = subprocess.run([sys.executable, "-m", "sparse.cli", "train", "--resume", "--out",
                        str(out)], env=sub_env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "removed 2 unfinished checkpoint file(s)" in r.stdout, (r.stdout, r.stderr)
    assert orphan.name in r.stdout and legacy.name in r.stdout
    assert not orphan.exists() and not legacy.exists()
    assert all(p.read_text() == "mine" for p in foreign)
    state = load_checkpoint(ckpt / "last.pt")
    assert state["progress"]["epoch"] == 1 and state["progress"]["global_step"] == 3
    assert first_invalid_tensor(torch.nn.Module(), state["model"]) is None


# ------------------------------------------------------------------ corpus rebuilds

#: ``sparse synth`` that, once its corpus is synthesised (lock held), says so by creating the
#: first argument and waits for the second to exist before it puts the corpus in place
_SLOW_SYNTH = """
import sys, time
from pathlib import Path
import sparse.data.synth as synth
marker, go, real = Path(sys.argv[1]), Path(sys.argv[2]), synth._write_lists

def write_lists(root, records):
    marker.touch()
    t = time.monotonic()
    while not go.exists() and time.monotonic() - t < 120:
        time.sleep(0.02)
    return real(root, records)

synth._write_lists = write_lists
from sparse.cli import main
sys.exit(main(sys.argv[3:]))
"""


def _synth(env: dict[str, str], out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sparse.cli", "synth", "--tiny", "--quiet", "--workers", "1",
         "--out", str(out), *extra], env=env, capture_output=True, text=True, timeout=300)


def test_two_forced_rebuilds_of_one_corpus_folder(sub_env, tmp_path):
    root = tmp_path / "corpus"
    assert _synth(sub_env, root).returncode == 0
    marker, go = tmp_path / "building", tmp_path / "go"
    first = subprocess.Popen(
        [sys.executable, "-c", _SLOW_SYNTH, str(marker), str(go), "synth", "--tiny", "--quiet",
         "--workers", "1", "--force", "--out", str(root)],
        env=sub_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert first.poll() is None, f"the first build ended early: {first.communicate()}"
            assert time.monotonic() < deadline, "the first build never got going"
            time.sleep(0.02)
        second = _synth(sub_env, root, "--force")
        reader = _synth(sub_env, root)  # would hand out the corpus being replaced
        go.touch()
        out, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, err
    assert f"corpus: {root}" in out
    for r, says in ((second, "is being written by another process"),
                    (reader, "is being rebuilt by another process")):
        assert r.returncode == 2, (r.stdout, r.stderr)
        assert r.stderr.startswith("sparse synth: ") and "Traceback" not in r.stderr
        assert r.stderr.count("\n") == 1  # one paragraph
        assert str(root) in r.stderr and says in r.stderr
        assert f"pid {first.pid} " in r.stderr and "--force" in r.stderr  # the holder
    # the first build's corpus is complete and listed; no lock, no temporary folder is left
    info = json.loads((root / "corpus.json").read_text())
    listed = {row.split("\t")[0] for row in (root / "contents.tsv").read_text().splitlines()[1:]}
    on_disk = {p.relative_to(root).as_posix() + ("/" if p.is_dir() else "")
               for p in root.rglob("*") if p.parent != root or p.name not in
               ("corpus.json", "contents.tsv")}
    assert info["key"] == SynthConfig.tiny().key() and listed == on_disk
    assert sorted(p.name for p in tmp_path.iterdir()) == ["building", "corpus", "go"]
    again = _synth(sub_env, root)
    assert again.returncode == 0 and "found in the cache" in again.stdout


def test_a_rebuild_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    from sparse.train.lock import sibling_lock_file

    root = tmp_path / "corpus"
    synthesize_corpus(SynthConfig.tiny(0), root=root, workers=1)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = sibling_lock_file(root)
    assert lock == tmp_path / ".corpus.sparse-lock"
    lock.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(),
                                "since": time.time(), "command": "sparse synth --force"}))
    corpus = synthesize_corpus(SynthConfig.tiny(0), root=root, workers=1)  # a reader passes
    assert corpus.root == root
    synthesize_corpus(SynthConfig.tiny(0), root=root, workers=1, force=True)
    assert not lock.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]
