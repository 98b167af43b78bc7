"""The analysis pipeline: four stages that can each be called alone and together write what
``run_analysis`` writes, byte for byte; one home for firing rates; the moved and renamed
names; the import structure (no train <-> analysis loop, argument parsing only in cli.py)."""

from __future__ import annotations

import ast
import dataclasses
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import sparse
from sparse.analysis.collect import Activity, Utterance, collect_activity
from sparse.analysis.coupling import CouplingResults, assess_coupling
from sparse.analysis.figures import render_figures
from sparse.analysis.options import PacOptions, PlotOptions, ReportOptions
from sparse.analysis.outputs import write_reports
from sparse.analysis.run import run_analysis
from sparse.analysis.significance import pac_significance, pac_table
from sparse.analysis.synthetic import coupled_spike_trains
from sparse.encoder_kws import KWSEncoder
from sparse.features import LogMelFilterbank

PACKAGE = Path(sparse.__file__).parent
DT = 2.0


def _encoder():
    torch.manual_seed(0)
    encoder = KWSEncoder(num_mel_bins=20, num_classes=4, auditory_channels=[4],
                         auditory_kernel_size=(3, 5), auditory_frequency_stride=[2],
                         cortex_layer_sizes=[24, 16], cortex_sfa_portions=[0.5, 0.5],
                         cortex_rnn_portions=[0.5, 0.5], cortex_feedforward_portions=[1.0, 1.0],
                         dt=DT)
    fbank = LogMelFilterbank(n_mels=20, hop_ms=DT, win_ms=25.0)

    def featurize(wav, lengths):
        feats, frames = fbank(wav, lengths)
        return (feats - feats.mean()) / (feats.std() + 1e-5), frames

    return encoder, featurize


def _utterances() -> list[Utterance]:
    out = []
    for i in range(2):
        rng = np.random.default_rng(i)
        t = np.arange(int(1.0 * 16000)) / 16000
        wave = 0.5 * (1 + np.sin(2 * math.pi * 5 * t)) * np.sin(2 * math.pi * (220 + 30 * i) * t)
        out.append(Utterance(f"u{i}", (wave + 0.05 * rng.standard_normal(t.size))
                             .astype(np.float32), 16000))
    return out


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_four_stages_alone_write_what_run_analysis_writes(tmp_path):
    encoder, featurize = _encoder()
    whole = run_analysis(encoder, _utterances(), featurize, tmp_path / "whole", dt_ms=DT,
                         n_shuffles=30, seed=2, plot_utterances=0, progress=False)

    encoder, featurize = _encoder()
    activity = collect_activity(encoder, _utterances(), featurize, DT, noise_seed=2,
                                progress=False)
    assert activity.ids == ["u0", "u1"] and list(activity.speech)[0] == "input"
    steps = activity.features[0].shape[0]
    assert activity.speech["input"][0].shape == (steps,)
    assert activity.speech["cortex1"][0].shape == (steps, 24)
    assert activity.control["cortex2"][1].shape == activity.speech["cortex2"][1].shape
    coupling = assess_coupling(activity, PacOptions(n_shuffles=30, seed=2), progress=False)
    folder = tmp_path / "stages"
    figures = render_figures(activity, coupling, PlotOptions(plot_utterances=0), folder)
    files = write_reports(activity, coupling, figures, folder, ReportOptions())

    assert list(figures.figures) == list(whole.figures)
    assert [Path(p).name for p in files.values()] == [p.name for p in whole.files.values()]
    stages, together = _tree(folder), _tree(tmp_path / "whole")
    assert sorted(stages) == sorted(together)
    assert [name for name in stages if stages[name] != together[name]] == []


def _planted_activity(n_utt: int = 2, steps: int = 1500) -> Activity:
    speech, control = {}, {}
    for u in range(n_utt):
        a, b, _ = coupled_spike_trains(steps, 40, DT, rate_hz=40.0, seed=u)
        speech.setdefault("cortex1", []).append(a)
        speech.setdefault("cortex2", []).append(b)
        rng = np.random.default_rng(100 + u)
        for name in ("cortex1", "cortex2"):
            control.setdefault(name, []).append(
                (rng.random((steps, 40)) < 0.08).astype(np.float32))
    utts = [Utterance(f"s{u}", np.zeros(steps * 32, np.float32), 16000) for u in range(n_utt)]
    return Activity(utts, DT, speech, control, [np.zeros((steps, 4))] * n_utt,
                    [np.zeros((steps, 4))] * n_utt, {}, "no parameters")


def test_assess_coupling_needs_no_model_and_is_pac_table_of_both_sets():
    activity = _planted_activity()
    options = PacOptions(n_shuffles=60, seed=4, phase_bands=("theta", "beta"))
    coupling = assess_coupling(activity, options, progress=False)
    assert isinstance(coupling, CouplingResults)
    for stream, (label, table, pops) in enumerate((
            ("model", coupling.model, activity.speech),
            ("noise control", coupling.control, activity.control))):
        direct = pac_table(pops, DT, options, utterance_ids=activity.ids, stream=stream)
        assert table.label == label and table.params["stream"] == stream
        assert table.column_names == direct.column_names
        for name in direct.column_names:
            np.testing.assert_array_equal(table.columns[name], direct.columns[name])
    # the planted coupling (cortex1 theta phase -> cortex2 low-gamma amplitude) is found on
    # speech and not on the control
    def hits(t):
        c = t.columns
        return int(np.sum(t.significant("mi", "none") & (c["phase_population"] == "cortex1")
                          & (c["phase_band"] == "theta") & (c["amplitude_population"] == "cortex2")
                          & (c["amplitude_band"] == "low_gamma")))
    assert hits(coupling.model) == 2 and hits(coupling.control) == 0


def test_pac_significance_is_pac_table_with_keyword_options():
    activity = _planted_activity(n_utt=1, steps=1200)
    a = pac_significance(activity.speech, DT, n_shuffles=25, seed=1, include_all=False)
    b = pac_table(activity.speech, DT, PacOptions(n_shuffles=25, seed=1, include_all=False))
    assert a.params == b.params
    for name in a.column_names:
        np.testing.assert_array_equal(a.columns[name], b.columns[name])
    with pytest.raises(TypeError, match="n_shuffle"):
        pac_significance(activity.speech, DT, n_shuffle=25)


def test_options_are_frozen():
    for options in (PacOptions(), PlotOptions(), ReportOptions()):
        with pytest.raises(dataclasses.FrozenInstanceError):
            options.seed = 3  # type: ignore[misc]


def test_render_and_report_on_their_own(tmp_path):
    """The figure and report stages on an activity that no model made."""
    activity = _planted_activity()
    coupling = assess_coupling(activity, PacOptions(n_shuffles=40), progress=False)
    figures = render_figures(activity, coupling,
                             PlotOptions(plot_utterances=0, pair=("cortex1", "cortex2"),
                                         pair_bands=("theta", "low_gamma")), tmp_path)
    assert figures.pac_figure["phase_population"] == "cortex1"
    assert (tmp_path / "figures" / "pac_pair.png").stat().st_size > 1000
    files = write_reports(activity, coupling, figures, tmp_path,
                          ReportOptions(more_than_utterances=0, title="planted"))
    assert list(files)[-1] == "html" and all(p.is_file() for p in files.values())
    page = (tmp_path / "index.html").read_text()
    assert "<title>planted</title>" in page and "figures/pac_pair.png" in page
    with pytest.raises(ValueError, match="unknown population 'cortex9'"):
        render_figures(activity, coupling, PlotOptions(pair=("cortex9", "cortex2")), tmp_path)


# ------------------------------------------------------------------------- firing rates


def test_firing_rates_have_one_home():
    from sparse.analysis import activity
    from sparse.rates import firing_rates, pooled_firing_rates
    from sparse.train import losses

    assert activity.firing_rates is firing_rates
    spikes = np.zeros((2, 5, 3))
    spikes[0, :2, 0] = 1  # 2 spikes in the 3 valid steps of item 0
    spikes[1, :, 2] = 1  # 5 spikes in 5 steps
    np.testing.assert_allclose(firing_rates(spikes, 10.0, lengths=[3, 5]),
                               [[2 / 0.03, 0, 0], [0, 0, 5 / 0.05]])
    gen = torch.Generator().manual_seed(0)
    batch = {"a": (torch.rand(3, 7, 4, generator=gen) < 0.3).float().requires_grad_(),
             "b": (torch.rand(3, 7, 2, generator=gen) < 0.5).float()}
    lengths = torch.tensor([7, 4, 2])
    for lens in (lengths, None):
        new = pooled_firing_rates(batch, 2.0, lens)
        old = losses.firing_rates(batch, lens, 2.0)
        assert all(torch.equal(new[k], old[k]) for k in batch)
    pooled_firing_rates(batch, 2.0, lengths)["a"].sum().backward()
    # the gradient reaches the valid steps only
    assert torch.all(batch["a"].grad[2, 2:] == 0) and torch.all(batch["a"].grad[0] > 0)


# ----------------------------------------------------------------- names that moved


def test_moved_names_warn_and_lead_to_their_new_home(monkeypatch, capsys):
    import sparse.analysis.cli as cli
    from sparse.analysis import analyze, selection

    for name, new in (("select_utterances", selection.select_utterances),
                      ("analyze_checkpoint", analyze.analyze_checkpoint),
                      ("analyze_model", analyze.analyze_model),
                      ("analyse_run", analyze.analyze_run)):
        with pytest.warns(DeprecationWarning, match=f"cli.{name} is deprecated"):
            assert getattr(cli, name) is new
    with pytest.raises(AttributeError):
        cli.no_such_name  # noqa: B018

    seen = {}

    def fake_checkpoint(checkpoint, out, **options):
        seen.update(options, checkpoint=checkpoint, out=out)
        return {"out_dir": str(out), "tests": [3, 4], "significant": [1, 0],
                "skipped": [0, 0], "messages": [], "seconds": 1.0, "figures": {},
                "index": "i.html", "report": "r.txt", "csv": "c.csv", "json": "j.json"}

    monkeypatch.setattr(analyze, "analyze_checkpoint", fake_checkpoint)
    with pytest.warns(DeprecationWarning, match="analyse_run is deprecated"):
        summary = analyze.analyse_run("RUN", progress=False)
    assert summary["tests"] == [3, 4]
    assert seen["checkpoint"] == Path("RUN/checkpoints/best.pt") and seen["progress"] is False
    assert "PAC tests: 3 on the model, 4 on the noise control" in capsys.readouterr().out
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        analyze.analyze_run("RUN")  # the new spelling does not warn


def test_restoring_has_one_home():
    from sparse import restore
    from sparse.train import restore as old

    for name in old.__all__:
        assert getattr(old, name) is getattr(restore, name)


# ------------------------------------------------------------------ import structure


def _functions(path: Path) -> list[ast.FunctionDef]:
    tree = ast.parse(path.read_text())
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _imported_modules(node: ast.AST) -> list[str]:
    out = []
    for n in ast.walk(node):
        if isinstance(n, ast.ImportFrom):
            out.append("." * n.level + (n.module or ""))
        elif isinstance(n, ast.Import):
            out += [a.name for a in n.names]
    return out


def test_the_analysis_library_does_not_import_training_code_inside_functions():
    bad = [(p.name, f.name, m) for p in sorted((PACKAGE / "analysis").glob("*.py"))
           for f in _functions(p) for m in _imported_modules(f)
           if m.startswith(("..train", "sparse.train"))]
    assert bad == []
    demo = _imported_modules(ast.parse((PACKAGE / "train" / "demo.py").read_text()))
    assert "..analysis.analyze" in demo
    assert not [m for m in demo if m.endswith("analysis.cli")]


def test_cli_modules_only_parse_arguments():
    names = {f.name for f in _functions(PACKAGE / "analysis" / "cli.py")}
    assert names == {"register", "_run_analyze"}  # the moved names: deprecation.moved_names


def test_names_moved_out_of_the_cli_module_still_resolve_with_a_warning():
    from sparse.analysis import analyze, cli, selection

    with pytest.warns(DeprecationWarning, match=r"sparse\.analysis\.cli\.analyse_run is "
                                                r"deprecated; use sparse\.analysis\.analyze\."
                                                r"analyze_run"):
        assert cli.analyse_run is analyze.analyze_run
    with pytest.warns(DeprecationWarning, match="select_utterances"):
        assert cli.select_utterances is selection.select_utterances
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        cli.no_such_name  # noqa: B018
