"""Shared measurement plumbing for the benchmarks: fresh processes, peak memory, tables.

Each measured variant runs in its own Python processes so that figures do not mix: one for
time, with the allocator as users get it, and one for peak memory, with glibc told to hand
large blocks back to the system at once (``MALLOC_MMAP_THRESHOLD_``), so that the peak
resident set follows the tensors that are alive, not the allocator's cache.
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


def _run(script: str, args: list[str], env: dict[str, str]) -> dict | None:
    proc = subprocess.run([sys.executable, script, *args], env=env, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        reason = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"
        print(f"{' '.join(args)}: skipped ({reason})", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_child(script: str, args: list[str], threads: int,
              measure_memory: bool = True) -> dict | None:
    """Run ``script --child ...`` in fresh processes; return the JSON it printed last.

    Time and memory come from two processes: the timing one (``--measure time``) runs with
    glibc's allocator as a user gets it; the memory one (``--measure memory``, one step) tells
    glibc to hand every large block back at once, so that its peak follows the live tensors,
    a setting that also makes every large allocation fault its pages in again, which would
    inflate the times.
    """
    base = dict(os.environ, OMP_NUM_THREADS=str(threads))
    result = _run(script, [*args, "--measure", "time"], base)
    if result is None or not measure_memory:
        return result
    memory = _run(script, [*args, "--measure", "memory"],
                  dict(base, MALLOC_MMAP_THRESHOLD_="65536"))
    result["peak_mb"] = memory["peak_mb"] if memory else float("nan")
    return result


def write_json(path: str, payload: dict) -> None:
    """Write ``payload`` atomically."""
    with open(path + ".tmp", "w") as fh:
        json.dump(payload, fh, indent=2)
    os.replace(path + ".tmp", path)
