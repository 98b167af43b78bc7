"""`sparse demo --tiny` for both tasks: it learns (better than a guess that ignores the audio),
its page (index.html at the root of the run folder) says what the JSON files say, and both
pages render in a real browser with every image and link; the parts the page relies on
(utterance choice on ties, the chance level of a PER, what cannot be tested and why)."""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest

from sparse.analysis.report import untestable_bands
from sparse.analysis.selection import longest_spread, spread_ties
from sparse.cli import main
from sparse.data.synth import SynthConfig, synthesize_corpus
from sparse.train.metrics import align, prior_baseline_per

from .browser import broken, check_page


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.getbasetemp() / "sparse-data"
    synthesize_corpus(SynthConfig.tiny(0), root=d / "tiny", workers=2)
    return d


def _demo(corpus_dir: Path, out: Path, capsys, *args: str) -> str:
    capsys.readouterr()
    code = main(["demo", "--tiny", "--quiet", "--out", str(out), "--set",
                 f"data.synth_dir={corpus_dir}", *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


class _Tables(HTMLParser):
    """The cells of every table with an id, and the text of every element with an id."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.ids: dict[str, str] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._open: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("id"):
            self._table = a["id"]
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []
        if a.get("id"):
            self._open.append((tag, a["id"]))
            self.ids[a["id"]] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        if tag == "table":
            self._table = None
        if self._open and self._open[-1][0] == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        for _, i in self._open:
            self.ids[i] += data


def _parse(page: Path) -> _Tables:
    p = _Tables()
    p.feed(page.read_text(encoding="utf-8"))
    return p


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def _assert_page_matches_json(run: Path, headline_key: str) -> _Tables:
    page = _parse(run / "index.html")
    test = json.loads((run / "evaluation" / "test.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    assert page.ids["headline"] == _pct(test[headline_key])
    assert int(page.ids["test-count"]) == test["utterances"]
    assert _pct(summary["chance"]["value"]) in page.ids["chance"]
    pac = json.loads((run / "analysis" / "pac_results.json").read_text())
    sets = {s["label"]: s for s in pac["sets"]}
    for label, name in (("model", "speech"), ("noise control", "noise")):
        s = sets[label]["summary"]
        assert (f"{name}: {s['significant']['mi']['fdr']} of {s['n_tests']} tests"
                in page.ids["pac-summary"])
    expected = {}
    for label in ("model", "noise control"):
        for c in sets[label]["couplings_mi_fdr"]:
            key = (c["phase_population"], c["phase_band"], c["amplitude_population"],
                   c["amplitude_band"])
            expected.setdefault(key, {})[label] = (c["significant_utterances"],
                                                   c["tested_utterances"])
    significant = {k for k, v in expected.items() if any(x[0] for x in v.values())}
    rows = page.tables.get("couplings", [])[1:]
    assert len(rows) == min(30, len(significant))
    for row in rows:
        key = tuple(row[:4])
        speech = expected[key].get("model", (0, 0))
        noise = expected[key].get("noise control", (0, 0))
        assert row[4] == f"{speech[0]} / {speech[1]}" and row[5] == f"{noise[0]} / {noise[1]}"
    epochs = page.tables["epochs"][1:]
    log = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [int(r[0]) for r in epochs] == [r["epoch"] for r in log]
    assert epochs[-1][1] == f"{log[-1]['train_loss']:.4f}"
    markdown = (run / "summary.md").read_text()
    assert f"{_pct(test[headline_key])}**" in markdown
    # the NeuroBench metrics of the tested model, as the evaluation counted them
    eff, unit = test["efficiency"], "clip" if headline_key == "accuracy" else "sentence"
    shown = dict(page.tables["efficiency"][1:])
    assert shown["connection sparsity"] == f"{eff['connection_sparsity']:.4f}"
    assert shown["activation sparsity"] == f"{eff['activation_sparsity']:.4f}"
    assert shown["model footprint"].endswith(f"({eff['footprint_bytes']} bytes)")
    ops = eff["synaptic_operations"]
    assert shown[f"effective MACs per {unit}"] == f"{ops['effective_macs']:,.0f}"
    assert shown[f"effective ACs per {unit}"] == f"{ops['effective_acs']:,.0f}"
    assert f"| effective ACs per {unit} | {ops['effective_acs']:,.0f} |" in markdown
    return page


def _assert_renders(run: Path, tmp_path: Path) -> None:
    for k, page in enumerate((run / "index.html", run / "analysis" / "index.html")):
        report = check_page(page, tmp_path / f"browser{k}")
        assert report["images"], f"{page} shows no image"
        assert not broken(report), (page, broken(report))
    links = {x["href"] for x in check_page(run / "index.html", tmp_path / "b2")["links"]}
    assert "analysis/index.html" in links and "analysis/pac_analysis.txt" in links
    assert all(not h.startswith(("/", "file:", "http")) for h in links)  # relative only


def test_demo_tiny_asr_learns_and_its_page_tells_the_truth(data_dir, env, tmp_path, capsys):
    run = tmp_path / "asr"
    out = _demo(data_dir / "tiny", run, capsys)
    assert f"run folder: {run}" in out and f"open:       {run / 'index.html'}" in out
    test = json.loads((run / "evaluation" / "test.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    cfg = (run / "config.yaml").read_text()
    assert "hop_ms: 2.0" in cfg and "task: asr" in cfg
    # learning: clearly below the PER of a guess that ignores the audio
    assert summary["chance"]["metric"] == "per"
    assert test["per"] < summary["chance"]["value"] - 0.05, (test["per"], summary["chance"])
    _assert_page_matches_json(run, "per")
    text = (run / "index.html").read_text()
    assert "phone error rate" in text and "with its phones" in text
    for word in ("issue", "seed", "floor"):
        assert not re.search(rf"\b{word}\b", html.unescape(re.sub("<[^>]+>", " ", text)),
                             re.I), word
    analysis = json.loads((run / "analysis" / "analysis_summary.json").read_text())
    assert any(k.startswith("raster ") for k in analysis["figures"])
    assert "comodulogram" in analysis["figures"]
    _assert_renders(run, tmp_path)


def test_demo_tiny_kws_learns_and_says_what_it_cannot_test(data_dir, env, tmp_path, capsys):
    run = tmp_path / "kws"
    _demo(data_dir / "small", run, capsys, "--task", "kws")  # the 'small' corpus preset
    test = json.loads((run / "evaluation" / "test.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["chance"]["metric"] == "accuracy"
    assert summary["chance"]["value"] == pytest.approx(1 / 35)
    assert test["accuracy"] >= 3 * summary["chance"]["value"], test["accuracy"]
    _assert_page_matches_json(run, "accuracy")
    text = (run / "index.html").read_text()
    # up front: before the coupling table
    front = text[: text.index("Phase-amplitude coupling: speech against noise")]
    assert "Nyquist frequency 50 Hz" in front and "low_gamma" in front
    assert "high_gamma" in front and "cycles of its low edge" in front
    report = (run / "analysis" / "pac_analysis.txt").read_text()
    assert "what would make them run" in report and "features.hop_ms" in report
    _assert_renders(run, tmp_path)


# ------------------------------------------------------------------------------ the parts


def _entry(label: str, speaker: str, duration: float = 1.0) -> SimpleNamespace:
    return SimpleNamespace(label=label, speaker=speaker, duration=duration, id=f"{label}/{speaker}")


def test_tied_lengths_are_spread_over_classes_and_speakers_not_id_order():
    # 3 classes x 20 speakers, all 1 s, in id order: 'a' first (what id order would take)
    manifest = [_entry(c, f"s{k:02d}") for c in "abc" for k in range(20)]
    manifest.append(_entry("z", "long", 2.0))
    chosen = longest_spread(manifest, 10, seed=0)
    assert chosen[0] == len(manifest) - 1  # the longer one first
    picked = [manifest[i] for i in chosen[1:]]
    counts = {c: sum(e.label == c for e in picked) for c in "abc"}
    assert sorted(counts.values()) == [3, 3, 3]
    assert len({e.speaker for e in picked}) == 9
    assert longest_spread(manifest, 10, seed=0) == chosen  # reproducible
    assert longest_spread(manifest, 10, seed=1) != chosen  # and drawn, not in id order
    # fewer tied items than asked: all of them, each once
    assert sorted(spread_ties(manifest[:3], [0, 1, 2], 5)) == [0, 1, 2]


def test_prior_baseline_per_counts_errors_like_the_alignment():
    train = [list("aab"), list("abca"), list("aaaa")]
    test = [list("abcab"), list("ccc"), list("a")]
    base = prior_baseline_per(train, test)
    assert base["phone"] == "a"
    k = base["repeats"]
    errors = sum(align(ref, ["a"] * k).errors for ref in test)
    assert base["errors"] == errors
    assert base["per"] == pytest.approx(errors / sum(len(t) for t in test))
    # k minimises the training PER
    def train_errors(r: int) -> int:
        return sum(align(ref, ["a"] * r).errors for ref in train)
    assert all(train_errors(k) <= train_errors(r) for r in range(6))
    with pytest.raises(ValueError, match="must hold phones"):
        prior_baseline_per([[]], test)


def test_untestable_bands_at_10_ms_on_1_s_clips():
    notes = untestable_bands(10.0, 1.0)
    text = "\n".join(notes)
    for band in ("low_gamma", "high_gamma"):
        assert any(n.startswith(band) and "Nyquist frequency 50 Hz" in n for n in notes), band
    for band in ("delta", "theta"):
        assert any(n.startswith(band) and "cycles of its low edge" in n for n in notes), band
    assert "beta" not in text  # beta (13-30 Hz) fits 1 s at 100 Hz
    assert untestable_bands(2.0, 4.0) == [n for n in untestable_bands(2.0, 4.0)
                                          if n.startswith("delta")]
    assert len(untestable_bands(2.0, 4.0)) == 1
    with pytest.raises(ValueError, match="dt_ms"):
        untestable_bands(0.0, 1.0)


def test_page_checker_reports_missing_images_and_dead_links(tmp_path):
    site = tmp_path / "run"
    site.mkdir()
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1, 1))
    fig.savefig(site / "ok.png")
    (site / "ok.txt").write_text("x")
    (site / "index.html").write_text(
        "<!DOCTYPE html><html><body><img src='ok.png'><img src='missing.png'>"
        "<a href='ok.txt'>a</a><a href='gone.txt'>b</a></body></html>")
    report = check_page(site / "index.html", tmp_path / "b")
    bad = broken(report)
    assert any("missing.png" in b for b in bad) and any("gone.txt" in b for b in bad)
    assert not any("ok.png" in b or "ok.txt" in b for b in bad)


def test_report_says_why_tests_were_skipped_and_what_would_run_them():
    import numpy as np

    from sparse.analysis.report import format_pac_report, skip_explanations
    from sparse.analysis.significance import pac_significance

    rng = np.random.default_rng(0)
    # 1 s at a 10 ms step: gamma above Nyquist, delta and theta too slow; one silent population
    pops = {"a": [(rng.random((100, 20)) < 0.2).astype(np.float32)],
            "b": [np.zeros((100, 20), np.float32)]}
    res = pac_significance(pops, 10.0, n_shuffles=20, include_all=False,
                           amplitude_bands=["beta", "low_gamma"], phase_bands=["delta", "alpha"])
    notes = skip_explanations(res)
    text = "\n".join(notes)
    assert "not tested at all: low_gamma (30-80 Hz)" in text and "below 6.25 ms" in text
    assert "skipped on 1 utterance(s): delta (0.5-4 Hz) needs 12.01 s" in text
    assert "population b fired no spike on 1 utterance(s)" in text
    report = format_pac_report(res)
    assert "what would make them run" in report
    assert all(n in report for n in notes)


def test_corpus_presets_by_name():
    small = SynthConfig.preset("small", 3)
    assert small.seed == 3 and small.keyword_speakers == (12, 2, 2)
    assert small.timit_speakers == SynthConfig.tiny().timit_speakers
    assert SynthConfig.preset("default") == SynthConfig.default()
    with pytest.raises(ValueError, match="unknown corpus preset 'huge'"):
        SynthConfig.preset("huge")
