"""The older home of :mod:`sparse.restore` (rebuild a trained model from a checkpoint): the
same functions, re-exported, so that existing imports keep working."""

from ..restore import (
    RestoredRun,
    make_featurizer,
    make_filterbank,
    open_dataset,
    restore_run,
    run_dir_of,
)

__all__ = ["RestoredRun", "make_filterbank", "make_featurizer", "open_dataset", "restore_run",
           "run_dir_of"]
