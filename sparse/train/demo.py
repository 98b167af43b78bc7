"""``sparse demo``: the main job on the default corpus, end to end, into one run folder.

1. synthesise the default corpus (or find it in the cache);
2. train the KWS encoder on the 35 keywords (:data:`DEMO_CONFIG`, identical to
   ``configs/kws_synth.yaml``);
3. evaluate the best checkpoint on the held-out test speakers (accuracy, confusion matrix,
   per-neuron firing rates and their distribution plot);
4. analyse it (:func:`sparse.analysis.cli.analyse_run`: the longest 64 test clips, 1000
   surrogates per test, the noise control) into ``<run>/analysis``;
5. write ``summary.md`` and print where everything is.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

from .config import apply_overrides, config_from_dict

__all__ = ["DEMO_CONFIG", "TINY_OVERRIDES", "run_analysis", "run_demo"]

#: The demo's configuration (the same as configs/kws_synth.yaml; a test keeps them equal).
DEMO_CONFIG: dict[str, Any] = {
    "task": "kws",
    "seed": 0,
    "name": "kws-synth",
    "data": {"corpus": "synth", "synth_preset": "default", "kws_task": "all"},
    "features": {"n_mels": 40, "hop_ms": 10.0, "win_ms": 25.0, "normalization": "global"},
    "model": {
        "auditory_channels": [16],
        "auditory_kernel_size": [5, 7],
        "auditory_frequency_stride": [2],
        "cortex_layer_sizes": [256, 256],
        "cortex_sfa_portions": [0.5, 0.5],
        "cortex_rnn_portions": [0.5, 0.5],
        "cortex_feedforward_portions": [1.0, 1.0],
        "dropout": 0.1,
    },
    "optim": {"lr": 0.002, "grad_clip": 5.0},
    "schedule": {"kind": "cosine", "warmup_steps": 100, "min_lr": 1e-5},
    "regularizer": {"weight": 0.5, "r_min_hz": 0.5, "r_max_hz": 250.0},
    "train": {"epochs": 5, "batch_size": 32, "num_threads": None, "checkpoint_every": 100},
}

#: What ``--tiny`` changes: the tiny corpus, a tiny model, one epoch (a smoke test).
TINY_OVERRIDES: list[str] = [
    "name=kws-tiny", "data.synth_preset=tiny", "model.cortex_layer_sizes=[32]",
    "model.cortex_sfa_portions=[0.5]", "model.cortex_rnn_portions=[0.5]",
    "model.cortex_feedforward_portions=[1.0]", "model.auditory_channels=[4]",
    "train.epochs=2", "train.batch_size=16", "train.checkpoint_every=0",
]

def run_analysis(run_dir: Path, checkpoint: Path) -> dict[str, Any]:
    """The analysis step of the demo: :func:`sparse.analysis.cli.analyse_run` into
    ``<run_dir>/analysis``; returns its summary and how long it took."""
    from ..analysis.cli import analyse_run

    t0 = time.perf_counter()
    result = analyse_run(run_dir=run_dir, checkpoint=checkpoint, out_dir=run_dir / "analysis")
    return {"out_dir": str(run_dir / "analysis"), "seconds": time.perf_counter() - t0,
            "result": result}


def run_demo(out: Path | None = None, tiny: bool = False, overrides: list[str] | None = None,
             resume: bool = False, quiet: bool = False) -> dict[str, Any]:
    """Run the demo; return the training summary (with ``run_dir``)."""
    from ..data.synth import SynthConfig, synthesize_corpus
    from .run import train_run

    t_start = time.perf_counter()
    data = copy.deepcopy(DEMO_CONFIG)
    apply_overrides(data, (TINY_OVERRIDES if tiny else []) + list(overrides or []))
    if quiet:
        apply_overrides(data, ["train.progress=false"])
    cfg = config_from_dict(data, "the demo config")
    print("sparse demo: keyword spotting on the synthesised corpus (35 words)", flush=True)
    t0 = time.perf_counter()
    d = cfg.data
    sc = SynthConfig.tiny(d.synth_seed) if d.synth_preset == "tiny" else \
        SynthConfig.default(d.synth_seed)
    corpus = synthesize_corpus(sc, root=d.synth_dir)
    synth_seconds = time.perf_counter() - t0
    u = corpus.info["utterances"]["keywords"]
    print(f"corpus: {corpus.root} ({u['train']}/{u['valid']}/{u['test']} train/valid/test "
          f"keyword clips; {synth_seconds:.0f} s)", flush=True)
    if out is None and not resume:
        out = Path("runs") / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    summary = train_run(cfg, out, resume=resume, verbose=not quiet)
    run_dir = Path(summary["run_dir"])
    analysis = run_analysis(run_dir, run_dir / "checkpoints" / "best.pt")
    total = time.perf_counter() - t_start
    summary["timings"]["synth_seconds"] = synth_seconds
    summary["timings"]["analysis_seconds"] = analysis["seconds"]
    summary["timings"]["demo_seconds"] = total
    summary["analysis"] = analysis
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    _write_summary_page(run_dir, cfg.to_dict(), summary, corpus.root)
    test = summary.get("test", {})
    print(f"test accuracy on held-out speakers: {100 * test.get('accuracy', float('nan')):.2f}% "
          f"({test.get('utterances', 0)} clips); total {total / 60:.1f} min")
    print(f"run folder: {run_dir}")
    print(f"summary:    {run_dir / 'summary.md'}")
    return summary


def _write_summary_page(run_dir: Path, cfg: dict[str, Any], summary: dict[str, Any],
                        corpus_root: Path) -> None:
    from .plots import read_log

    test = summary.get("test", {})
    t = summary["timings"]
    log = read_log(run_dir / "metrics.jsonl")
    m = cfg["model"]
    lines = [
        "# sparse demo: keyword spotting on the synthesised corpus",
        "",
        f"- corpus: `{corpus_root}` (35 keywords, held-out test speakers)",
        f"- model: KWSEncoder, {cfg['features']['n_mels']} mels, dt = "
        f"{cfg['features']['hop_ms']} ms, conv {m['auditory_channels']} x "
        f"{m['auditory_kernel_size']} (frequency stride {m['auditory_frequency_stride']}), "
        f"cortex {m['cortex_layer_sizes']}",
        f"- **test accuracy: {100 * test.get('accuracy', float('nan')):.2f}%** on "
        f"{test.get('utterances', 0)} clips (best epoch {test.get('best_epoch', '?')})",
        "- mean firing rates on the test set (Hz): " + ", ".join(
            f"{k} {v:.1f}" for k, v in test.get("rates_hz", {}).items()),
        f"- time: synthesis {t.get('synth_seconds', 0):.0f} s, features "
        f"{t.get('data_seconds', 0):.0f} s, training {t.get('train_seconds', 0):.0f} s, test "
        f"{t.get('test_seconds', 0):.0f} s, analysis {t.get('analysis_seconds', 0):.0f} s, "
        f"total {t.get('demo_seconds', 0):.0f} s",
        "",
        "| epoch | train loss | valid loss | train acc | valid acc | lr | seconds |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in log:
        lines.append(
            f"| {r['epoch']} | {r['train_loss']:.4f} | {r['valid_loss']:.4f} | "
            f"{100 * r.get('train_accuracy', 0):.2f}% | {100 * r.get('valid_accuracy', 0):.2f}% "
            f"| {r['lr']:.1e} | {r['epoch_seconds']:.0f} |")
    lines += [
        "",
        "## Files",
        "",
        "- `config.yaml`: the resolved config; `versions.json`: software versions",
        "- `checkpoints/best.pt`, `checkpoints/last.pt`: load with `sparse evaluate`",
        "- `metrics.jsonl`: one record per epoch; `curves.png`: learning curves",
        "- `evaluation/test.json`, `evaluation/test.txt`: accuracy, confusion matrix, rates",
        "- `evaluation/confusion.png`, `evaluation/rates.png`: figures",
        "- `analysis/index.html`: the analysis on one page (parameters, weights, rasters, "
        "rates, band signals, PAC tests against surrogates and the noise control); "
        "`analysis/pac_analysis.txt`, `analysis/pac_results.csv`/`.json`: its report and tests",
        "",
        "![learning curves](curves.png)",
        "",
        "![firing rates](evaluation/rates.png)",
        "",
        "![confusion](evaluation/confusion.png)",
        "",
    ]
    (run_dir / "summary.md").write_text("\n".join(lines))
