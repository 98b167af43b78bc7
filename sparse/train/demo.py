"""``sparse demo``: the main job on the default corpus, end to end, into one run folder.

The original SPARSE experiment (``--task asr``, the default):

1. synthesise the default corpus (or find it in the cache);
2. train the ASR encoder at a 2 ms step (dt = 2 ms, 500 Hz) with CTC on 39 phones on the
   sentences (:data:`DEMO_ASR_CONFIG`, identical to ``configs/demo_asr.yaml``);
3. evaluate the best checkpoint on the held-out test speakers (phone error rate, per-neuron
   firing rates), beside a guess that ignores the audio;
4. analyse it (:func:`sparse.analysis.analyze.analyze_run`: the 64 longest test sentences,
   1000 shuffles per test, the noise control) into ``<run>/analysis``;
5. write ``index.html`` and ``summary.md`` at the root of the run folder
   (:mod:`sparse.train.demo_page`) and print where everything is.

``--task kws`` trains the keyword-spotting encoder of ``configs/kws_synth.yaml``
(:data:`DEMO_KWS_CONFIG`) instead; ``--tiny`` uses the tiny corpus and a tiny model.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

from .config import TrainConfig, apply_overrides, config_from_dict
from .memory import release_freed_memory, return_large_blocks
from .tasks import DemoText, Task, task_of

__all__ = ["DEMO_ASR_CONFIG", "DEMO_CONFIG", "DEMO_CONFIGS", "DEMO_KWS_CONFIG", "TASKS",
           "TINY_OVERRIDES", "chance_level", "demo_config", "run_analysis", "run_demo"]

#: The main job (the same as configs/demo_asr.yaml; a test keeps them equal): the paper's
#: encoder shape (conv -> auditory nerve -> 3 AdLIF/LIF cortex layers, sfa/rnn 0.5 ->
#: pooling -> MLP 2 x N -> CTC on 39 phones) at its 2 ms step, at widths for a short budget.
DEMO_ASR_CONFIG: dict[str, Any] = {
    "task": "asr",
    "seed": 0,
    "name": "asr-demo",
    "data": {"corpus": "synth", "synth_preset": "default", "phone_set": 39},
    "features": {"n_mels": 40, "hop_ms": 2.0, "win_ms": 25.0, "standardization": "global"},
    "model": {
        "auditory_channels": [16],
        "auditory_kernel_size": [7, 7],
        "auditory_frequency_stride": [2],
        "cortex_layer_sizes": [256, 256, 256],
        "cortex_sfa_portions": [0.5, 0.5, 0.5],
        "cortex_rnn_portions": [0.5, 0.5, 0.5],
        "cortex_feedforward_portions": [1.0, 1.0, 1.0],
        "dropout": 0.15,
        "phoneme_num_layers": 2,
        "phoneme_features": 256,
        "phoneme_ctc_rate_hz": 50,
        "phoneme_layernorm": True,
        "auditory_dropout": 0.0,
        "recurrent_init": "orthogonal",
        "batchnorm_momentum": 0.1,
    },
    "optim": {"lr": 0.002, "grad_clip": 5.0},
    "schedule": {"kind": "cosine", "warmup_steps": 100, "min_lr": 1e-5},
    "regularizer": {"weight": 0.5, "r_min_hz": 0.5, "r_max_hz": 250.0},
    "train": {"epochs": 4, "batch_size": 8, "num_threads": None, "checkpoint_every": 50},
}

#: Keyword spotting (the same as configs/kws_synth.yaml; a test keeps them equal).
DEMO_KWS_CONFIG: dict[str, Any] = {
    "task": "kws",
    "seed": 0,
    "name": "kws-synth",
    "data": {"corpus": "synth", "synth_preset": "default", "kws_task": "all"},
    "features": {"n_mels": 40, "hop_ms": 10.0, "win_ms": 25.0, "standardization": "global"},
    "model": {
        "auditory_channels": [16],
        "auditory_kernel_size": [5, 7],
        "auditory_frequency_stride": [2],
        "cortex_layer_sizes": [256, 256],
        "cortex_sfa_portions": [0.5, 0.5],
        "cortex_rnn_portions": [0.5, 0.5],
        "cortex_feedforward_portions": [1.0, 1.0],
        "dropout": 0.1,
        "readout_tau_steps": [5.0, 25.0],
        "readout_dropout": 0.1,
        "auditory_dropout": 0.0,
        "recurrent_init": "orthogonal",
    },
    "optim": {"lr": 0.002, "grad_clip": 5.0},
    "schedule": {"kind": "cosine", "warmup_steps": 100, "min_lr": 1e-5},
    "regularizer": {"weight": 0.5, "r_min_hz": 0.5, "r_max_hz": 250.0},
    "train": {"epochs": 5, "batch_size": 32, "num_threads": None, "checkpoint_every": 100},
}

#: the task of each demo config -> that config
DEMO_CONFIGS: dict[str, dict[str, Any]] = {c["task"]: c for c in (DEMO_ASR_CONFIG,
                                                                    DEMO_KWS_CONFIG)}
#: the tasks ``sparse demo --task`` accepts (each has its wording, ``Task.demo``)
TASKS: tuple[str, ...] = tuple(DEMO_CONFIGS)
#: ``sparse demo`` without ``--task``: the original's experiment
DEMO_CONFIG = DEMO_ASR_CONFIG

#: What ``--tiny`` changes: the tiny corpus, a tiny model, enough steps to learn (about a
#: minute of training on 2 cores).
TINY_OVERRIDES: dict[str, list[str]] = {
    "asr": [
        "name=asr-tiny", "data.synth_preset=tiny", "model.auditory_channels=[8]",
        "model.cortex_layer_sizes=[128,128]", "model.cortex_sfa_portions=[0.5,0.5]",
        "model.cortex_rnn_portions=[0.5,0.5]", "model.cortex_feedforward_portions=[1.0,1.0]",
        "model.phoneme_num_layers=1", "model.phoneme_features=128", "optim.lr=0.005",
        "train.epochs=40", "train.batch_size=4", "train.checkpoint_every=0",
    ],
    "kws": [
        "name=kws-tiny", "data.synth_preset=small", "model.cortex_layer_sizes=[64]",
        "model.cortex_sfa_portions=[0.5]", "model.cortex_rnn_portions=[0.5]",
        "model.cortex_feedforward_portions=[1.0]", "model.auditory_channels=[8]",
        "optim.lr=0.005", "train.epochs=30", "train.batch_size=16", "train.checkpoint_every=0",
    ],
}


def demo_config(task: str = "asr", tiny: bool = False, overrides: list[str] | None = None,
                quiet: bool = False) -> TrainConfig:
    """The validated config of ``sparse demo --task TASK [--tiny] [--set ...]``.

    Raises:
        ValueError: an unknown task; ConfigError: a bad override.
    """
    if task not in DEMO_CONFIGS:
        raise ValueError(f"unknown demo task {task!r}; choose from {', '.join(TASKS)}")
    data = copy.deepcopy(DEMO_CONFIGS[task])
    apply_overrides(data, (TINY_OVERRIDES[task] if tiny else []) + list(overrides or []))
    if quiet:
        apply_overrides(data, ["train.progress=false"])
    return config_from_dict(data, f"the {task} demo config")


def run_analysis(run_dir: Path, checkpoint: Path, progress: bool = True) -> dict[str, Any]:
    """The analysis step of the demo: :func:`sparse.analysis.analyze.analyze_run` into
    ``<run_dir>/analysis``; returns its summary and how long it took."""
    from ..analysis.analyze import analyze_run  # the analysis library (torch, matplotlib)

    t0 = time.perf_counter()
    result = analyze_run(run_dir=run_dir, checkpoint=checkpoint, out_dir=run_dir / "analysis",
                         progress=progress)
    return {"out_dir": str(run_dir / "analysis"), "seconds": time.perf_counter() - t0,
            "result": result}


def chance_level(cfg: TrainConfig, corpus_root: Path) -> dict[str, Any]:
    """What a guess that ignores the audio scores on the test split (the task's
    :meth:`~sparse.train.tasks.Task.chance`): for KWS one over the number of classes (the
    test classes are balanced); for ASR the PER of the most frequent training phone repeated
    as often as fits the training sentences best
    (:func:`~sparse.train.metrics.prior_baseline_per`)."""
    return task_of(cfg).chance(cfg, corpus_root)


def _demo_text(task: Task) -> DemoText:
    """The wording of ``task``'s demo (every task of :data:`DEMO_CONFIGS` has one)."""
    if task.demo is None:
        raise ValueError(f"task '{task.name}' has no demo; choose from {', '.join(TASKS)}")
    return task.demo


def _synthesise(cfg: TrainConfig) -> tuple[Path, float, str]:
    """Build (or find) the synthesised corpus; the root of the task's layout (Speech Commands
    or TIMIT), the seconds it took and a line that says what it holds for ``cfg.task``."""
    from ..data.synth import SynthConfig, synthesize_corpus

    t0 = time.perf_counter()
    d = cfg.data
    if d.corpus != "synth":  # a corpus of the user's (--set data.corpus=PATH)
        from .data import resolve_corpus

        root = resolve_corpus(cfg)
        return root, time.perf_counter() - t0, f"corpus: {root}"
    sc = SynthConfig.preset(d.synth_preset, d.synth_seed)
    corpus = synthesize_corpus(sc, root=d.synth_dir)
    seconds = time.perf_counter() - t0
    task = task_of(cfg)
    u = corpus.info["utterances"][task.synth_part]
    line = (f"corpus: {corpus.root} ({u['train']}/{u['valid']}/{u['test']} train/valid/test "
            f"{_demo_text(task).corpus_items}; {seconds:.0f} s)")
    return Path(task.synth_root(cfg, corpus)), seconds, line


def run_demo(out: Path | None = None, tiny: bool = False, overrides: list[str] | None = None,
             resume: bool = False, quiet: bool = False, task: str = "asr") -> dict[str, Any]:
    """Run the demo of ``task`` ('asr': the original's experiment, or 'kws'); return the
    training summary (with ``run_dir``, ``chance``, ``analysis``, ``timings``)."""
    from .lock import folder_lock
    from .run import RunError

    t_start = time.perf_counter()
    cfg = demo_config(task, tiny, overrides, quiet)
    text = _demo_text(task_of(cfg))
    if text.return_memory:
        return_large_blocks()
    print("sparse demo: " + text.announce, flush=True)
    corpus_root, synth_seconds, line = _synthesise(cfg)
    print(line, flush=True)
    if out is None:
        if resume:
            raise RunError("--resume needs the run folder (--out RUN_DIR)")
        out = Path("runs") / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    with folder_lock(out):
        return _train_and_report(cfg, Path(out), resume, quiet, corpus_root, synth_seconds,
                                 tiny, t_start)


def _train_and_report(cfg: TrainConfig, out: Path, resume: bool, quiet: bool,
                      corpus_root: Path, synth_seconds: float, tiny: bool, t_start: float
                      ) -> dict[str, Any]:
    """Train, test and analyse into ``out`` (locked), then write the demo's pages."""
    from .demo_page import write_demo_pages
    from .run import train_run

    summary = train_run(cfg, out, resume=resume, verbose=not quiet)
    release_freed_memory()  # the training's features and activations, before the analysis
    run_dir = Path(summary["run_dir"])
    analysis = run_analysis(run_dir, run_dir / "checkpoints" / "best.pt", progress=not quiet)
    summary["chance"] = chance_level(cfg, corpus_root)
    total = time.perf_counter() - t_start
    summary["timings"]["synth_seconds"] = synth_seconds
    summary["timings"]["analysis_seconds"] = analysis["seconds"]
    summary["timings"]["demo_seconds"] = total
    summary["analysis"] = analysis
    summary["task"] = cfg.task
    summary["tiny"] = tiny
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    pages = write_demo_pages(run_dir, cfg.to_dict(), summary, corpus_root)
    _print_result(summary, total)
    print(f"run folder: {run_dir}")
    print(f"open:       {pages['html']}")
    print(f"summary:    {pages['markdown']}")
    return summary


def _print_result(summary: dict[str, Any], total: float) -> None:
    test, chance = summary.get("test", {}), summary["chance"]
    task = task_of(summary["task"])
    print(_demo_text(task).result.format(
        value=100 * test.get(task.metric_name, float("nan")),
        utterances=test.get("utterances", 0), chance=100 * chance["value"],
        minutes=total / 60))
