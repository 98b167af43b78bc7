"""The whole analysis of an encoder on utterances: every output exists and agrees."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import torch

from sparse.analysis.run import Utterance, run_analysis
from sparse.analysis.synthetic import coupled_spike_trains
from sparse.encoder_kws import KWSEncoder
from sparse.features import LogMelFilterbank


def _speechlike(seconds: float, sample_rate: int, seed: int) -> np.ndarray:
    """A tone whose loudness follows a 5 Hz syllable rhythm, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    envelope = 0.5 * (1 + np.sin(2 * math.pi * 5 * t))
    tone = np.sin(2 * math.pi * (200 + 40 * seed) * t)
    return (envelope * tone + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def _small_encoder(cls: type = KWSEncoder, dt: float = 2.0):
    """A small KWS encoder (seeded) and a matching featurizer."""
    torch.manual_seed(0)
    encoder = cls(num_mel_bins=20, num_classes=4, auditory_channels=[4],
                  auditory_kernel_size=(3, 5), auditory_frequency_stride=[2],
                  cortex_layer_sizes=[24, 16], cortex_sfa_portions=[0.5, 0.5],
                  cortex_rnn_portions=[0.5, 0.5], cortex_feedforward_portions=[1.0, 1.0], dt=dt)
    fbank = LogMelFilterbank(n_mels=20, hop_ms=dt, win_ms=25.0)

    def featurize(wav, lengths):
        feats, frames = fbank(wav, lengths)
        return (feats - feats.mean()) / (feats.std() + 1e-5), frames

    return encoder, featurize


def test_run_analysis_writes_every_output_consistently(tmp_path):
    dt = 2.0
    encoder, featurize = _small_encoder(dt=dt)

    utterances = [Utterance(f"utt{i}", _speechlike(2.0, 16000, i), 16000) for i in range(3)]
    out = run_analysis(encoder, utterances, featurize, tmp_path / "analysis", dt_ms=dt,
                       n_shuffles=200, plot_utterances=1, progress=False)

    for name, path in out.figures.items():
        assert path.exists() and path.stat().st_size > 1000, name
    for name in ("parameters", "weights", "raster utt0", "rates utt0", "bands utt0",
                 "pac pair", "comodulogram"):
        assert name in out.figures, (name, out.messages)
    text = (tmp_path / "analysis" / "pac_analysis.txt").read_text()
    rows = list(csv.DictReader(open(tmp_path / "analysis" / "pac_results.csv")))
    data = json.loads((tmp_path / "analysis" / "pac_results.json").read_text())
    assert data and rows
    # the CSV holds one row per test of both sets, the model's and the noise control's
    assert len(rows) == len(out.results) + len(out.control)
    assert {r["set"] for r in rows} == {"model", "noise control"}
    populations = {r["phase_population"] for r in rows}
    assert {"input", "nerve", "cortex1", "cortex2", "all"} <= populations
    # the text report's counts are the CSV's
    for label, result_set in (("model", out.results), ("noise control", out.control)):
        set_rows = [r for r in rows if r["set"] == label]
        assert len(set_rows) == len(result_set)
        fdr = sum(float(r["mi_p_fdr"]) <= 0.05 for r in set_rows)
        raw = sum(float(r["mi_p"]) <= 0.05 for r in set_rows)
        n = len(set_rows)
        assert f"{raw} / {n} (" in text and f"{fdr} / {n} (" in text
    summary_line = next(line for line in text.splitlines() if line.startswith("tests "))
    assert summary_line.split()[1:] == [str(len(out.results)), str(len(out.control))]
    page = (tmp_path / "analysis" / "index.html").read_text()
    for path in out.figures.values():
        assert path.relative_to(tmp_path / "analysis").as_posix() in page
    assert "pac_results.csv" in page and "front.cortex" in page

    # no coupling of this untrained encoder survives FDR: the figure falls back to the nerve
    # against the last population on the first utterance, and says so
    assert not any(out.results.significant())
    assert out.pac_figure["why"].startswith("no significant coupling")
    assert (out.pac_figure["phase_population"], out.pac_figure["amplitude_population"],
            out.pac_figure["utterance"]) == ("nerve", "cortex2", "utt0")
    summary = json.loads((tmp_path / "analysis" / "analysis_summary.json").read_text())
    assert summary["pac_figure"] == out.pac_figure


class _PlantedOnSpeech(KWSEncoder):
    """A KWS encoder whose cortex1 theta phase drives cortex2's low-gamma amplitude on
    speech, not on the noise control: ``run_analysis`` runs each utterance, then its noise
    input, so every second call is left as the model made it."""

    calls = 0

    def forward(self, x, lengths=None):
        out = super().forward(x, lengths)
        type(self).calls += 1
        if type(self).calls % 2 == 0:
            return out
        spikes = dict(out.spikes)
        steps = spikes["cortex2"].shape[1]
        # wider than the model's layers: the analysis takes any number of neurons
        a, b, _ = coupled_spike_trains(steps, 200, 2.0, rate_hz=40.0, seed=type(self).calls)
        spikes["cortex1"] = torch.as_tensor(a[None], dtype=torch.float32)
        spikes["cortex2"] = torch.as_tensor(b[None], dtype=torch.float32)
        return out._replace(spikes=spikes)


def test_the_pac_figure_shows_the_strongest_coupling(tmp_path):
    dt = 2.0
    encoder, featurize = _small_encoder(_PlantedOnSpeech, dt=dt)
    _PlantedOnSpeech.calls = 0
    utterances = [Utterance(f"utt{i}", _speechlike(3.0, 16000, i), 16000) for i in range(3)]
    out = run_analysis(encoder, utterances, featurize, tmp_path / "analysis", dt_ms=dt,
                       n_shuffles=1000, plot_utterances=0, progress=False)
    assert _PlantedOnSpeech.calls == 6
    rows = list(csv.DictReader(open(tmp_path / "analysis" / "pac_results.csv")))

    def per_coupling(label):
        counts = {}
        for r in rows:
            if r["set"] == label:
                key = (r["phase_population"], r["phase_band"], r["amplitude_population"],
                       r["amplitude_band"])
                counts[key] = counts.get(key, 0) + (float(r["mi_p_fdr"]) <= 0.05)
        return counts

    # counted from the CSV: the figure's coupling is significant on the most utterances
    # beyond the noise control, and shown where its p is smallest
    model, control = per_coupling("model"), per_coupling("noise control")
    chosen = out.pac_figure
    key = (chosen["phase_population"], chosen["phase_band"], chosen["amplitude_population"],
           chosen["amplitude_band"])
    excess = {k: model[k] - control.get(k, 0) for k in model if model[k]}
    planted = ("cortex1", "theta", "cortex2", "low_gamma")
    assert excess.get(planted) == 3, excess  # found on every utterance, never in the control
    page = (tmp_path / "analysis" / "index.html").read_text()
    assert f"amplitude of {key[2]} on {chosen['utterance']}: significant" in page
    assert excess[key] == max(excess.values()), (chosen, excess)
    assert chosen["why"].startswith("significant")
    p_of_key = {r["utterance_id"]: (float(r["mi_p_fdr"]), -float(r["mi_z"])) for r in rows
                if r["set"] == "model" and (r["phase_population"], r["phase_band"],
                                            r["amplitude_population"], r["amplitude_band"]) == key}
    assert p_of_key[chosen["utterance"]] == min(p_of_key.values())
    assert {"pac pair", "comodulogram"} <= set(out.figures)
    summary = json.loads((tmp_path / "analysis" / "analysis_summary.json").read_text())
    assert summary["pac_figure"] == chosen


class _SilentCortex2(KWSEncoder):
    """A KWS encoder whose last cortex layer never fires."""

    def forward(self, x, lengths=None):
        out = super().forward(x, lengths)
        spikes = dict(out.spikes)
        spikes["cortex2"] = torch.zeros_like(spikes["cortex2"])
        return out._replace(spikes=spikes)


def test_a_silent_population_is_reported_and_the_rest_analysed(tmp_path):
    dt = 2.0
    encoder, featurize = _small_encoder(_SilentCortex2, dt=dt)
    encoder.eval()

    utterances = [Utterance(f"utt{i}", _speechlike(1.5, 16000, i), 16000) for i in range(2)]
    out = run_analysis(encoder, utterances, featurize, tmp_path / "analysis", dt_ms=dt,
                       n_shuffles=50, plot_utterances=1, progress=False,
                       pair=("all", "cortex1"))
    # 'all' (every spiking population together) can be asked for by name
    assert out.pac_figure["phase_population"] == "all" and "pac pair" in out.figures
    # the band figure falls back to the deepest population that fired
    assert "bands utt0" in out.figures
    assert any("cortex2 fired no spike on utt0" in m for m in out.messages), out.messages
    assert "cortex2" not in {r["phase_population"] for r in out.results.rows()} | {
        r["amplitude_population"] for r in out.results.rows()}
    assert any("cortex2" in str(s) for s in out.results.skipped)
    assert {"nerve", "cortex1"} <= {r["phase_population"] for r in out.results.rows()}


def test_a_step_too_coarse_for_any_test_is_said_so(tmp_path):
    """At dt = 10 ms (100 Hz) both gamma bands lie above Nyquist: no PAC test runs, the
    report says why, and the PAC figure is skipped with the reason."""
    encoder, featurize = _small_encoder(dt=10.0)
    utterances = [Utterance("utt0", _speechlike(1.0, 16000, 0), 16000)]
    out = run_analysis(encoder, utterances, featurize, tmp_path / "analysis", dt_ms=10.0,
                       n_shuffles=20, plot_utterances=1, progress=False,
                       pair=("nerve", "cortex1"))
    assert len(out.results) == 0 and len(out.control) == 0
    assert out.pac_figure["why"].startswith("no PAC test could run")
    assert "pac pair" not in out.figures
    assert any("reaches the Nyquist frequency" in m for m in out.messages), out.messages
    assert "raster utt0" in out.figures  # the rest of the analysis still ran
