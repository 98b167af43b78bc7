"""Validation before work: every bad config value, file, flag, folder and checkpoint ends the
command with exit status 2 and one paragraph naming it (never a traceback), before any data is
loaded; the operating system's refusals (full disk, read-only folder) likewise; a resumed run
keeps the config its checkpoint records; a config.yaml of the user's is never overwritten.

The table of bad inputs lives in ``tests/bad_inputs.py`` (``python -m tests.bad_inputs`` prints
the outcome of every case); here every case of it is a test.
"""

from __future__ import annotations

import copy
import errno
import warnings
from pathlib import Path

import pytest
import torch

from sparse.cli import describe_os_error, main
from sparse.train.config import (
    ConfigError,
    TrainConfig,
    _build,
    apply_overrides,
    config_from_dict,
    describe_config,
    load_config,
)
from sparse.train.validate import CONSTRAINTS, allowed, problems
from tests import bad_inputs
from tests.bad_inputs import CASES, CONFIG_VALUES, Case, Workspace, run_case

REPO = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------- the table of config values


@pytest.fixture
def no_data(monkeypatch):
    """Loading a corpus or a split fails the test: validation must come first."""
    import sparse.train.demo as demo
    import sparse.train.run as run

    def loaded(*args, **kwargs):
        raise AssertionError("data was loaded before the config was checked")

    monkeypatch.setattr(run, "resolve_corpus", loaded)
    monkeypatch.setattr(run, "load_split", loaded)
    monkeypatch.setattr(demo, "_synthesise", loaded)


@pytest.mark.parametrize("overrides, key", CONFIG_VALUES,
                         ids=[" ".join(o) for o, _ in CONFIG_VALUES])
def test_every_invalid_value_stops_sparse_train_before_any_data(overrides, key, no_data,
                                                                tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--out", str(out)]
    for o in overrides:
        args += ["--set", o]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert key in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_several_bad_values_are_reported_together_in_one_paragraph(no_data, tmp_path, capsys):
    code = main(["train", "--out", str(tmp_path / "r"), "--set", "optim.betas=[0.9]",
                 "--set", "model.dropout=1.5", "--set", "train.epochs=0"])
    err = capsys.readouterr().err
    assert code == 2 and "3 invalid values" in err
    for text in ("optim.betas: [0.9]: must have 2 entries", "model.dropout: 1.5: must be in",
                 "train.epochs: 0: must be at least 1"):
        assert text in err
    assert len(err.strip().splitlines()) == 1


def test_a_mistake_in_one_field_does_not_also_blame_the_fields_that_depend_on_it():
    # the portions cannot match an invalid layer list: one message, not four
    found = problems(_raw(["model.cortex_layer_sizes=[]"]))
    assert found == ["model.cortex_layer_sizes: []: must list at least one layer"]
    found = problems(_raw(["features.sample_rate=0"]))
    assert [f.split(":")[0] for f in found] == ["features.sample_rate"]


def _raw(overrides: list[str]):
    """A config built from the defaults and ``overrides`` with its types checked but not its
    values (what the constructors would get without the table)."""
    return _build(TrainConfig, apply_overrides({}, overrides), "", "test")


# Values the constructors themselves refuse (or, without the table, turn into a failure at the
# first step or a useless model): the table must refuse each of them.
CONSTRUCTOR_FAILURES = [
    ["model.cortex_sfa_portions=[1.5,0.5]"], ["model.cortex_layer_sizes=[0,0]"],
    ["model.auditory_kernel_size=[0,0]"], ["model.auditory_kernel_size=[7,41]"],
    ["model.auditory_channels=[4,4,4]", "model.auditory_frequency_stride=[1,1,1]"],
    ["features.win_ms=25.03"], ["features.sample_rate=0"], ["features.hop_ms=0.01"],
    ["task=asr", "model.phoneme_ctc_rate_hz=30"], ["optim.betas=[0.9]"],
    ["optim.betas=[0.9,1.0]"], ["neuron.surrogate=sigmoid"], ["model.dropout=1.0"],
    ["task=asr", "model.phoneme_features=0"],
    ["neuron.tau_u_range=[0,25]"], ["neuron.tau_w_range=[350,30]"], ["neuron.a_range=[1]"],
    ["neuron.b_range=[0,.inf]"], ["neuron.threshold=0"], ["neuron.surrogate_scale=-1"],
    ["neuron.implementation=cuda"], ["neuron.cortex_lateral=[true]"],
]


def _construct(cfg) -> None:
    """Build everything a run builds from ``cfg`` and take one training step."""
    from sparse.features import LogMelFilterbank
    from sparse.train.model import TaskModel
    from sparse.train.schedulers import build_scheduler

    f = cfg.features
    LogMelFilterbank(n_mels=f.n_mels, hop_ms=f.hop_ms, win_ms=f.win_ms,
                     sample_rate=f.sample_rate)
    model = TaskModel(cfg, 5)
    model.fit_standardization([torch.randn(50, f.n_mels)])
    opt = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr, betas=tuple(cfg.optim.betas),
                           weight_decay=cfg.optim.weight_decay)
    build_scheduler(cfg.schedule, opt)
    torch.device(cfg.train.device)
    out = model(torch.randn(2, 40, f.n_mels), torch.tensor([40, 30]))
    loss = out.scores.float().logsumexp(-1).sum()
    loss.backward()
    opt.step()
    if cfg.task == "asr" and model.classifier is not None:
        assert model.classifier.in_features > 0, "a head of width 0"


@pytest.mark.parametrize("overrides", CONSTRUCTOR_FAILURES, ids=" ".join)
def test_what_the_constructors_refuse_the_table_refuses(overrides):
    import warnings

    cfg = _raw(overrides)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises((ValueError, RuntimeError, TypeError, LookupError, AssertionError)):
            _construct(cfg)
    assert problems(cfg), f"the table lets {overrides} through"


# Values at the edges of what the table allows: each must build and train a step.
EDGES = [
    [],
    ["model.cortex_sfa_portions=[0,1]", "model.cortex_rnn_portions=[0,1]",
     "model.cortex_feedforward_portions=[0.01,1]", "model.dropout=0"],
    ["model.cortex_layer_sizes=[1]", "model.cortex_sfa_portions=[1]",
     "model.cortex_rnn_portions=[1]", "model.cortex_feedforward_portions=[1]"],
    ["features.n_mels=7", "model.auditory_kernel_size=[1,7]"],
    ["features.n_mels=20", "model.auditory_channels=[2,3]",
     "model.auditory_frequency_stride=[3,1]", "model.auditory_kernel_size=[2,4]"],
    ["task=asr", "features.hop_ms=10.0", "model.phoneme_ctc_rate_hz=100",
     "model.phoneme_num_layers=0"],
    ["task=asr", "features.hop_ms=2.0", "model.phoneme_ctc_rate_hz=12.5",
     "model.phoneme_features=1"],
    ["features.sample_rate=8000", "features.win_ms=0.125", "features.hop_ms=0.125"],
    ["optim.betas=[0,0.999999]", "optim.weight_decay=0", "schedule.factor=1",
     "schedule.threshold=0", "regularizer.r_min_hz=0", "regularizer.r_max_hz=0"],
    ["neuron.surrogate=triangle", "model.normalization=layernorm"],
    ["neuron.tau_u_range=[0.5,0.5]", "neuron.tau_w_range=[1e-3,1e6]", "neuron.a_range=[-1,-1]",
     "neuron.b_range=[0,0]", "neuron.threshold=1e-3", "neuron.normal_init=true"],
    ["neuron.surrogate=gaussian", "neuron.surrogate_scale=1e-3",
     "neuron.implementation=reference", "neuron.cortex_lateral=[true,false]",
     "neuron.auditory_lateral=false"],
]


@pytest.mark.parametrize("overrides", EDGES, ids=lambda o: " ".join(o) or "defaults")
def test_values_at_the_edges_of_the_table_build_and_train(overrides):
    cfg = load_config(None, overrides)  # the table accepts them
    _construct(cfg)


def test_the_surrogate_rule_names_every_surrogate():
    from sparse.surrogate import SURROGATES

    rule = allowed("neuron.surrogate")
    for name in SURROGATES:
        assert f"'{name}'" in rule
    assert len(SURROGATES) == rule.count("'") // 2


def test_every_table_key_is_a_config_key():
    keys = {k for k, tp, _, _ in describe_config() if tp != "section"}
    for c in CONSTRAINTS:
        assert c.key in keys, c.key
        assert all(n in keys for n in c.needs), c.needs


def test_shipped_configs_and_demo_configs_pass_the_table():
    from sparse.train.demo import DEMO_CONFIGS, demo_config

    for path in sorted((REPO / "configs").glob("*.yaml")):
        with warnings.catch_warnings():  # and without a deprecated key
            warnings.simplefilter("error", FutureWarning)
            load_config(path)
    for task in DEMO_CONFIGS:
        for tiny in (False, True):
            demo_config(task, tiny)


def test_docs_show_each_keys_rules():
    """docs/training.md's config reference is the table (regenerate a row from the message)."""
    text = (REPO / "docs" / "training.md").read_text()
    for key, tp, default, doc in describe_config():
        if tp == "section":
            continue
        row = f"| `{key}` | {tp} | `{default}` | {allowed(key)} | {' '.join(doc.split())} |"
        assert row in text, f"docs/training.md: the row of {key} should read\n{row}"


# ---------------------------------------------- features.normalization, the former name


def test_features_normalization_still_works_with_a_warning(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("features:\n  normalization: utterance\n")
    with pytest.warns(FutureWarning, match=r"'features\.normalization' is deprecated.*"
                                           r"'features\.standardization'"):
        cfg = load_config(path)
    assert cfg.features.standardization == "utterance"
    assert "normalization" not in cfg.to_dict()["features"]
    with pytest.warns(FutureWarning), pytest.raises(ConfigError, match="must be one of"):
        load_config(None, ["features.normalization=batchnorm"])


def test_features_normalization_and_standardization_together_are_an_error():
    with pytest.raises(ConfigError, match=r"both 'features\.normalization' and "
                                          r"'features\.standardization'"):
        config_from_dict({"features": {"normalization": "none", "standardization": "none"}})


def test_a_stored_config_with_features_normalization_loads_quietly():
    from sparse.train.config import with_former_defaults

    stored = TrainConfig().to_dict()
    stored["features"]["normalization"] = stored["features"].pop("standardization")
    stored["features"]["normalization"] = "none"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = config_from_dict(with_former_defaults(stored))
    assert cfg.features.standardization == "none"


def test_task_model_keeps_its_former_names_as_deprecated_aliases():
    from sparse.train.model import build_model

    cfg = config_from_dict({"model": {"cortex_layer_sizes": [4], "cortex_sfa_portions": [0.5],
                                      "cortex_rnn_portions": [0.5],
                                      "cortex_feedforward_portions": [1.0]}})
    model = build_model(cfg, 3)
    frames = torch.randn(30, cfg.features.n_mels) * 3 + 2
    with pytest.warns(DeprecationWarning, match="TaskModel.standardization"):
        assert model.normalization == "global"
    with pytest.warns(DeprecationWarning, match=r"TaskModel\.dt is deprecated; use "
                                                r"TaskModel\.dt_ms"):
        assert model.dt == model.dt_ms == cfg.features.hop_ms
    with pytest.warns(DeprecationWarning, match=r"fit_normalization is deprecated; use "
                                                r"TaskModel\.fit_standardization"):
        model.fit_normalization([frames])
    torch.testing.assert_close(model.norm.mean.float(), frames.mean(0), rtol=1e-4, atol=1e-4)
    x, lengths = frames[None], torch.tensor([30])
    with pytest.warns(DeprecationWarning, match=r"TaskModel\.normalize is deprecated; use "
                                                r"TaskModel\.standardize"):
        former = model.normalize(x, lengths)
    assert torch.equal(former, model.standardize(x, lengths))


def test_help_config_prints_the_rules(capsys):
    assert main(["train", "--help-config"]) == 0
    out = capsys.readouterr().out
    assert f"allowed: {allowed('model.cortex_sfa_portions')}" in out
    assert f"allowed: {allowed('optim.betas')}" in out


# ------------------------------------------------------------------------------ the YAML file


def test_a_key_given_twice_is_named_with_both_lines(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("task: kws\nmodel:\n  dropout: 0.1\n  cortex_layer_sizes: [8]\n"
                 "  dropout: 0.3\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert "'model.dropout' on lines 3 and 5" in str(e.value) and str(p) in str(e.value)
    # also inside a --set value, and the same name in two sections is no duplicate
    with pytest.raises(ConfigError, match="'dropout' on lines 1 and 1"):
        load_config(None, ["model={dropout: 0.1, dropout: 0.2}"])
    p.write_text("optim:\n  lr: 0.01\ntrain:\n  epochs: 2\n")
    assert load_config(p).optim.lr == 0.01


def test_config_files_that_are_not_utf8_text_or_a_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_bytes("task: kws\nname: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 0xe9 on line 2"):
        load_config(p)
    p.write_bytes(b"\xef\xbb\xbfname: caf\xc3\xa9\n")  # UTF-8 with a byte-order mark
    assert load_config(p).name == "caf\u00e9"
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)


def test_run_names_stay_one_folder_inside_runs():
    for good in ("asr-demo", "my run", "kws_synth.v2", "caf\u00e9"):
        assert load_config(None, [f"name={good}"]).name == good
    for bad in ("../x", "a/b", "a\\b", ".", "..", "", "x" * 201, "a\tb"):
        with pytest.raises(ConfigError, match="name: .*plain folder name"):
            config_from_dict({"name": bad})


def test_integers_are_never_truncated_by_the_layers():
    from sparse.encoder_asr import ASREncoder
    from sparse.frontend import AuditoryFrontEnd
    from sparse.snn import MultilayeredSpiking

    one_layer = dict(sfa_portions=0.5, rnn_portions=0.5, ff_portions=1.0)
    with pytest.raises(ValueError, match=r"layer_sizes\[0\] must be a whole number"):
        MultilayeredSpiking(8, [3.5], **one_layer)
    assert MultilayeredSpiking(8, [3.0], **one_layer).layer_sizes == [3]
    with pytest.raises(ValueError, match="auditory_channels"):
        AuditoryFrontEnd(20, [2.5], [3, 3], [1], [8], [0.5], [0.5], [1.0], 0.0, 10.0)
    with pytest.raises(ValueError, match=r"auditory_kernel_size\[0\]"):
        AuditoryFrontEnd(20, [2], [0, 3], [1], [8], [0.5], [0.5], [1.0], 0.0, 10.0)
    with pytest.raises(ValueError, match="phoneme_features"):
        ASREncoder(20, [2], [3, 3], [1], cortex_layer_sizes=[8], cortex_sfa_portions=[0.5],
                   cortex_rnn_portions=[0.5], cortex_feedforward_portions=[1.0],
                   phoneme_features=0, dt=10.0)


# ----------------------------------------------------------------------------- the run folder


def _fake_run(out: Path, overrides: list[str]) -> dict:
    """A run folder whose last checkpoint records the config of ``overrides``."""
    from sparse.train.checkpoints import save_checkpoint
    from sparse.train.run import write_run_config

    cfg = load_config(None, overrides)
    out.mkdir(parents=True)
    save_checkpoint({"config": cfg.to_dict(), "model": {}}, out / "checkpoints" / "last.pt")
    write_run_config(cfg, out)
    return cfg.to_dict()


def test_resume_uses_the_recorded_config_and_refuses_other_values(tmp_path):
    from sparse.train.run import RunError, _prepare_run_dir, recorded_config

    run = tmp_path / "run"
    recorded = _fake_run(run, ["optim.lr=0.002", "train.epochs=3"])
    # runtime fields may change; the rest is what the checkpoint records
    cfg = recorded_config(run, ["train.epochs=5", "train.progress=false"])
    _, used = _prepare_run_dir(cfg, run, resume=True)
    assert used.train.epochs == 5 and used.optim.lr == 0.002
    expected = copy.deepcopy(recorded)
    expected["train"].update(epochs=5, progress=False)
    assert used.to_dict() == expected
    # a changed value: refused, naming the key, what the run recorded and the new value
    with pytest.raises(RunError) as e:
        _prepare_run_dir(load_config(run / "config.yaml", ["optim.lr=0.01"]), run, True)
    msg = str(e.value)
    assert "'optim.lr' was 0.002" in msg and "now 0.01" in msg and "last.pt" in msg
    # a config.yaml edited after the fact is no way around it
    text = (run / "config.yaml").read_text().replace("lr: 0.002", "lr: 0.005")
    (run / "config.yaml").write_text(text)
    with pytest.raises(RunError, match="'optim.lr' was 0.002 .* now 0.005"):
        _prepare_run_dir(load_config(run / "config.yaml"), run, True)
    # and a bad --set on the recorded config is named
    with pytest.raises(ConfigError, match="model.dropout: 2.0"):
        recorded_config(run, ["model.dropout=2"])


def test_a_config_yaml_not_written_by_a_run_is_never_overwritten(tmp_path):
    from sparse.train.run import CONFIG_HEADER, RunError, _prepare_run_dir, write_run_config

    cfg = load_config(None)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.yaml").write_text("task: kws\n")
    with pytest.raises(RunError) as e:
        _prepare_run_dir(cfg, mine, resume=False)
    msg = str(e.value)
    assert str(mine / "config.yaml") in msg and "not written by a sparse run" in msg
    assert "delete" not in msg.lower() and "remove" not in msg.lower()
    assert (mine / "config.yaml").read_text() == "task: kws\n"
    # one a run wrote (a run stopped before its first checkpoint) is the run's own
    ours = tmp_path / "ours"
    ours.mkdir()
    path = write_run_config(cfg, ours)
    assert path.read_text().startswith(CONFIG_HEADER + "\n")
    assert load_config(path) == cfg
    assert _prepare_run_dir(cfg, ours, resume=False) == (ours, cfg)


def test_a_device_the_machine_lacks_is_a_config_error():
    from sparse.train.distributed import setup

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(ConfigError, match=f"train.device: 'cuda:{count}'"):
        setup(f"cuda:{count}")
    with pytest.raises(ConfigError, match="train.device: 'gpu'"):
        setup("gpu")


# ----------------------------------------------------------------------------- the OS's errors


def test_os_errors_name_the_path_and_what_to_do():
    full = OSError(errno.ENOSPC, "No space left on device")
    full.sparse_folder = Path("/runs/x")  # type: ignore[attr-defined]
    text = describe_os_error(full, "train")
    assert text.startswith("while writing into /runs/x: No space left on device (ENOSPC)")
    assert "disk is full" in text and "--resume" in text
    ro = OSError(errno.EROFS, "Read-only file system", "/mnt/ro/out/test.json")
    text = describe_os_error(ro, "evaluate")
    assert "/mnt/ro/out/test.json: Read-only file system (EROFS)" in text
    assert "read-only" in text and "--resume" not in text
    moved = PermissionError(errno.EACCES, "Permission denied", "/a/x.tmp", None, "/a/x")
    assert "/a/x.tmp -> /a/x: Permission denied (EACCES)" in describe_os_error(moved, "analyze")


def test_an_os_error_in_any_command_is_one_paragraph(monkeypatch, tmp_path, capsys):
    import sparse.train.cli as train_cli

    def full_disk(args):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x.json"))

    monkeypatch.setattr(train_cli, "_run_evaluate", full_disk)
    assert main(["evaluate", "x.pt"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sparse evaluate: error: ") and str(tmp_path / "x.json") in err
    assert len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------ the whole table of bad inputs


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("bad-inputs"))
    yield ws
    ws.restore()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case, workspace):
    """Every case of tests/bad_inputs.py ends as it should (exit 2 and one paragraph naming
    the problem, or success where the bad input is to be tolerated), never in a traceback."""
    outcome = run_case(case, workspace)
    if outcome.skipped:
        pytest.skip(outcome.skipped)
    assert outcome.problem is None, f"{outcome.problem}\n{outcome.stderr}"


def test_pending_cases_are_kept_apart():
    """The cases that wait for other changes are not in the counted table (and say why)."""
    assert bad_inputs.PENDING and all(c.pending for c in bad_inputs.PENDING)
    assert not any(c.pending for c in CASES)
    assert not {c.name for c in CASES} & {c.name for c in bad_inputs.PENDING}


def test_the_script_prints_every_outcome_and_counts_only_the_table(monkeypatch, tmp_path,
                                                                    capsys):
    refused = bad_inputs._config_case(["train.epochs=0"], "train.epochs")
    wrong = Case("a case whose expectation is wrong",
                 lambda ws: (["train", "--set", "train.epochs=0"], []), expect="success")
    waiting = Case("a pending case", lambda ws: (["train", "--set", "optim.lr=0"],
                                                 ["optim.lr"]), pending="another change")
    monkeypatch.setattr(bad_inputs, "CASES", [refused])
    monkeypatch.setattr(bad_inputs, "PENDING", [wrong, waiting])
    assert bad_inputs.main(["--keep", str(tmp_path / "ws")]) == 0  # pending ones do not count
    out = capsys.readouterr().out
    assert "ok   [  2] --set train.epochs=0: sparse train: error: " in out
    assert "FAIL [  2] a case whose expectation is wrong" in out
    assert "expected success, got exit status 2" in out
    assert "1 as expected, 0 not, 0 could not run here; pending: 1 of 2" in out
    monkeypatch.setattr(bad_inputs, "CASES", [refused, wrong])
    assert bad_inputs.main(["--quick", "--keep", str(tmp_path / "ws2")]) == 1
    assert "1 as expected, 1 not" in capsys.readouterr().out
