"""The ``sparse`` command.

Each sub-command lives in the module that owns its job and registers itself through a
``register(subparsers)`` function; this file only knows their names, so that ``sparse --help``
does not import torch-heavy modules it does not need.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# sub-command name -> module that provides ``register(subparsers)``
_COMMAND_MODULES: dict[str, str] = {
    "synth": "sparse.data.cli",
    "train": "sparse.train.cli",
    "evaluate": "sparse.train.cli",
    "demo": "sparse.train.cli",
    "analyze": "sparse.analysis.cli",
    "export": "sparse.export.cli",
    "predict": "sparse.predict_cli",
}


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="sparse",
        description="Spiking neural network speech encoders: synthesise, train, evaluate, "
        "analyse, export, predict.",
    )
    parser.add_argument("--version", action="version", version=f"sparse {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module_name in dict.fromkeys(_COMMAND_MODULES.values()):
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
