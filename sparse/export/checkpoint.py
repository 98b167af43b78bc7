"""A checkpoint written by ``sparse train`` exported to a file another tool reads (the library
side of ``sparse export``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .core import SpikingCore

__all__ = ["FORMATS", "export_checkpoint"]

#: the formats :func:`export_checkpoint` writes
FORMATS = ("nir",)


def export_checkpoint(checkpoint: str | Path, out: str | Path, fmt: str = "nir"
                      ) -> tuple[Path, SpikingCore]:
    """Export the model of ``checkpoint`` to ``out``; returns ``(path, core)``.

    Raises:
        ExportError: ``nir`` is missing, the model has parts with no exact NIR form, or
            ``out`` cannot be written; CheckpointError: the checkpoint cannot be used.
    """
    from .core import ExportError
    from .nir import require_nir, write_nir

    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; the formats are {', '.join(FORMATS)}")
    require_nir()  # before the (slower) checkpoint, so a missing package is said at once
    out = Path(out)
    if out.is_dir():
        raise ExportError(f"the output {out} is a folder; give the file to write, e.g. "
                          f"{out / 'model.nir'}")
    from ..restore import restore_run
    from ..train.checkpoints import checkpoint_file

    source = checkpoint_file(checkpoint)
    if source.exists() and out.exists() and out.resolve() == source.resolve():
        raise ExportError(f"the output {out} is the checkpoint itself; give another file")
    run = restore_run(checkpoint)
    try:
        return write_nir(run.model, out, label=f"the model of {run.checkpoint}")
    except OSError as exc:
        raise ExportError(f"cannot write {out}: {exc.strerror or exc} ({type(exc).__name__}); "
                          "nothing was written") from None
