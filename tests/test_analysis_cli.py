"""`sparse analyze` on a model trained by the trainer: every output exists and holds what it
claims (figures, report, CSV/JSON, index.html), and bad input gets a clear one-paragraph
error."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sparse.cli import main
from sparse.data.synth import SynthConfig, synthesize_corpus
from sparse.train.checkpoints import load_checkpoint, save_checkpoint
from sparse.train.config import load_config
from sparse.train.run import train_run

#: a tiny KWS model at a 2 ms step (500 Hz: the gamma bands lie below Nyquist), two steps
TINY_RUN = [
    "task=kws", "data.synth_preset=tiny", "features.n_mels=16", "features.hop_ms=2.0",
    "model.auditory_channels=[2]", "model.auditory_kernel_size=[3,5]",
    "model.auditory_frequency_stride=[2]", "model.cortex_layer_sizes=[16]",
    "model.cortex_sfa_portions=[0.5]", "model.cortex_rnn_portions=[0.5]",
    "model.cortex_feedforward_portions=[1.0]", "train.num_threads=1", "train.progress=false",
    "train.epochs=1", "train.batch_size=8", "data.limit_train=16", "data.limit_eval=8",
    "train.evaluate_test=false",
]
N_UTT = 3


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """SPARSE_DATA_DIR for these tests, holding the tiny corpus (shared by the test files)."""
    d = tmp_path_factory.getbasetemp() / "sparse-data"
    synthesize_corpus(SynthConfig.tiny(0), root=d / "tiny", workers=2)
    return d


@pytest.fixture(scope="module")
def run_dir(data_dir, tmp_path_factory) -> Path:
    """A run folder trained by ``train_run`` for two steps on the tiny corpus."""
    old = os.environ.get("SPARSE_DATA_DIR")
    os.environ["SPARSE_DATA_DIR"] = str(data_dir)
    try:
        cfg = load_config(None, [*TINY_RUN, f"data.synth_dir={data_dir / 'tiny'}"])
        out = tmp_path_factory.mktemp("analyze") / "run"
        return Path(train_run(cfg, out, verbose=False)["run_dir"])
    finally:
        if old is None:
            os.environ.pop("SPARSE_DATA_DIR", None)
        else:
            os.environ["SPARSE_DATA_DIR"] = old


def test_analyze_command_writes_every_output_consistently(run_dir, env, tmp_path):
    out = tmp_path / "analysis"
    cmd = [sys.executable, "-m", "sparse.cli", "analyze", str(run_dir / "checkpoints" / "best.pt"),
           "--out", str(out), "--split", "test", "--num-utterances", str(N_UTT),
           "--shuffles", "40", "--seed", "3", "--method", "circular_shift",
           "--pair", "input", "cortex1", "--pair-bands", "beta", "low_gamma",
           "--plot-utterances", "1", "--more-than-utterances", "0", "--threads", "1", "--quiet"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"analysis written to {out}" in r.stdout and str(out / "index.html") in r.stdout
    assert "Traceback" not in r.stderr

    summary = json.loads((out / "analysis_summary.json").read_text())
    assert summary["n_shuffles"] == 40 and summary["method"] == "circular_shift"
    assert summary["seed"] == 3 and summary["dt_ms"] == 2.0
    ids = summary["utterances"]
    assert len(ids) == N_UTT
    # every figure listed exists, is a real PNG, and the figures folder holds nothing else
    figures = {name: out / rel for name, rel in summary["figures"].items()}
    for name, path in figures.items():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000, name
    assert set((out / "figures").iterdir()) == set(figures.values())
    first = ids[0]
    for name in ("parameters", "weights", f"raster {first}", f"rates {first}",
                 f"bands {first}", "pac pair"):
        assert name in figures, (name, summary["messages"])
    # the original's outputs: the noise control's raster and rates, the phase-frequency map
    # (beta phase: its rows from 60 Hz), the two populations' band signals overlaid
    for name in (f"noise raster {first}", f"noise rates {first}", "phase-amplitude map",
                 "bands pair"):
        assert name in figures, (name, summary["messages"])
    pam = json.loads((out / "phase_amplitude_map.json").read_text())
    assert pam["utterance"] == summary["pac_figure"]["utterance"]
    assert summary["pac_figure"]["overlay_populations"] == ["input", "cortex1"]
    assert "Couplings significant on more than 0 utterance(s)" in (
        out / "pac_analysis.txt").read_text()
    assert "under the original SPARSE code's joint criterion" in r.stdout
    # 1 s clips: every 2 Hz-wide phase band of the comodulogram needs a 1.65 s filter, so no
    # cell can be computed; no empty square is drawn, and the page says why
    assert "comodulogram" not in figures
    assert any("comodulogram skipped: no cell" in m for m in summary["messages"])
    assert "comodulogram skipped: no cell" in (out / "index.html").read_text()
    # index.html shows every figure and links the tables
    page = (out / "index.html").read_text()
    for path in figures.values():
        assert f"src='{path.relative_to(out).as_posix()}'" in page
    assert "pac_results.csv" in page and "pac_results.json" in page
    assert "front.nerve" in (out / "parameters.txt").read_text()
    # the PAC figure shows the requested coupling
    fig = summary["pac_figure"]
    assert (fig["phase_population"], fig["amplitude_population"]) == ("input", "cortex1")
    assert (fig["phase_band"], fig["amplitude_band"]) == ("beta", "low_gamma")
    assert fig["utterance"] in ids
    assert "PAC figure: beta phase of input x low_gamma amplitude of cortex1 on " in r.stdout

    # CSV and JSON hold the same tests; the text report's counts are theirs
    rows = list(csv.DictReader(open(out / "pac_results.csv", newline="")))
    data = json.loads((out / "pac_results.json").read_text())
    text = (out / "pac_analysis.txt").read_text()
    sets = {s["label"]: s for s in data["sets"]}
    assert set(sets) == {"model", "noise control"}
    assert {r["set"] for r in rows} == set(sets)
    populations = {"input", "nerve", "cortex1", "all"}
    assert {r["phase_population"] for r in rows} == populations
    assert {r["amplitude_population"] for r in rows} == populations
    assert {r["utterance_id"] for r in rows} == set(ids)
    n_tests = {}
    for label in ("model", "noise control"):
        set_rows = [r for r in rows if r["set"] == label]
        n = len(set_rows)
        assert n > 0
        n_tests[label] = n
        columns = sets[label]["columns"]
        assert columns["utterance_id"] == [r["utterance_id"] for r in set_rows]
        for col in ("mi", "mi_p", "mi_p_fdr", "mvl", "mvl_p_maxstat"):
            assert [float(r[col]) for r in set_rows] == pytest.approx(
                [float(v) for v in columns[col]], rel=1e-9)
        counts = sets[label]["summary"]
        assert counts["n_tests"] == n and counts["n_utterances"] == N_UTT
        for p in (float(r["mi_p"]) for r in set_rows):  # p = (k + 1) / (n + 1)
            assert abs(p * 41 - round(p * 41)) < 1e-6 and 1 / 41 - 1e-9 <= p <= 1
        for metric in ("mi", "mvl"):
            for corr, suffix in (("none", "_p"), ("fdr", "_p_fdr"), ("maxstat", "_p_maxstat")):
                k = sum(float(r[metric + suffix]) <= 0.05 for r in set_rows)
                line = next(x for x in text.splitlines()
                            if x.startswith(f"significant {metric.upper()}, {corr} "))
                model_cell, control_cell = re.findall(r"(\d+) / (\d+) \(", line)
                cell = model_cell if label == "model" else control_cell
                assert cell == (str(k), str(n)), (line, label)
                assert counts["significant"][metric][corr] == k
        # which couplings hold on how many utterances: the JSON's, from the CSV
        for c in sets[label]["couplings_mi_fdr"]:
            key = (c["phase_population"], c["phase_band"], c["amplitude_population"],
                   c["amplitude_band"])
            match = [r for r in set_rows if (r["phase_population"], r["phase_band"],
                                             r["amplitude_population"], r["amplitude_band"]) == key]
            assert c["tested_utterances"] == len(match)
            assert c["significant_utterances"] == sum(float(r["mi_p_fdr"]) <= 0.05 for r in match)
    tests_line = next(x for x in text.splitlines() if x.startswith("tests "))
    assert tests_line.split()[1:] == [str(n_tests["model"]), str(n_tests["noise control"])]
    assert tests_line in page  # the report is on the page too
    assert f"PAC tests: {n_tests['model']} on the model, {n_tests['noise control']}" in r.stdout


def test_analyze_picks_the_longest_or_the_listed_utterances(run_dir, env):
    from sparse.analysis.run import choose_pair_bands
    from sparse.analysis.selection import select_utterances
    from sparse.train.restore import open_dataset, restore_run

    run = restore_run(run_dir)
    assert run.dt_ms == 2.0 and not run.model.training
    assert list(run.encoder.population_names) == ["nerve", "cortex1"]
    ds = open_dataset(run.config, run.corpus_root(), "test")
    chosen = select_utterances(ds, 4)
    durations = sorted((e.duration for e in ds.manifest), reverse=True)
    assert [len(u.waveform) / u.sample_rate for u in chosen] == pytest.approx(durations[:4],
                                                                               abs=1e-3)
    listed = [ds.manifest[5].id, ds.manifest[2].id]
    assert [u.id for u in select_utterances(ds, ids=listed)] == listed
    # the PAC figure's bands: theta/low gamma when they fit, else the slowest that fits
    assert choose_pair_bands(2000, 2.0) == ("theta", "low_gamma")
    assert choose_pair_bands(501, 2.0) == ("beta", "low_gamma")  # a 1 s clip at 500 Hz
    assert choose_pair_bands(101, 10.0) == ("theta", "low_gamma")  # nothing fits: reported


def test_analyze_former_surrogates_flag_still_works_hidden(run_dir, tmp_path, capsys):
    best = str(run_dir / "checkpoints" / "best.pt")
    with pytest.warns(FutureWarning, match="--surrogates is deprecated.*use --shuffles"):
        code = main(["analyze", best, "--surrogates", "0", "--out", str(tmp_path / "out"),
                     "--quiet"])
    assert code == 2 and "--shuffles must be at least 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["analyze", "--help"])
    shown = capsys.readouterr().out
    assert "--shuffles" in shown and "--surrogates" not in shown


def test_analyze_bad_input(run_dir, env, tmp_path, capsys):
    best = run_dir / "checkpoints" / "best.pt"

    def analyze(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main(["analyze", *args, "--out", str(tmp_path / "out"), "--quiet"])
        return code, capsys.readouterr().err

    def one_paragraph(err: str) -> None:
        assert err.startswith("sparse analyze: error: ") and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1, err

    code, err = analyze(str(tmp_path / "nowhere.pt"))
    assert code == 2 and "nowhere.pt" in err and "not found" in err
    one_paragraph(err)

    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(best.read_bytes()[:3000])
    code, err = analyze(str(corrupt))
    assert code == 2 and "corrupt.pt" in err and "cannot be read" in err
    one_paragraph(err)

    state = load_checkpoint(best)  # another architecture than its config says
    state["config"]["model"]["cortex_layer_sizes"] = [24]
    state.pop("format")
    save_checkpoint(state, tmp_path / "other.pt")
    code, err = analyze(str(tmp_path / "other.pt"))
    assert code == 2 and "another architecture" in err
    one_paragraph(err)

    code, err = analyze(str(best), "--pair", "nerve", "cortex9")
    assert code == 2 and "'cortex9'" in err and "input, nerve, cortex1" in err
    one_paragraph(err)

    missing = tmp_path / "no" / "corpus"
    code, err = analyze(str(best), "--data", str(missing))
    assert code == 2 and str(missing) in err and "does not exist" in err
    one_paragraph(err)

    code, err = analyze(str(best), "--split", "nosuchsplit")
    assert code == 2 and "nosuchsplit" in err
    one_paragraph(err)

    code, err = analyze(str(best), "--more-than-utterances", "-1")
    assert code == 2 and "--more-than-utterances must be 0 or more, got -1" in err
    one_paragraph(err)

    ids = tmp_path / "ids.txt"
    ids.write_text("# wanted\nnot/an_utterance\n")
    code, err = analyze(str(best), "--ids", str(ids))
    assert code == 2 and "not/an_utterance" in err
    one_paragraph(err)
    assert not (tmp_path / "out").exists()  # nothing written when the input is bad
