# Sourced by the bench scripts that time whole processes: measure() runs cases in turns and
# prints their medians. Expects $runs and $work (exported) to be set.
# Cases separated by `--next`, each: label, what its stdout must be (`any`, or `credentials`:
# credential_process JSON with a non-empty AccessKeyId), then the command. Runs each case RUNS
# times, taking turns; prints "label cpu_ms wall_ms rss_kib" (medians) per case.
measure() {
  python3 - "$runs" "$@" <<'PY'
import json, os, statistics, subprocess, sys, time
runs, args = int(sys.argv[1]), sys.argv[2:]
cases, case = [], []
for arg in args + ["--next"]:
    if arg == "--next":
        cases.append((case[0], case[1], case[2:]))
        case = []
    else:
        case.append(arg)
rss_file, out_file, err_file = (os.environ["work"] + name for name in ("/rss", "/out", "/err"))
figures = {label: ([], [], []) for label, _, _ in cases}
for _ in range(runs):
    for label, check, cmd in cases:
        cpu, wall, rss = figures[label]
        start = time.perf_counter()
        # GNU time reports the peak RSS of the command alone (a child forked from Python would
        # count Python's memory); wait4 gives CPU to the microsecond for time + command (all
        # threads), where time's own share is the same small constant in every case.
        # Output to files, not pipes: the process is reaped by wait4 alone, for its rusage.
        with open(out_file, "wb") as out, open(err_file, "wb") as err:
            proc = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss_file, *cmd],
                                    stdout=out, stderr=err)
            _, status, usage = os.wait4(proc.pid, 0)
        wall.append((time.perf_counter() - start) * 1000)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"{label} failed: {open(err_file).read()}")
        if check == "credentials":
            try:
                key = json.load(open(out_file)).get("AccessKeyId")
            except (ValueError, AttributeError):
                key = None
            if not key:
                sys.exit(f"{label} printed no credentials: {open(out_file).read(300)!r} {open(err_file).read()}")
        cpu.append(usage.ru_utime + usage.ru_stime)
        rss.append(int(open(rss_file).read().split()[-1]))
for label, (cpu, wall, rss) in figures.items():
    print(f"{label} {statistics.median(cpu) * 1000:.2f} {statistics.median(wall):.2f} {statistics.median(rss):.0f}")
PY
}
