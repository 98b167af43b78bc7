"""sparse.atomic: a write either replaces the file whole or leaves the old one, and never
leaves its temporary file behind unless the process is killed."""

from __future__ import annotations

import os
import stat

import pytest
import torch

from sparse import atomic
from sparse.train.checkpoints import _TEMPORARY, save_checkpoint


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_text_bytes_and_torch_writes_land_whole(tmp_path):
    assert atomic.write_text(tmp_path / "a" / "b.txt", "é\n") == tmp_path / "a" / "b.txt"
    assert (tmp_path / "a" / "b.txt").read_bytes() == "é\n".encode()
    atomic.write_bytes(tmp_path / "c.bin", b"\x00\x01")
    assert (tmp_path / "c.bin").read_bytes() == b"\x00\x01"
    atomic.save_torch({"w": torch.arange(3)}, tmp_path / "d.pt")
    assert torch.equal(torch.load(tmp_path / "d.pt")["w"], torch.arange(3))
    assert _leftovers(tmp_path) == [] and _leftovers(tmp_path / "a") == []


def test_a_failure_mid_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "report.txt"
    target.write_text("old\n")

    def half_then_fail(f):
        f.write(b"new, half written")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic.write_with(target, half_then_fail)
    assert target.read_text() == "old\n"
    assert _leftovers(tmp_path) == []


def test_a_failing_torch_save_leaves_the_old_checkpoint(tmp_path):
    target = tmp_path / "last.pt"
    save_checkpoint({"step": 1}, target)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle this")

    with pytest.raises(RuntimeError, match="cannot pickle"):
        save_checkpoint({"step": 2, "bad": Unpicklable()}, target)
    assert torch.load(target)["step"] == 1
    assert _leftovers(tmp_path) == []


def test_a_failure_of_a_path_writer_or_the_rename_removes_the_temporary(tmp_path, monkeypatch):
    target = tmp_path / "graph.nir"
    target.write_bytes(b"old")
    with pytest.raises(ValueError, match="bad graph"), atomic.replacing(target) as tmp:
        tmp.write_bytes(b"partial")  # written by name, as h5py and nir.write do
        raise ValueError("bad graph")
    assert target.read_bytes() == b"old" and _leftovers(tmp_path) == []

    def no_rename(src, dst):
        raise PermissionError("read-only folder")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(PermissionError):
        atomic.write_bytes(target, b"new")
    assert target.read_bytes() == b"old" and _leftovers(tmp_path) == []


def test_the_temporary_name_is_the_one_the_checkpoint_cleanup_recognises(tmp_path):
    name = atomic.temporary_path(tmp_path / "last.pt").name
    match = _TEMPORARY.fullmatch(name)
    assert match is not None
    assert match.group("target") == "last.pt" and int(match.group("pid")) == os.getpid()
    assert atomic.temporary_path(tmp_path / "a") != atomic.temporary_path(tmp_path / "a")


def test_written_files_have_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        path = atomic.write_text(tmp_path / "x.txt", "x")
        with atomic.replacing(tmp_path / "y.h5") as tmp:
            tmp.write_bytes(b"y")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "y.h5").stat().st_mode) == 0o644
