"""The analysis outputs of the original SPARSE code, and its entry points: every number a new
output shows agrees with a direct NumPy/SciPy computation on the same signals and with the
CSV/JSON the analysis writes."""

from __future__ import annotations

import csv
import inspect
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import signal as ssignal

from sparse.analysis import (
    analyse_spikes,
    filter_population_signal,
    firing_rates,
    pac_analysis,
    pac_plots,
)
from sparse.analysis.pac import phase_amplitude_map
from sparse.analysis.plots import plot_band_signals, plot_pac
from sparse.analysis.run import Utterance, run_analysis
from sparse.analysis.signals import population_signal
from sparse.analysis.significance import pac_pair_test, pac_significance
from sparse.analysis.synthetic import coupled_spike_trains, poisson_spike_trains
from sparse.encoder_kws import KWSEncoder
from sparse.features import LogMelFilterbank

DT = 2.0
FS = 500.0
PNG = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------ direct computations


def _taps(low: float, high: float, fs: float = FS) -> int:
    """The documented filter length: 3 cycles of the low edge, at least 3.3 / width s."""
    n = math.ceil(max(3.0 / low, 3.3 / (high - low)) * fs)
    return n + 1 if n % 2 == 0 else n


def _bandpass(x: np.ndarray, low: float, high: float, fs: float = FS) -> np.ndarray:
    """Zero-phase Hamming FIR band-pass with odd reflection at both ends, by np.convolve."""
    n = _taps(low, high, fs)
    h = ssignal.firwin(n, [low, high], pass_zero=False, fs=fs, window="hamming")
    pad = n // 2
    ext = np.concatenate([2 * x[0] - x[pad:0:-1], x, 2 * x[-1] - x[-2:-pad - 2:-1]])
    return np.convolve(ext, h, mode="valid")


def _z(spikes: np.ndarray) -> np.ndarray:
    s = np.asarray(spikes, dtype=np.float64)
    m = s.mean(axis=1) if s.ndim == 2 else s
    return (m - m.mean()) / m.std()


def _binned_means(phase: np.ndarray, amp: np.ndarray, n_bins: int = 18) -> np.ndarray:
    idx = np.clip(np.digitize(phase, np.linspace(-np.pi, np.pi, n_bins + 1)) - 1, 0, n_bins - 1)
    return np.array([amp[idx == j].mean() for j in range(n_bins)])


def _direct_map(phase_spikes: np.ndarray, amp_spikes: np.ndarray, phase_band: tuple[float, float],
                amp_band: tuple[float, float]) -> np.ndarray:
    """The phase-frequency amplitude map from its definition: rows every 1 Hz across the
    amplitude band, each filtered +- the phase band's upper edge, phase bins of the phase
    band's Hilbert phase, edges trimmed by half the longest filter."""
    pl, ph = phase_band
    freqs = np.arange(amp_band[0], amp_band[1] + 0.5)
    rows = [(f - ph, f + ph) for f in freqs]
    usable = [lo >= ph and hi < FS / 2 for lo, hi in rows]
    longest = max([_taps(pl, ph), _taps(*amp_band)]
                  + [_taps(lo, hi) for (lo, hi), ok in zip(rows, usable, strict=True) if ok])
    edge = (longest - 1) // 2
    x, y = _z(phase_spikes), _z(amp_spikes)
    phase = np.angle(ssignal.hilbert(_bandpass(x, pl, ph)))[edge:x.size - edge]
    out = np.full((freqs.size, 18), np.nan)
    for i, ((lo, hi), ok) in enumerate(zip(rows, usable, strict=True)):
        if ok:
            amp = np.abs(ssignal.hilbert(_bandpass(y, lo, hi)))[edge:x.size - edge]
            out[i] = _binned_means(phase, amp)
    return out


# ------------------------------------------------------------------ the measures and figures


def test_phase_amplitude_map_equals_a_direct_computation() -> None:
    a, b, _ = coupled_spike_trains(2000, 100, DT, rate_hz=40.0, gamma_hz=50.0, seed=3)
    pam = phase_amplitude_map(population_signal(a), population_signal(b), FS, "theta",
                              "low_gamma")
    assert pam.frequencies.tolist() == list(range(30, 81))  # 1 Hz apart, both edges included
    np.testing.assert_allclose(pam.mean_amplitude,
                               _direct_map(a, b, (4.0, 8.0), (30.0, 80.0)), rtol=1e-9)
    # the planted coupling: 50 Hz amplitude peaks at the theta peak (phase 0)
    row = pam.relative[pam.frequencies.tolist().index(50)]
    assert abs(np.degrees(pam.bin_centres[np.argmax(row)])) <= 40
    np.testing.assert_allclose(np.nanmean(pam.relative, axis=1), 1.0)
    # the map's phase is the PAC test's: same filters, same trimmed interior
    test = pac_pair_test(a, b, DT, "theta", "low_gamma", n_shuffles=10)
    assert pam.n_analysed == test.phase.size
    # a row whose band reaches into the phase band is not computed, and says why
    beta = phase_amplitude_map(population_signal(a), population_signal(b), FS, "beta",
                               "low_gamma")
    computed = np.isfinite(beta.mean_amplitude).all(axis=1)
    assert beta.frequencies[computed].min() == 60 and not computed[:30].any()
    assert len(beta.notes) == 30 and "reaches into the phase band" in beta.notes[0]
    np.testing.assert_allclose(beta.mean_amplitude,
                               _direct_map(a, b, (13.0, 30.0), (30.0, 80.0)), rtol=1e-9)


def test_band_overlay_draws_both_populations_filtered() -> None:
    a, b, _ = coupled_spike_trains(2000, 60, DT, seed=4)
    fig = plot_band_signals({"cortex1": a, "cortex2": b}, DT, window_s=2.0,
                            title="Population signals of cortex1 and cortex2")
    theta = fig.axes[2]
    assert theta.get_ylabel().startswith("theta")
    for line, spikes in zip(theta.get_lines(), (a, b), strict=True):
        np.testing.assert_allclose(line.get_ydata(), _bandpass(_z(spikes), 4.0, 8.0)[:1000],
                                   rtol=1e-9, atol=1e-12)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["cortex1",
                                                                            "cortex2"]
    assert "first 2.00 s of 4.00 s" in fig.axes[-1].get_xlabel()
    assert "cortex1 and cortex2" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="differ in length"):
        plot_band_signals({"a": a, "b": b[:1000]}, DT)


def test_pac_figure_draws_the_polar_plot_and_both_surrogate_distributions() -> None:
    a, b, _ = coupled_spike_trains(2000, 100, DT, rate_hz=40.0, seed=5)
    test = pac_pair_test(a, b, DT, "theta", "low_gamma", n_shuffles=300)
    fig = plot_pac(test, title="PAC")
    polar = [ax for ax in fig.axes if ax.name == "polar"]
    assert len(polar) == 1
    z = test.amplitude * np.exp(1j * test.phase)
    offsets = polar[0].collections[0].get_offsets()
    np.testing.assert_allclose(offsets[:, 0], np.angle(z))
    np.testing.assert_allclose(offsets[:, 1], np.abs(z))
    mean_vector = polar[0].get_lines()[-1]  # its length is the MVL
    assert mean_vector.get_ydata()[-1] == pytest.approx(np.abs(z.mean()), rel=1e-12)
    assert test.observed["mvl"] == pytest.approx(np.abs(z.mean()), rel=1e-12)
    assert f"MVL = {np.abs(z.mean()):.3g}" in " ".join(
        t.get_text() for t in polar[0].get_legend().get_texts())
    for metric, xlabel in (("mi", "modulation index"), ("mvl", "mean vector length")):
        ax = next(x for x in fig.axes if x.get_xlabel().startswith(xlabel))
        assert sum(p.get_height() for p in ax.patches) == 300  # every surrogate counted
        assert f"p = {test.p[metric]:.3g}" in " ".join(
            t.get_text() for t in ax.get_legend().get_texts())


# ------------------------------------------------------------------ the whole analysis


class _Recorded(KWSEncoder):
    """A small KWS encoder that plants theta(cortex1)-gamma(cortex2) coupling on speech
    (run_analysis runs each utterance, then its noise control) and records every output."""

    def forward(self, x, lengths=None):
        out = super().forward(x, lengths)
        n = len(self.record)
        spikes = dict(out.spikes)
        if n % 2 == 0:  # an utterance, not its noise control
            steps = spikes["cortex2"].shape[1]
            a, b, _ = coupled_spike_trains(steps, 120, DT, rate_hz=40.0, seed=n)
            spikes["cortex1"] = torch.as_tensor(a[None])
            spikes["cortex2"] = torch.as_tensor(b[None])
        self.record.append({k: v[0].numpy().copy() for k, v in spikes.items()})
        return out._replace(spikes=spikes)


def _speechlike(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    tone = 0.5 * (1 + np.sin(2 * np.pi * 5 * t)) * np.sin(2 * np.pi * (200 + 40 * seed) * t)
    return (tone + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    torch.manual_seed(0)
    encoder = _Recorded(num_mel_bins=20, num_classes=4, auditory_channels=[4],
                        auditory_kernel_size=(3, 5), auditory_frequency_stride=[2],
                        cortex_layer_sizes=[24, 16], cortex_sfa_portions=[0.5, 0.5],
                        cortex_rnn_portions=[0.5, 0.5], cortex_feedforward_portions=[1.0, 1.0],
                        dt=DT)
    encoder.record = []
    fbank = LogMelFilterbank(n_mels=20, hop_ms=DT, win_ms=25.0)

    def featurize(wav, lengths):
        feats, frames = fbank(wav, lengths)
        return (feats - feats.mean()) / (feats.std() + 1e-5), frames

    out_dir = tmp_path_factory.mktemp("original") / "analysis"
    utterances = [Utterance(f"utt{i}", _speechlike(2.5, i), 16000) for i in range(2)]
    out = run_analysis(encoder, utterances, featurize, out_dir, dt_ms=DT, n_shuffles=200,
                       plot_utterances=1, pair=("cortex1", "cortex2"),
                       pair_bands=("theta", "low_gamma"), more_than_utterances=0,
                       progress=False)
    return out, encoder.record


def test_the_analysis_writes_the_original_figures(analysed) -> None:
    out, _ = analysed
    root = out.out_dir
    summary = json.loads((root / "analysis_summary.json").read_text())
    expected = {"noise raster utt0": "figures/raster_noise_utt0.png",
                "noise rates utt0": "figures/rates_noise_utt0.png",
                "bands pair": "figures/bands_pair.png",
                "phase-amplitude map": "figures/phase_amplitude_map.png",
                "pac pair": "figures/pac_pair.png"}
    page = (root / "index.html").read_text()
    for name, rel in expected.items():
        assert summary["figures"][name] == rel, (name, out.messages)
        assert (root / rel).read_bytes()[:8] == PNG
        assert rel in page
    assert "phase_amplitude_map.json" in page
    assert summary["pac_figure"]["overlay_populations"] == ["cortex1", "cortex2"]
    assert summary["more_than_utterances"] == 0


def test_noise_raster_and_rates_agree_with_the_summary(analysed) -> None:
    out, record = analysed
    summary = json.loads((out.out_dir / "analysis_summary.json").read_text())
    tables = {(t["input"], t["utterance"]): t["populations"] for t in summary["firing_rates"]}
    assert set(tables) == {("speech", "utt0"), ("noise control", "utt0")}
    for key, spikes in ((("speech", "utt0"), record[0]), (("noise control", "utt0"), record[1])):
        assert set(tables[key]) == {"nerve", "cortex1", "cortex2"}
        for name, s in spikes.items():
            rates = s.astype(np.float64).sum(axis=0) / (s.shape[0] * DT / 1000.0)  # Hz
            got = tables[key][name]
            assert got["neurons"] == s.shape[1] and got["silent"] == int((rates == 0).sum())
            assert got["mean_hz"] == pytest.approx(rates.mean(), rel=1e-9)
            assert got["median_hz"] == pytest.approx(np.median(rates), rel=1e-9)
    # the noise control is not the speech: the recorded noise run has the model's own widths
    assert tables[("noise control", "utt0")]["cortex1"]["neurons"] == 24


def test_phase_amplitude_map_file_is_the_map_of_the_model_signals(analysed) -> None:
    out, record = analysed
    data = json.loads((out.out_dir / "phase_amplitude_map.json").read_text())
    assert (data["phase_population"], data["amplitude_population"]) == ("cortex1", "cortex2")
    assert data["phase_band"] == ["theta", 4.0, 8.0]
    u = int(data["utterance"].removeprefix("utt"))
    spikes = record[2 * u]  # the utterance's run (its noise control comes next)
    direct = _direct_map(spikes["cortex1"], spikes["cortex2"], (4.0, 8.0), (30.0, 80.0))
    got = np.array([[np.nan if v is None else v for v in row] for row in data["mean_amplitude"]])
    np.testing.assert_allclose(got, direct, rtol=1e-9)
    assert data["frequencies_hz"] == list(np.arange(30.0, 81.0))
    rel = np.array(data["relative"], dtype=float)
    np.testing.assert_allclose(rel, direct / direct.mean(axis=1, keepdims=True), rtol=1e-9)


def test_joint_criterion_counts_agree_with_the_csv(analysed) -> None:
    out, _ = analysed
    root = out.out_dir
    rows = list(csv.DictReader(open(root / "pac_results.csv", newline="")))
    data = {s["label"]: s for s in json.loads((root / "pac_results.json").read_text())["sets"]}
    text = (root / "pac_analysis.txt").read_text()

    def key(r):
        return (r["phase_population"], r["phase_band"], r["amplitude_population"],
                r["amplitude_band"])

    joint_line = next(x for x in text.splitlines() if x.startswith("joint: MI and MVL p < 0.05"))
    found = [int(k) for k in re.findall(r"(\d+) / \d+ \(", joint_line)]
    totals = []
    for label in ("model", "noise control"):
        mine = [r for r in rows if r["set"] == label]
        joint = [float(r["mi_p"]) < 0.05 and float(r["mvl_p"]) < 0.05 for r in mine]
        fdr = [float(r["mi_p_fdr"]) <= 0.05 for r in mine]
        # the per-test verdicts written beside the p-values
        assert [r["significant_joint"] == "1" for r in mine] == joint
        assert [r["significant_mi_fdr"] == "1" for r in mine] == fdr
        assert data[label]["columns"]["significant_joint"] == [int(j) for j in joint]
        assert data[label]["summary"]["significant_joint"] == sum(joint)
        totals.append(sum(joint))
        # per coupling: utterances where it holds under the joint criterion
        per: dict[tuple, list[int]] = {}
        for r, j in zip(mine, joint, strict=True):
            per.setdefault(key(r), [0, 0])
            per[key(r)][0] += j
            per[key(r)][1] += 1
        listed = {key(c): [c["significant_utterances"], c["tested_utterances"]]
                  for c in data[label]["couplings_joint"]}
        assert listed == per
        # more than n = 0 utterances: every coupling that holds somewhere, in the JSON and text
        more = data[label]["more_than_utterances"]
        assert more["n"] == 0
        assert {key(c) for c in more["joint"]} == {k for k, (s, _) in per.items() if s > 0}
        head = (f"{label}, joint criterion (MI and MVL p < 0.05, uncorrected): "
                f"{len(more['joint'])} coupling(s)")
        assert head in text
        # per utterance: how many couplings meet the joint criterion, in the JSON and text
        for entry in data[label]["joint_by_utterance"]:
            uid = entry["utterance_id"]
            n_joint = sum(j for r, j in zip(mine, joint, strict=True) if r["utterance_id"] == uid)
            n_tests = sum(r["utterance_id"] == uid for r in mine)
            assert len(entry["joint"]) == n_joint and entry["n_tests"] == n_tests
            section = text[text.index(f"Significant couplings per utterance ({label})"):]
            assert f"\n{uid}: {n_joint} of {n_tests} tested couplings\n" in section
    assert found == totals
    # the planted coupling meets the joint criterion on both utterances, never on noise
    planted = ("cortex1", "theta", "cortex2", "low_gamma")
    assert {key(c): c["significant_utterances"]
            for c in data["model"]["couplings_joint"]}[planted] == 2
    assert {key(c): c["significant_utterances"]
            for c in data["noise control"]["couplings_joint"]}[planted] == 0


# ------------------------------------------------------------------ the original's entry points

#: The original SPARSE code's signatures (sparse/analysis.py): argument names and defaults.
ORIGINAL = {
    "analyse_spikes": [
        ("model", None), ("all_spikes", None), ("feats", None), ("wavs", None),
        ("wav_lens", None), ("hop_length_ms", None), ("phase_layer", 3), ("amplitude_layer", 3),
        ("phase_freq_range", [4, 8]), ("amplitude_freq_range", [30, 80]),
        ("phase_band_name", "Theta"), ("amplitude_band_name", "Low-Gamma"),
        ("num_utterances_pac_analysis", 64), ("utterance_id", -1), ("plot_parameters", False),
        ("plot_weights", False), ("plot_spikes", True), ("plot_rates", True),
        ("plot_phase_amplitude_coupling", True), ("plot_filtered_population_signal", True),
        ("run_pac_analysis", False), ("save_plots", True),
        ("save_folder", "results/Analysis_2ms_16chan_3x512_ff1_rnn5_sfa5/plots/")],
    "firing_rates": [
        ("all_spikes", None), ("duration", None), ("num_steps", None), ("input_type", None),
        ("bin_width", 4), ("utterance_id", 0), ("sampling_rate", 1000),
        ("use_single_utterance", True), ("save_plot", True), ("save_folder", ".")],
    "pac_plots": [
        ("lowfreq_signal", None), ("highfreq_signal", None), ("lowfreq_signal_type", "spikes"),
        ("highfreq_signal_type", "spikes"), ("lowfreq_range", [3, 8]),
        ("highfreq_range", [30, 80]), ("lowfreq_name", "Theta"), ("highfreq_name", "Low-Gamma"),
        ("sampling_rate_spikes", 1000), ("sampling_rate_waveform", 16000),
        ("num_phase_bins", 18), ("num_surrogates", 10000), ("time_axis_first", True),
        ("phase_in_degrees", True), ("save_plots", False), ("save_folder", ".")],
    "filter_population_signal": [
        ("spike_trains_A", None), ("spike_trains_B", None), ("layer_A", None),
        ("layer_B", None), ("input_type", None), ("num_steps_to_plot", 1000),
        ("time_axis_first", True), ("delta_freq_range", [0.5, 4]),
        ("theta_freq_range", [4, 8]), ("alpha_freq_range", [8, 13]),
        ("beta_freq_range", [13, 30]), ("lowgamma_freq_range", [30, 80]),
        ("highgamma_freq_range", [80, 150]), ("sampling_rate", 1000), ("save_plots", False),
        ("save_folder", ".")],
    "pac_analysis": [
        ("all_spikes", None), ("waveforms", None), ("wav_lens", None), ("num_utterances", 2),
        ("num_phase_bins", 18), ("num_surrogates", 1000), ("sampling_rate_spikes", 1000),
        ("sampling_rate_waveform", 16000), ("phase_in_degrees", False)],
}


def test_entry_points_take_the_original_arguments() -> None:
    import sparse.analysis as analysis

    for name, params in ORIGINAL.items():
        fn = getattr(analysis, name)
        got = [(p.name, None if p.default is inspect.Parameter.empty
                else (list(p.default) if isinstance(p.default, tuple) else p.default))
               for p in inspect.signature(fn).parameters.values()]
        assert got == params, name
        assert name in analysis.__all__ and fn.__doc__


def _batch(n_utt: int = 2, steps: int = 2000, seed: int = 0):
    """The original's inputs: per-layer (batch, steps, neurons) spikes (nerve carries a
    theta rhythm that sets cortex1's gamma), the waveforms, relative lengths; the last batch
    element is noise."""
    layers = [np.zeros((n_utt + 1, steps, 60), np.float32) for _ in range(3)]
    for u in range(n_utt + 1):
        a, b, _ = coupled_spike_trains(steps, 60, DT, rate_hz=40.0, seed=[seed, u])
        layers[0][u], layers[1][u] = a, b
        layers[2][u] = poisson_spike_trains(steps, 60, DT, 20.0, seed=[seed, u, 2])
    wavs = np.random.default_rng(seed).normal(size=(n_utt, steps * 32)).astype(np.float32)
    return layers, wavs, np.array([1.0, 0.9, 1.0][: n_utt] + [1.0])


def test_pac_analysis_returns_the_original_layout() -> None:
    layers, wavs, lens = _batch()
    p_mvl, p_mi, combos, low, high = pac_analysis(layers, wavs, lens, num_utterances=2,
                                                  num_surrogates=100, sampling_rate_spikes=FS)
    assert combos == [(i, j) for i in range(4) for j in range(i, 4)] + ["all"]
    assert low == ["delta", "theta", "alpha", "beta"] and high == ["low_gamma", "high_gamma"]
    assert p_mvl.shape == p_mi.shape == (2, 11, 4, 2)
    assert np.isnan(p_mi[:, :, 0]).all()  # delta needs 12 s
    # the same numbers as the significance analysis of the same signals (the surrogates of
    # utterance u depend on u, not on which populations are analysed)
    steps = [int(2000 * x) for x in lens[:2]]
    direct = pac_significance({n: [layers[i][u, :steps[u]] for u in range(2)]
                               for i, n in enumerate(("nerve", "cortex1"))}, DT,
                              n_shuffles=100, include_all=False)
    c = direct.columns
    index = {"nerve": 1, "cortex1": 2}  # 0 is the waveform
    checked = 0
    for r in range(len(direct)):
        i, j = index[c["phase_population"][r]], index[c["amplitude_population"][r]]
        if i > j:  # the original tests each pair of layers in one direction
            continue
        at = (int(c["utterance"][r]), combos.index((i, j)), low.index(c["phase_band"][r]),
              high.index(c["amplitude_band"][r]))
        assert p_mi[at] == c["mi_p"][r] and p_mvl[at] == c["mvl_p"][r]
        checked += 1
    assert checked == 2 * 3 * 3 * 2  # utterances x pairs x phase bands (no delta) x amp bands
    k = combos.index((1, 2))
    assert p_mi[:, k, 1, 0].max() < 0.05 and p_mvl[:, k, 1, 0].max() < 0.05  # planted
    assert np.isfinite(p_mi[:, combos.index("all")][:, 1:]).all()
    with pytest.raises(ValueError, match="smaller than the batch size"):
        pac_analysis(layers, wavs, lens, num_utterances=3)


def test_analyse_spikes_writes_the_original_files(tmp_path: Path) -> None:
    layers, wavs, lens = _batch(n_utt=1)
    feats = np.random.default_rng(1).normal(size=(2, 2000, 16))
    out = analyse_spikes(None, layers, feats, wavs, lens, DT, phase_layer=0, amplitude_layer=1,
                         utterance_id=0, run_pac_analysis=True, num_utterances_pac_analysis=1,
                         save_folder=tmp_path)
    for rel in ("spikes_ordered_utt0.png", "rates_utt0.png",
                "filtered_population_signal_utt0.png",
                "pac_layer0_1_freq4_8_30_80_utt0/pac.png",
                "pac_layer0_1_freq4_8_30_80_utt0/phase_freq.png"):
        assert (tmp_path / rel).read_bytes()[:8] == PNG, rel
    assert out["pac"].test.p["mi"] < 0.01  # nerve theta sets cortex1's gamma
    rows = list(csv.DictReader(open(tmp_path / "pac_results.csv", newline="")))
    joint = sum(float(r["mi_p"]) < 0.05 and float(r["mvl_p"]) < 0.05 for r in rows)
    text = (tmp_path / "pac_analysis.txt").read_text()
    assert re.search(rf"^joint: MI and MVL p < 0\.05\s+{joint} / {len(rows)} ", text, re.M)
    # utterance -1 is the noise, named as the original names it
    out = analyse_spikes(None, layers, feats, wavs, lens, DT, phase_layer=0,
                         amplitude_layer=2, plot_phase_amplitude_coupling=False,
                         plot_filtered_population_signal=False, save_folder=tmp_path)
    assert (tmp_path / "spikes_ordered_gaussian_noise.png").exists()
    assert (tmp_path / "rates_gaussian_noise.png").exists()


def test_wrappers_compute_what_they_draw(tmp_path: Path) -> None:
    layers, wavs, _ = _batch(n_utt=1)
    fig = firing_rates(layers, 3.0, 1500, "utt0", utterance_id=0, save_plot=True,
                       save_folder=tmp_path)
    labels = " ".join(t.get_text() for t in fig.axes[0].get_legend().get_texts())
    for name, a in zip(("nerve", "cortex1", "cortex2"), layers, strict=True):
        rates = a[0, :1500].sum(axis=0) / 3.0
        assert f"{name}: median {np.median(rates):.1f} Hz" in labels
    assert (tmp_path / "rates_utt0.png").exists()
    # (neurons, steps) when time_axis_first is false; the first num_steps_to_plot are shown
    fig = filter_population_signal(layers[0][0].T, layers[1][0].T, 0, 1, "utt0",
                                   num_steps_to_plot=500, time_axis_first=False,
                                   sampling_rate=FS, save_plots=True, save_folder=tmp_path)
    beta = fig.axes[4]
    assert beta.get_ylabel().startswith("beta")
    np.testing.assert_allclose(beta.get_lines()[1].get_ydata(),
                               _bandpass(_z(layers[1][0]), 13.0, 30.0)[:500], rtol=1e-9,
                               atol=1e-12)
    assert (tmp_path / "filtered_population_signal_utt0.png").exists()
    # a waveform as the phase signal: brought to the spike rate first
    res = pac_plots(wavs[0], layers[1][0], "waveform", "spikes", sampling_rate_spikes=FS,
                    num_surrogates=50, phase_in_degrees=False)
    assert res.test.phase.size == res.phase_map.n_analysed
    assert res.map_figure.axes[0].get_xlabel().endswith("(radians, 0 = peak; 18 bins)")
