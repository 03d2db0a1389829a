"""The one way the bench scripts time whole processes: cases run in turns, medians printed.

    python3 bench/cases.py RUNS WORK LABEL CHECK CMD... [--next LABEL CHECK CMD...]...

CHECK is `credentials` (stdout must be credential_process JSON with a non-empty AccessKeyId)
or `any`. Each case runs RUNS times, the cases taking turns so that other load on the machine
falls on all of them alike. A run is started with posix_spawn, its stdout and stderr go to
files in WORK, and it is reaped by wait4: the CPU time (user + sys, all threads) is the
command's alone, the wall time runs from spawn to reap. Then each case runs 5 times more under
GNU time for its peak RSS (time reports the command's own; a child forked from Python would
count Python's memory). Prints one line per case: LABEL CPU_MS WALL_MS RSS_KIB (medians).
A run that fails, or does not print credentials when it should, stops the benchmark.
"""

import json
import os
import statistics
import subprocess
import sys
import time

RSS_RUNS = 5


def cases(args):
    out, case = [], []
    for arg in args + ["--next"]:
        if arg == "--next":
            out.append((case[0], case[1], case[2:]))
            case = []
        else:
            case.append(arg)
    return out


def once(work, label, check, cmd):
    out_path, err_path = work + "/out", work + "/err"
    out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    start = time.perf_counter()
    pid = os.posix_spawnp(
        cmd[0], cmd, os.environ,
        file_actions=[(os.POSIX_SPAWN_DUP2, out, 1), (os.POSIX_SPAWN_DUP2, err, 2)])
    _, status, usage = os.wait4(pid, 0)
    wall = (time.perf_counter() - start) * 1000
    os.close(out)
    os.close(err)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{label} failed: {open(err_path).read()}")
    if check == "credentials":
        try:
            key = json.load(open(out_path)).get("AccessKeyId")
        except (ValueError, AttributeError):
            key = None
        if not key:
            sys.exit(f"{label} printed no credentials: "
                     f"{open(out_path).read(300)!r} {open(err_path).read()}")
    return (usage.ru_utime + usage.ru_stime) * 1000, wall


def peak_rss(work, cmd):
    subprocess.run(["/usr/bin/time", "-f", "%M", "-o", work + "/rss", *cmd],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return int(open(work + "/rss").read().split()[-1])


def main():
    runs, work, todo = int(sys.argv[1]), sys.argv[2], cases(sys.argv[3:])
    figures = {label: ([], []) for label, _, _ in todo}
    for _ in range(runs):
        for label, check, cmd in todo:
            cpu, wall = once(work, label, check, cmd)
            figures[label][0].append(cpu)
            figures[label][1].append(wall)
    for label, _, cmd in todo:
        rss = statistics.median(peak_rss(work, cmd) for _ in range(RSS_RUNS))
        cpu, wall = figures[label]
        print(f"{label} {statistics.median(cpu):.2f} {statistics.median(wall):.2f} {rss:.0f}")


main()
