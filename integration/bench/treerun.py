#!/usr/bin/env python3
"""Run a command and measure its whole process tree.

    treerun.py OUT.json CMD [ARG...]

Writes to OUT.json: wall seconds, CPU seconds (user + system of the command
and every descendant it waited for, from wait4's rusage), and the peak
memory of the tree: the sum over the command and all its descendants, at
one instant, of their resident set (tree_rss_kb) and of their proportional
set (tree_pss_kb, which counts a page shared by N processes as 1/N in each,
so forked workers are not counted N times), and the anonymous part of the
proportional set (tree_anon_kb: heap, stacks and buffers, what the
processes hold themselves; the rest is the mapped pages of their binaries
and libraries, which the kernel can drop and read back). The tree is polled every
POLL_SECONDS through /proc/PID/task/TID/children, without cgroups; a peak
shorter than that can be missed, so the largest single process's peak
(maxrss_kb, exact, from rusage) is given too. /usr/bin/time's %M is only
that last figure.

The command's stdin, stdout and stderr are this process's; its exit code is
this process's too.
"""
import json
import os
import resource
import subprocess
import sys
import time

POLL_SECONDS = 0.05
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def tree(root):
    """The pids of root and all its descendants now."""
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass  # gone meanwhile
    return pids


def memory_kb(pid):
    """(rss, pss, anonymous pss) of pid in KiB, 0 for a process gone or a
    zombie."""
    rss = pss = anon = 0
    try:
        with open(f"/proc/{pid}/statm") as f:
            rss = int(f.read().split()[1]) * PAGE_KB
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Pss_Anon:"):
                    anon = int(line.split()[1])
    except (OSError, IndexError, ValueError):
        pass
    return rss, pss, anon


def main():
    out, cmd = sys.argv[1], sys.argv[2:]
    start = time.monotonic()
    proc = subprocess.Popen(cmd)
    peak_rss = peak_pss = peak_anon = 0
    status = rusage = None
    while True:
        pid, st, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            status, rusage = st, ru
            break
        rss = pss = anon = 0
        for p in tree(proc.pid):
            r, s, a = memory_kb(p)
            rss, pss, anon = rss + r, pss + s, anon + a
        peak_rss, peak_pss, peak_anon = max(peak_rss, rss), max(peak_pss, pss), max(peak_anon, anon)
        time.sleep(POLL_SECONDS)
    wall = time.monotonic() - start
    code = os.waitstatus_to_exitcode(status)
    with open(out, "w") as f:
        json.dump({
            "wall_seconds": round(wall, 3),
            "cpu_seconds": round(rusage.ru_utime + rusage.ru_stime, 3),
            "tree_rss_kb": max(peak_rss, rusage.ru_maxrss),
            "tree_pss_kb": peak_pss,
            "tree_anon_kb": peak_anon,
            "maxrss_kb": rusage.ru_maxrss,
            "exit_code": code,
        }, f)
    # Popen's own bookkeeping: the child is reaped already.
    proc.returncode = code
    sys.exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
