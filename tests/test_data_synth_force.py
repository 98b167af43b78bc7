"""``sparse synth --force`` deletes only what a build wrote, run as the real command."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import sparse
from sparse.data.synth import SynthConfig

#: ``os.replace`` onto the corpus folder waits (up to 3 s) until every process of a test has
#: reached it, so that two builds put their corpus in place at the same moment.
_AT_ONCE = """
import os, sys, time
from pathlib import Path
real, out, gate = os.replace, Path(sys.argv[1]).resolve(), Path(sys.argv[2])

def replace(src, dst, *a, **k):
    if Path(dst).resolve() == out:
        (gate / str(os.getpid())).touch()
        t = time.monotonic()
        while len(list(gate.iterdir())) < 2 and time.monotonic() - t < 3.0:
            time.sleep(0.01)
    return real(src, dst, *a, **k)

os.replace = replace
from sparse.cli import main
sys.exit(main(["synth", "--tiny", "--quiet", "--workers", "1", "--force", "--out", sys.argv[1]]))
"""


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def sub_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` that makes the subprocess import this very ``sparse``."""
    tree = str(Path(sparse.__file__).resolve().parents[1])
    e = dict(env)
    e["PYTHONPATH"] = os.pathsep.join(p for p in (tree, env.get("PYTHONPATH")) if p)
    return e


def synth(env: dict[str, str], out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sparse.cli", "synth", "--tiny", "--quiet", "--workers", "1",
         "--out", str(out), *extra],
        env=env, capture_output=True, text=True, timeout=300,
    )


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` (relative path -> SHA-1), folders as ``name/ -> ""``."""
    return {
        p.relative_to(root).as_posix() + ("/" if p.is_dir() else ""):
            "" if p.is_dir() else hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
    }


def assert_clear_refusal(r: subprocess.CompletedProcess, folder: Path) -> None:
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.startswith("sparse synth: ") and str(folder) in r.stderr
    assert r.stderr.count("\n") == 1  # one paragraph
    for word in ("--force", "force=", "delete it", "issue", "seed", "floor"):
        assert word not in r.stderr.lower(), word


def assert_listed_exactly(root: Path) -> None:
    """``contents.tsv`` lists every file (with its size) and folder under ``root``."""
    info = json.loads((root / "corpus.json").read_text())
    assert info["contents"] == "contents.tsv"
    rows = (root / "contents.tsv").read_text().splitlines()
    assert rows[0] == "path\tbytes"
    listed = dict(row.split("\t") for row in rows[1:])
    on_disk = {
        p.relative_to(root).as_posix() + ("/" if p.is_dir() else ""):
            "" if p.is_dir() else str(p.stat().st_size)
        for p in root.rglob("*")
        if p.name not in ("corpus.json", "contents.tsv") or p.parent != root
    }
    assert listed == on_disk


def no_leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def test_force_never_touches_a_folder_without_a_corpus(tmp_path, sub_env):
    user = tmp_path / "my folder"
    (user / "nested" / "deeper").mkdir(parents=True)
    (user / "notes.md").write_text("keep me")
    (user / "nested" / "deeper" / "data.csv").write_text("1,2,3")
    before = tree(user)
    for extra in (["--force"], []):
        r = synth(sub_env, user, *extra)
        assert_clear_refusal(r, user)
        assert "choose a new or empty folder" in r.stderr.lower()
        assert tree(user) == before
    assert no_leftovers(tmp_path) == []


def test_force_refuses_a_corpus_holding_the_users_files_and_names_them(tmp_path, sub_env):
    root = tmp_path / "corpus"
    assert synth(sub_env, root).returncode == 0
    (root / "notes.md").write_text("my notes")
    (root / "timit" / "train" / "mine.txt").write_text("mine")
    (root / "speech_commands" / "my_words").mkdir()
    (root / "speech_commands" / "my_words" / "clip.wav").write_bytes(b"RIFF")
    before = tree(root)
    r = synth(sub_env, root, "--force")
    assert_clear_refusal(r, root)
    for name in ("notes.md", "timit/train/mine.txt", "speech_commands/my_words/"):
        assert name in r.stderr
    assert "3 entries" in r.stderr
    assert tree(root) == before  # the user's files and the corpus alike
    assert no_leftovers(tmp_path) == []


def test_force_rebuilds_a_genuine_corpus(tmp_path, sub_env):
    root = tmp_path / "corpus"
    assert synth(sub_env, root).returncode == 0
    assert_listed_exactly(root)
    before = {k: v for k, v in tree(root).items() if k != "corpus.json"}
    damaged = sorted(root.glob("timit/train/*/*/*.wav"))[0]
    damaged.unlink()
    r = synth(sub_env, root, "--force")
    assert r.returncode == 0, r.stderr
    assert f"corpus: {root}" in r.stdout
    assert damaged.is_file()  # rebuilt, byte for byte the same corpus
    assert {k: v for k, v in tree(root).items() if k != "corpus.json"} == before
    assert_listed_exactly(root)
    assert no_leftovers(tmp_path) == []


def test_force_on_a_corpus_written_before_contents_were_listed(tmp_path, sub_env):
    root = tmp_path / "corpus"
    assert synth(sub_env, root).returncode == 0
    info = json.loads((root / "corpus.json").read_text())
    info.pop("contents", None)
    (root / "corpus.json").write_text(json.dumps(info))
    (root / "contents.tsv").unlink(missing_ok=True)
    (root / "timit" / "notes.md").write_text("mine")
    r = synth(sub_env, root, "--force")
    assert_clear_refusal(r, root)
    assert "timit/notes.md" in r.stderr and (root / "timit" / "notes.md").is_file()
    (root / "timit" / "notes.md").unlink()
    r = synth(sub_env, root, "--force")
    assert r.returncode == 0, r.stderr
    assert_listed_exactly(root)
    assert no_leftovers(tmp_path) == []


def test_two_builds_forced_into_one_folder_at_once(tmp_path, sub_env):
    root = tmp_path / "corpus"
    assert synth(sub_env, root).returncode == 0
    gate = tmp_path / "gate"
    gate.mkdir()
    procs = [
        subprocess.Popen([sys.executable, "-c", _AT_ONCE, str(root), str(gate)], env=sub_env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    for rc, _, err in results:
        assert "Traceback" not in err, err
        assert rc == 0 or (rc == 2 and err.startswith("sparse synth: ")), err
    assert any(rc == 0 for rc, _, _ in results)
    assert_listed_exactly(root)
    assert no_leftovers(tmp_path) == []


def test_the_layout_of_a_config_is_what_a_build_lists(tmp_path, sub_env):
    from sparse.data.synth import _layout_contents, _read_contents, _read_info

    root = tmp_path / "corpus"
    assert synth(sub_env, root).returncode == 0
    info = _read_info(root)
    assert info is not None and info["config"] == SynthConfig.tiny().to_dict()
    recorded = _read_contents(root, info)
    derived = _layout_contents(info)
    assert not isinstance(recorded, str) and not isinstance(derived, str)
    assert recorded.dirs == derived.dirs
    assert set(recorded.files) == set(derived.files) | {"contents.tsv"}
