"""Model-free baseline for keyword spotting: nearest-centroid on mean log-mel features.

Each clip becomes one vector: its log-mel filterbank (``sparse.features``) averaged over time.
Vectors are z-scored with the training statistics, one centroid per class is the training mean,
and a clip is given the class of the nearest centroid (Euclidean). Any trained model should
beat this number by a wide margin.

    python benchmarks/keyword_baseline.py                 # default synthesised corpus
    python benchmarks/keyword_baseline.py --tiny          # the test-sized corpus
    python benchmarks/keyword_baseline.py --root /data/speech_commands_v2   # real data
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from sparse.data.batching import collate
from sparse.data.speech_commands import SpeechCommandsDataset
from sparse.data.synth import SynthConfig, synthesize_corpus
from sparse.features import log_mel_filterbank


def mean_logmel(ds: SpeechCommandsDataset, n_mels: int, batch: int = 256) -> tuple[np.ndarray,
                                                                                    np.ndarray]:
    """``(features (N, n_mels), labels (N,))`` for every clip of ``ds``."""
    feats, labels = [], []
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, collate_fn=collate, num_workers=0)
    for b in loader:
        x, n = log_mel_filterbank(
            b["waveforms"], b["lengths"], sample_rate=ds.sample_rate, n_mels=n_mels,
            win_ms=25.0, hop_ms=10.0,
        )
        mask = (torch.arange(x.shape[1])[None, :] < n[:, None]).unsqueeze(-1)
        feats.append(((x * mask).sum(1) / n[:, None]).double().numpy())
        labels.append(b["labels"].numpy())
    return np.concatenate(feats), np.concatenate(labels)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, help="a Speech Commands folder (default: synthesised)")
    p.add_argument("--tiny", action="store_true", help="use the tiny synthesised corpus")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthesised corpus")
    p.add_argument("--n-mels", type=int, default=40)
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    root = args.root
    if root is None:
        cfg = SynthConfig.tiny(args.seed) if args.tiny else SynthConfig.default(args.seed)
        root = synthesize_corpus(cfg).speech_commands_root
    t0 = time.perf_counter()
    data = {s: SpeechCommandsDataset(root, s) for s in ("train", "valid", "test")}
    classes = data["train"].classes
    xy = {s: mean_logmel(d, args.n_mels) for s, d in data.items()}
    result = {"root": str(root), "classes": len(classes), "chance": 1.0 / len(classes),
              "n_mels": args.n_mels}
    variants = {
        "mean_logmel": lambda x: x,
        # the same, less each clip's average level (removes loudness and gain)
        "mean_logmel_level_normalised": lambda x: x - x.mean(1, keepdims=True),
    }
    for name, transform in variants.items():
        x_tr, y_tr = transform(xy["train"][0]), xy["train"][1]
        mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-8
        centroids = np.stack(
            [((x_tr[y_tr == c] - mu) / sd).mean(0) for c in range(len(classes))]
        )
        for split, (x, y) in xy.items():
            z = (transform(x) - mu) / sd
            d = ((z[:, None, :] - centroids[None]) ** 2).sum(-1)
            result[f"{name}/{split}_accuracy"] = float((d.argmin(1) == y).mean())
            result[f"{split}_clips"] = int(len(y))
        print(
            f"nearest-centroid, {name}, {args.n_mels} bands, {len(classes)} classes "
            f"(chance {100 * result['chance']:.1f}%): "
            + ", ".join(
                f"{s} {100 * result[f'{name}/{s}_accuracy']:.1f}% of {result[f'{s}_clips']}"
                for s in xy
            )
        )
    result["seconds"] = round(time.perf_counter() - t0, 1)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
