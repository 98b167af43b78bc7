"""Shared measurement plumbing for the benchmarks: fresh processes, peak memory, tables.

Each measured variant runs in its own Python process so that memory figures do not mix, with
glibc told to hand large blocks back to the system at once (``MALLOC_MMAP_THRESHOLD_``); the
peak resident set then follows the tensors that are alive, not the allocator's cache.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys


def rss_mb() -> float:
    """Current resident set of this process in MiB."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """Peak resident set of this process so far in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(script: str, args: list[str], threads: int) -> dict | None:
    """Run ``script --child ...`` in a fresh process; return the JSON it printed last."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", OMP_NUM_THREADS=str(threads))
    proc = subprocess.run([sys.executable, script, *args], env=env, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        reason = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"
        print(f"{' '.join(args)}: skipped ({reason})", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def write_json(path: str, payload: dict) -> None:
    """Write ``payload`` atomically."""
    with open(path + ".tmp", "w") as fh:
        json.dump(payload, fh, indent=2)
    os.replace(path + ".tmp", path)
