"""``sparse export CHECKPOINT --format nir OUT.nir``: a trained model's spiking core to NIR.

The checkpoint is read with the trainer's safe loader and its model rebuilt from the config
stored inside it (:func:`sparse.restore.restore_run`); :func:`~sparse.export.nir.
write_nir` writes the graph. Every expected failure (the ``nir`` package missing, a missing or
corrupt checkpoint, a model with adaptive neurons or layer normalisation, an output path that
cannot be written) is one paragraph on stderr with exit status 2, and nothing is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cli import add_checkpoint_command
from .checkpoint import FORMATS, export_checkpoint

__all__ = ["export_checkpoint", "register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``export`` to ``sparse``'s parser."""
    p = add_checkpoint_command(
        subparsers, "export",
        help="export a trained model's spiking core to NIR (neuromorphic hardware "
        "and simulators)",
        description="Write the spiking core of a checkpoint written by 'sparse train' (the "
        "auditory-nerve population, the cortex and, for keyword spotting, the leaky readout) "
        "as a NIR graph (Neuromorphic Intermediate Representation, read by neuromorphic "
        "simulators and hardware tool chains). LIF populations, their recurrence and input "
        "maps are written exactly, batch normalisation folded into the maps; a model with "
        "adaptive (AdLIF) neurons or layer normalisation is refused, each such part named. "
        "The convolutional front end and the ASR head stay outside the graph (no NIR node "
        "expresses them); the command lists what was written. Needs the 'nir' package "
        "(pip install 'nir>=1.0.6,<1.1', or the 'nir' extra: pip install '.[nir]' in a "
        "checkout of sparse). The mapping is in docs/export.md.",
    )
    p.add_argument("out", type=Path, help="the file to write, e.g. model.nir (replaced if present)")
    p.add_argument("--format", choices=FORMATS, default="nir",
                   help="the format to write (default and only one: nir)")
    p.set_defaults(func=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from ..train.checkpoints import CheckpointError
    from .core import ExportError

    try:
        path, core = export_checkpoint(args.checkpoint, args.out, args.format)
    except (ExportError, CheckpointError) as exc:
        print(f"sparse export: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}: NIR graph of the spiking core, dt = {core.dt_ms:g} ms")
    print(f"  input: {core.input_size} values per step, {core.input}")
    for line in core.describe():
        print(f"  {line}")
    for part in core.outside:
        print(f"  outside the graph: {part}")
    return 0
