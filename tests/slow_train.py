"""``python tests/slow_train.py DELAY_MS ARGS...``: the ``sparse`` command (``ARGS``) with a
pause of ``DELAY_MS`` after every training step, so that a test can act on a training process
while it trains (take its lock, kill it mid-epoch). The pause lives here, in the tests: the
trainer itself has no such hook."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def slowed(command: list[str], delay_ms: float) -> list[str]:
    """``command`` (``[python, "-m", "sparse.cli", ARGS...]``) run through this script."""
    assert command[1:3] == ["-m", "sparse.cli"], command
    return [command[0], str(Path(__file__).resolve()), str(delay_ms), *command[3:]]


def _slow_down(delay_s: float) -> None:
    from sparse.train.trainer import Trainer

    step = Trainer._train_step

    def slow_step(self, batch):  # noqa: ANN001, ANN202 (the trainer's own signature)
        stats = step(self, batch)
        time.sleep(delay_s)
        return stats

    Trainer._train_step = slow_step


if __name__ == "__main__":
    # import path as ``python -m sparse.cli`` has it: the current folder first, not tests/
    sys.path[0] = os.getcwd()
    _slow_down(float(sys.argv[1]) / 1000.0)
    from sparse.cli import main

    sys.exit(main(sys.argv[2:]))
