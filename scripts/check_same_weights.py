"""Train a tiny kws and a tiny asr run (fixed seed) and save their final checkpoint tensors,
or compare them bitwise against a saved reference.

Usage: check_same_weights.py OUT_DIR [REFERENCE_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from sparse.data.synth import SynthConfig, synthesize_corpus
from sparse.train.checkpoints import load_checkpoint
from sparse.train.config import load_config
from sparse.train.run import train_run

TINY = ["features.n_mels=20", "model.auditory_channels=[4]", "model.auditory_kernel_size=[3,5]",
        "model.auditory_frequency_stride=[2]", "model.cortex_layer_sizes=[32]",
        "model.cortex_sfa_portions=[0.5]", "model.cortex_rnn_portions=[0.5]",
        "model.cortex_feedforward_portions=[1.0]", "train.num_threads=1",
        "train.progress=false", "data.synth_preset=tiny", "data.feature_cache=false",
        "train.epochs=2"]
EXTRA = {"asr": ["features.hop_ms=10.0", "model.phoneme_num_layers=1",
                 "model.phoneme_features=32", "model.phoneme_ctc_rate_hz=50",
                 "optim.lr=0.003", "train.batch_size=4"],
         "kws": ["features.hop_ms=20.0", "train.batch_size=16"]}


def main() -> int:
    out = Path(sys.argv[1])
    ref = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    corpus = out / "corpus"
    synthesize_corpus(SynthConfig.tiny(0), root=corpus, workers=1)
    same = True
    for task in ("kws", "asr"):
        cfg = load_config(None, [f"task={task}", f"data.synth_dir={corpus}", *TINY, *EXTRA[task]])
        train_run(cfg, out / task, verbose=False)
        state = load_checkpoint(out / task / "checkpoints" / "last.pt")
        tensors = {f"model.{k}": v for k, v in state["model"].items()}
        torch.save(tensors, out / f"{task}-weights.pt")
        if ref is not None:
            other = torch.load(ref / f"{task}-weights.pt")
            bad = [k for k in sorted(set(tensors) | set(other))
                   if k not in tensors or k not in other or not torch.equal(tensors[k], other[k])]
            print(f"{task}: {len(tensors)} tensors, {'bitwise equal' if not bad else bad}")
            same = same and not bad
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
