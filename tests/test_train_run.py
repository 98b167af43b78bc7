"""End-to-end training on the tiny synthesised corpus: both tasks train (the loss falls) and
write their outputs; `sparse evaluate`; bad input gets a clear one-paragraph error and loses
nothing already written. (`sparse demo --tiny` is tested in test_demo.py.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from sparse.cli import main
from sparse.data.synth import SynthConfig, synthesize_corpus
from sparse.train.checkpoints import load_checkpoint, save_checkpoint
from sparse.train.config import load_config
from sparse.train.run import train_run

TINY_MODEL = [
    "features.n_mels=20", "model.auditory_channels=[4]", "model.auditory_kernel_size=[3,5]",
    "model.auditory_frequency_stride=[2]", "model.cortex_layer_sizes=[32]",
    "model.cortex_sfa_portions=[0.5]", "model.cortex_rnn_portions=[0.5]",
    "model.cortex_feedforward_portions=[1.0]", "train.num_threads=1", "train.progress=false",
    "data.synth_preset=tiny",
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """SPARSE_DATA_DIR for these tests, holding the tiny corpus (shared by the test files)."""
    d = tmp_path_factory.getbasetemp() / "sparse-data"
    synthesize_corpus(SynthConfig.tiny(0), root=d / "tiny", workers=2)
    return d


def tiny(data_dir: Path, task: str, *extra: str) -> list[str]:
    base = [f"task={task}", f"data.synth_dir={data_dir / 'tiny'}", *TINY_MODEL]
    if task == "asr":
        base += ["features.hop_ms=10.0", "model.phoneme_num_layers=1",
                 "model.phoneme_features=32", "model.phoneme_ctc_rate_hz=50", "optim.lr=0.003",
                 "train.batch_size=4"]
    else:
        base += ["features.hop_ms=20.0", "train.batch_size=16"]
    return base + list(extra)


class Result:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def sparse_cmd(capsys):
    """Run the ``sparse`` command in this process (as the console script does)."""

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        capsys.readouterr()
        code = main(list(args))
        out = capsys.readouterr()
        return Result(code, out.out, out.err)

    return run


def read_log(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("task", ["kws", "asr"])
def test_tiny_training_learns_and_writes_outputs(task, data_dir, env, tmp_path):
    cfg = load_config(None, tiny(data_dir, task, "train.epochs=3"))
    summary = train_run(cfg, tmp_path / "run", verbose=False)
    run = Path(summary["run_dir"])
    log = read_log(run)
    assert [r["epoch"] for r in log] == [1, 2, 3]
    assert log[-1]["train_loss"] < log[0]["train_loss"]
    if task == "asr":  # (35 keywords from 3 tiny-corpus speakers: no held-out signal yet)
        assert log[-1]["valid_loss"] < log[0]["valid_loss"]
    for r in log:
        assert set(r["train_rates_hz"]) == {"nerve", "cortex1"}
        assert r["train_utterances_per_second"] > 0
    for name in ("config.yaml", "versions.json", "curves.png", "summary.json",
                 "checkpoints/last.pt", "checkpoints/best.pt", "evaluation/test.json",
                 "evaluation/test.txt", "evaluation/rates.png"):
        assert (run / name).is_file(), name
    assert load_config(run / "config.yaml") == cfg
    versions = json.loads((run / "versions.json").read_text())
    assert versions["torch"] == torch.__version__
    test = json.loads((run / "evaluation" / "test.json").read_text())
    if task == "kws":
        assert len(test["confusion"]) == 35 and sum(map(sum, test["confusion"])) == 35
        assert (run / "evaluation" / "confusion.png").is_file()
    else:
        assert test["utterances"] == 4
        d = test["utterance_details"][0]
        assert {"ref", "hyp", "alignment", "substitutions", "deletions", "insertions"} <= set(d)
        assert test["reference_length"] == sum(len(x["ref"]) for x in test["utterance_details"])
        assert "REF:" in (run / "evaluation" / "test.txt").read_text()
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["progress"]["epoch"] == 3 and last["progress"]["step_in_epoch"] == 0


def test_evaluate_command_and_bad_checkpoints(data_dir, env, tmp_path, sparse_cmd):
    cfg = load_config(None, tiny(data_dir, "kws", "train.epochs=1", "train.evaluate_test=false"))
    run = Path(train_run(cfg, tmp_path / "run", verbose=False)["run_dir"])
    out = tmp_path / "eval"
    r = sparse_cmd("evaluate", str(run / "checkpoints" / "best.pt"), "--split", "valid",
                   "--out", str(out), env=env)
    assert r.returncode == 0, r.stderr
    assert "accuracy" in r.stdout
    result = json.loads((out / "valid.json").read_text())
    assert result["utterances"] == 35 and 0 <= result["accuracy"] <= 1

    # a checkpoint whose architecture does not match its (edited) config
    state = load_checkpoint(run / "checkpoints" / "best.pt")
    state["config"]["model"]["cortex_layer_sizes"] = [48]
    state.pop("format")
    save_checkpoint(state, tmp_path / "other.pt")
    r = sparse_cmd("evaluate", str(tmp_path / "other.pt"), env=env)
    assert r.returncode == 2
    assert "another architecture" in r.stderr and "other.pt" in r.stderr
    assert "Traceback" not in r.stderr

    # a corrupt (truncated) checkpoint
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes((run / "checkpoints" / "best.pt").read_bytes()[:5000])
    r = sparse_cmd("evaluate", str(corrupt), env=env)
    assert r.returncode == 2 and "corrupt.pt" in r.stderr and "cannot be read" in r.stderr
    assert "Traceback" not in r.stderr

    # resuming from a corrupt 'last' checkpoint changes nothing in the run folder
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    (run / "checkpoints" / "last.pt").write_bytes(b"\x00garbage")
    before[run / "checkpoints" / "last.pt"] = b"\x00garbage"
    r = sparse_cmd("train", "--resume", "--out", str(run), "--set", "train.epochs=2", env=env)
    assert r.returncode == 2 and "last.pt" in r.stderr and "Traceback" not in r.stderr
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert after == before

    # a new run into a folder that holds a run is refused, nothing touched
    r = sparse_cmd("train", str(run / "config.yaml"), "--out", str(run), env=env)
    assert r.returncode == 2 and "already holds a run" in r.stderr
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_evaluate_run_folders_write_into_their_own_folder(data_dir, env, tmp_path, sparse_cmd):
    cfg = load_config(None, tiny(data_dir, "kws", "train.epochs=1", "train.evaluate_test=false"))
    first = Path(train_run(cfg, tmp_path / "first", verbose=False)["run_dir"])
    second = tmp_path / "second"
    shutil.copytree(first, second)
    for run, limit in ((first, 3), (second, 5)):
        r = sparse_cmd("evaluate", str(run), "--split", "valid", "--limit", str(limit), env=env)
        assert r.returncode == 0, r.stderr
    for run, limit in ((first, 3), (second, 5)):
        result = json.loads((run / "evaluation" / "valid.json").read_text())
        assert result["utterances"] == limit
        assert Path(result["checkpoint"]) == run / "checkpoints" / "best.pt"
    assert not (tmp_path / "evaluation").exists()


def test_bad_input_errors(data_dir, env, tmp_path, sparse_cmd):
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text("task: kws\noptim:\n  lr: 0.001\n  betass: [0.9, 0.99]\n")
    r = sparse_cmd("train", str(cfg_path), "--out", str(tmp_path / "r0"), env=env)
    assert r.returncode == 2
    assert "optim.betass" in r.stderr and str(cfg_path) in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "r0").exists()

    missing = tmp_path / "no" / "corpus"
    r = sparse_cmd("train", "--set", f"data.corpus={missing}", "--out", str(tmp_path / "r1"),
                   *[x for s in tiny(data_dir, "kws") for x in ("--set", s)], env=env)
    assert r.returncode == 2, r.stderr
    assert str(missing) in r.stderr and "data.corpus" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "r1").exists()

    # a Speech Commands folder with one unreadable clip
    src = data_dir / "tiny" / "speech_commands"
    corpus = tmp_path / "sc"
    shutil.copytree(src, corpus)
    victim = sorted((corpus / "yes").glob("*.wav"))[0]
    victim.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    args = [x for s in tiny(data_dir, "kws", f"data.corpus={corpus}") for x in ("--set", s)]
    r = sparse_cmd("train", "--out", str(tmp_path / "r2"), *args, env=env)
    assert r.returncode == 2
    assert victim.name in r.stderr and "on_error=skip" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
