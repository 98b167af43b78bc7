"""The ``sparse`` command.

Each sub-command lives in the module that owns its job and registers itself through a
``register(subparsers)`` function; this file only knows their names, so that ``sparse --help``
does not import torch-heavy modules it does not need.

An operating-system error that reaches this level (a full disk, a read-only or forbidden
folder) is reported as one paragraph naming the path, with exit status 2, for every command.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

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


def add_checkpoint_command(subparsers: argparse._SubParsersAction, name: str, *, help: str,
                           description: str) -> argparse.ArgumentParser:
    """Add the sub-command ``name`` whose first argument is a trained checkpoint (``sparse
    analyze``, ``export``, ``predict``): one wording of that argument for all of them.
    Returns the sub-command's parser for its own arguments."""
    p = subparsers.add_parser(name, help=help, description=description)
    p.add_argument("checkpoint", type=Path,
                   help="a .pt checkpoint or a run folder (its checkpoints/best.pt)")
    return p


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


#: what to do about the operating-system errors a command can meet while it reads and
#: writes its files (errno name -> advice)
_OS_ADVICE: dict[str, str] = {
    "ENOSPC": "the disk is full: free some space, or write to a folder on another disk",
    "EDQUOT": "your disk quota is used up: free some space, or write to another disk",
    "EFBIG": "a file would grow past the largest size allowed here (the file system or "
             "'ulimit -f')",
    "EROFS": "the file system is read-only: write to a folder on a writable disk",
    "EACCES": "permission denied: check the permissions of the path, or use another folder",
    "EPERM": "the operation is not permitted there: check the permissions of the path, or "
             "use another folder",
    "ENAMETOOLONG": "a file name is too long for this file system: use a shorter path",
    "EMFILE": "too many open files: raise 'ulimit -n'",
    "EIO": "the disk reported an input/output error: check the disk",
}


def describe_os_error(exc: OSError, command: str) -> str:
    """One paragraph for an operating-system error met by ``sparse COMMAND``: the path (or the
    folder being written when the system did not say which file), what happened and what to
    do."""
    import errno

    name = errno.errorcode.get(exc.errno or 0, "")
    what = exc.strerror or str(exc)
    if exc.filename is not None:
        path = str(exc.filename)
        if exc.filename2 is not None:
            path += f" -> {exc.filename2}"
        where = f"{path}: "
    elif getattr(exc, "sparse_folder", None) is not None:
        where = f"while writing into {exc.sparse_folder}: "
    else:
        where = ""
    advice = _OS_ADVICE.get(name, "")
    text = f"{where}{what}{f' ({name})' if name else ''}"
    if advice:
        text += f"; {advice}"
    text += ". Then run the command again"
    if command in ("train", "demo"):
        text += " (a run that has written a checkpoint continues with --resume)"
    return text + "."


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # every command's --device (train, evaluate, analyze) is checked here, before any work
    device = getattr(args, "device", None)
    if device is not None:
        from .train.validate import device_problem

        problem = device_problem(device, need_available=True)
        if problem is not None:
            print(f"sparse {args.command}: error: --device {device!r}: {problem}",
                  file=sys.stderr)
            return 2
    try:
        return int(args.func(args) or 0)
    except OSError as exc:
        # the disk, the permissions or the file system refused a read or a write: not a bug
        # of the command, so one paragraph that names the path instead of a traceback
        if exc.errno is None:
            raise
        print(f"sparse {args.command}: error: {describe_os_error(exc, args.command)}",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
