"""Unit tests of sparse.train: config validation, losses, decoding, metrics, checkpoints,
schedulers (no corpus, no training)."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch

from sparse.train.checkpoints import (
    CheckpointError,
    capture_rng,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)
from sparse.train.config import (
    ConfigError,
    ScheduleConfig,
    TrainConfig,
    config_from_dict,
    describe_config,
    load_config,
)
from sparse.train.demo import DEMO_ASR_CONFIG, DEMO_CONFIG, DEMO_KWS_CONFIG
from sparse.train.losses import ctc_greedy_decode, firing_rates, rate_regularizer
from sparse.train.metrics import ErrorCounts, align, confusion_matrix, format_alignment
from sparse.train.schedulers import Cosine, NewBob, Plateau

REPO = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------------ config


def test_shipped_configs_load_and_demo_config_matches():
    for name in ("kws_synth.yaml", "asr_synth.yaml", "asr_timit.yaml", "demo_asr.yaml"):
        load_config(REPO / "configs" / name)
    assert load_config(REPO / "configs" / "demo_asr.yaml") == config_from_dict(DEMO_ASR_CONFIG)
    assert load_config(REPO / "configs" / "kws_synth.yaml") == config_from_dict(DEMO_KWS_CONFIG)
    assert DEMO_CONFIG is DEMO_ASR_CONFIG  # the main job is the original's experiment
    demo = config_from_dict(DEMO_ASR_CONFIG)
    assert demo.task == "asr" and demo.features.hop_ms == 2.0 and demo.data.phone_set == 39
    assert len(demo.model.cortex_layer_sizes) == 3
    timit = load_config(REPO / "configs" / "asr_timit.yaml")
    assert timit.features.n_mels == 80 and timit.features.hop_ms == 2.0
    assert timit.model.cortex_layer_sizes == [512, 512, 512]
    assert timit.model.auditory_channels == [16] and timit.model.auditory_kernel_size == [7, 7]
    assert timit.model.cortex_sfa_portions == [0.5] * 3
    assert timit.model.cortex_rnn_portions == [0.5] * 3
    assert timit.model.phoneme_ctc_rate_hz == 25 and timit.model.phoneme_num_layers == 2
    assert timit.model.phoneme_features == 512 and timit.model.dropout == 0.15
    assert timit.optim.lr == 1e-3 and timit.schedule.kind == "newbob"
    assert timit.train.batch_size == 8
    assert (timit.regularizer.weight, timit.regularizer.r_min_hz,
            timit.regularizer.r_max_hz) == (0.5, 0.5, 250.0)
    assert timit.augment.enabled and timit.augment.concat_original  # the original's recipe
    assert timit.augment.snr_db == [0.0, 15.0] and timit.augment.speeds == [95, 100, 105]


def test_unknown_key_is_named_with_a_hint(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("task: kws\noptim:\n  lrr: 0.1\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert "optim.lrr" in msg and "did you mean 'optim.lr'" in msg and str(p) in msg
    p.write_text("taks: kws\n")
    with pytest.raises(ConfigError, match="'taks'.*did you mean 'task'"):
        load_config(p)


@pytest.mark.parametrize("text, key", [
    ("train:\n  epochs: ten\n", "train.epochs"),
    ("train:\n  epochs: 2.5\n", "train.epochs"),
    ("optim:\n  lr: fast\n", "optim.lr"),
    ("task: speech\n", "task"),
    ("model:\n  cortex_layer_sizes: [64, x]\n", "model.cortex_layer_sizes[1]"),
    ("train:\n  progress: 3\n", "train.progress"),
    ("optim: 3\n", "optim"),
])
def test_ill_typed_values_are_named(tmp_path, text, key):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert f"'{key}'" in str(e.value)


def test_overrides_and_cross_field_checks(tmp_path):
    cfg = load_config(None, ["optim.lr=3e-4", "model.cortex_layer_sizes=[8]",
                             "model.cortex_sfa_portions=[0.5]", "model.cortex_rnn_portions=[0]",
                             "model.cortex_feedforward_portions=[1]", "data.kws_task=12"])
    assert cfg.optim.lr == 3e-4 and cfg.model.cortex_layer_sizes == [8]
    assert cfg.model.cortex_rnn_portions == [0.0] and cfg.data.kws_task == "12"
    with pytest.raises(ConfigError, match=r"model.cortex_sfa_portions: \[0.5, 0.5\]: must have "
                       r"one entry per cortex layer .*it has 2, model.cortex_layer_sizes has 1"):
        load_config(None, ["model.cortex_layer_sizes=[8]"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(None, ["optim.lr"])
    with pytest.raises(ConfigError, match="optim.lrr"):
        load_config(None, ["optim.lrr=1"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    # round trip of the resolved config
    assert config_from_dict(copy.deepcopy(cfg.to_dict())) == cfg


@pytest.mark.parametrize("value", ["-1.0", "0", ".nan"])
def test_grad_clip_that_is_not_positive_is_refused_by_the_command(value, tmp_path, capsys):
    from sparse.cli import main

    # (a missing corpus: without the check, the command stops at once on that instead)
    code = main(["train", "--set", f"optim.grad_clip={value}", "--set",
                 f"data.corpus={tmp_path / 'none'}", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2
    assert "optim.grad_clip" in err and "positive" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()
    assert load_config(None, ["optim.grad_clip=null"]).optim.grad_clip is None


def test_every_field_is_documented():
    rows = describe_config()
    assert len(rows) > 40
    for key, _tp, _default, doc in rows:
        assert doc and doc.strip(), f"{key} has no documentation"


# ------------------------------------------------------------------------------------ losses


def test_firing_rates_and_regularizer():
    spikes = torch.zeros(2, 10, 3)
    spikes[0, :5, 0] = 1  # neuron 0: 5 spikes in item 0's 5 valid frames
    spikes[1, :, 1] = 1   # neuron 1: fires every frame of item 1 (10 valid)
    spikes[0, 7, 2] = 1   # in item 0's padding: ignored
    lengths = torch.tensor([5, 10])
    rates = firing_rates({"p": spikes}, lengths, dt_ms=10.0)["p"]
    # 15 valid frames of 10 ms = 0.15 s
    assert torch.allclose(rates, torch.tensor([5 / 0.15, 10 / 0.15, 0.0]))
    reg = rate_regularizer({"p": rates}, r_min_hz=1.0, r_max_hz=50.0, weight=0.5)
    expected = 0.5 * (1.0 / 3 + (10 / 0.15 - 50.0) / 3)
    assert reg.item() == pytest.approx(expected)


def test_ctc_greedy_decode_merges_repeats_and_drops_blanks():
    seq = torch.tensor([[0, 3, 3, 0, 3, 2, 2, 0, 1]])
    logits = torch.nn.functional.one_hot(seq, 5).float()
    assert ctc_greedy_decode(logits, torch.tensor([9])) == [[3, 3, 2, 1]]
    assert ctc_greedy_decode(logits, torch.tensor([4])) == [[3]]


# ----------------------------------------------------------------------------------- metrics


def test_alignment_counts_and_per():
    a = align("a b c d".split(), "a x c d e".split())
    assert (a.substitutions, a.deletions, a.insertions) == (1, 0, 1)
    a = align(["a", "b", "c"], [])
    assert (a.substitutions, a.deletions, a.insertions) == (0, 3, 0)
    a = align([], ["a"])
    assert a.insertions == 1
    counts = ErrorCounts()
    counts.add("sil k ae t sil".split(), "k ae ae t".split(), "u1", keep=True)
    counts.add("d ao g".split(), "d ao g".split(), "u2", keep=True)
    assert counts.reference_length == 8
    assert counts.errors == 3  # two deleted sil, one inserted ae
    assert counts.rate == pytest.approx(3 / 8)
    assert counts.details[0]["alignment"][0] == ["D", "sil", None]
    text = format_alignment(align(["a", "b"], ["a", "c", "d"]))
    assert text.splitlines()[0].startswith("REF:") and "S" in text and "I" in text


def test_confusion_matrix():
    c = confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], 3)
    assert c.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]


# ------------------------------------------------------------------------------- checkpoints


def test_checkpoint_round_trip_is_atomic_and_safe(tmp_path):
    model = torch.nn.Linear(3, 2)
    path = tmp_path / "ck" / "last.pt"
    torch.manual_seed(5)
    rng = capture_rng()
    save_checkpoint({"config": TrainConfig().to_dict(), "model": model.state_dict(),
                     "rng": rng}, path)
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temporary left
    a = torch.rand(3)
    state = load_checkpoint(path)
    restore_rng(state["rng"])
    assert torch.equal(torch.rand(3), a)
    assert torch.equal(state["model"]["weight"], model.weight.detach())

    # a corrupt file is reported by name; an empty one too; a foreign pickle is refused
    bad = tmp_path / "bad.pt"
    bad.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="bad.pt.*cannot be read"):
        load_checkpoint(bad)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_checkpoint(tmp_path / "empty.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a sparse training checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")


class _Evil:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_checkpoint_with_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "sparse-train-checkpoint/1", "config": {}, "model": {},
                "x": _Evil()}, path)
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(path)


# -------------------------------------------------------------------------------- schedulers


def _opt():
    return torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)


def test_newbob_and_plateau():
    opt = _opt()
    s = NewBob(opt, ScheduleConfig(kind="newbob", factor=0.5, threshold=0.01, patience=0))
    for loss in (10.0, 8.0, 7.99, 7.0):
        s.step(loss)
    assert opt.param_groups[0]["lr"] == 0.5  # only 8.0 -> 7.99 was too small a gain
    state = s.state_dict()
    s2 = NewBob(_opt(), ScheduleConfig())
    s2.load_state_dict(state)
    assert s2.previous == 7.0
    opt = _opt()
    p = Plateau(opt, ScheduleConfig(kind="plateau", factor=0.1, threshold=0.0, patience=1))
    for loss in (5.0, 5.0, 5.0, 4.0):
        p.step(loss)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)


def test_cosine_matches_torch_and_warms_up():
    total, min_lr = 50, 0.01
    opt = _opt()
    s = Cosine(opt, ScheduleConfig(kind="cosine", min_lr=min_lr))
    ref_opt = _opt()
    ref = torch.optim.lr_scheduler.CosineAnnealingLR(ref_opt, T_max=total, eta_min=min_lr)
    for step in range(total):
        s.step_batch(step, total)
        assert opt.param_groups[0]["lr"] == pytest.approx(ref_opt.param_groups[0]["lr"], abs=1e-12)
        ref_opt.step()
        ref.step()
    s.step_batch(total + 5, total)  # past the end: stays at the floor
    assert opt.param_groups[0]["lr"] == pytest.approx(min_lr)
    opt = _opt()
    w = Cosine(opt, ScheduleConfig(kind="cosine", warmup_steps=4, min_lr=0.0))
    lrs = []
    for step in range(20):
        w.step_batch(step, 20)
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lrs[4] == pytest.approx(1.0)
    assert lrs[5] == pytest.approx(0.5 * (1 + math.cos(math.pi / 16)))
    assert all(a > b for a, b in zip(lrs[4:-1], lrs[5:], strict=True))


def test_cosine_warmup_is_capped_to_a_fifth_of_a_short_run():
    # 100 warm-up steps asked, 14 steps in the run: the warm-up takes 2 of them, not all 14
    opt = _opt()
    w = Cosine(opt, ScheduleConfig(kind="cosine", warmup_steps=100, min_lr=0.0))
    assert w.warmup_for(14) == 2 and w.warmup_for(10_000) == 100
    lrs = []
    for step in range(14):
        w.step_batch(step, 14)
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[:3] == pytest.approx([0.5, 1.0, 1.0])
    assert max(lrs) == pytest.approx(1.0)
    assert sum(lr > 0.5 for lr in lrs) >= 7  # most of the run near the full lr


def test_docs_list_every_config_key():
    text = (REPO / "docs" / "training.md").read_text()
    for key, tp, _default, _doc in describe_config():
        if tp != "section":
            assert f"`{key}`" in text, f"docs/training.md does not document {key}"


def test_default_threads_share_the_allowed_cores_among_local_processes(monkeypatch):
    from sparse.train import distributed

    monkeypatch.setattr(distributed.os, "sched_getaffinity", lambda pid: set(range(6)),
                        raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert distributed.default_num_threads() == 6
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # torchrun --nproc_per_node 4
    assert distributed.default_num_threads() == 1
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")  # more processes than cores: still one
    assert distributed.default_num_threads() == 1
    monkeypatch.setattr(distributed.os, "sched_getaffinity", lambda pid: set(range(64)),
                        raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    assert distributed.default_num_threads() == distributed.MAX_DEFAULT_THREADS == 16
