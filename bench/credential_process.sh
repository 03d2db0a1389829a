#!/usr/bin/env bash
# Benchmark: whole-process cost of `credential-process` against the local emulator, beside a
# `curl` POST to the same endpoint as the floor (process start + TLS handshake + one request).
#
#   bench/credential_process.sh [RUNS]     (default 25 runs per case)
#
# Prints, per case, the median CPU time (user+sys), wall time and peak RSS, and the ratio of
# each to the curl floor measured in the same run. Not a test: the figures go in the README.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-25}

for tool in curl /usr/bin/time; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl time >/dev/null
  fi
done
cargo build --release --quiet
bin=$(pwd)/target/release/rolesanywhere-helper
work=$(mktemp -d)
export work
trap 'kill $emu 2>/dev/null || true; rm -rf "$work"' EXIT

ta=arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/bench
pr=arn:aws:rolesanywhere:us-east-1:111122223333:profile/bench
role=arn:aws:iam::111122223333:role/bench

measure() { # label, then the command; prints "label cpu_ms wall_ms rss_kib" (medians)
  python3 - "$runs" "$@" <<'PY'
import os, statistics, subprocess, sys, time
runs, label, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
rss_file = os.environ["work"] + "/rss"
cpu, wall, rss = [], [], []
for _ in range(runs):
    start = time.perf_counter()
    # GNU time reports the peak RSS of the command alone (a child forked from Python would
    # count Python's memory); wait4 gives CPU to the microsecond for time + command, where
    # time's own share is the same small constant in every case.
    proc = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss_file, *cmd],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall.append((time.perf_counter() - start) * 1000)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{label} failed: {proc.stderr.read().decode()}")
    cpu.append((usage.ru_utime + usage.ru_stime) * 1000)
    rss.append(int(open(rss_file).read().split()[-1]))
print(f"{label} {statistics.median(cpu):.2f} {statistics.median(wall):.2f} {statistics.median(rss):.0f}")
PY
}

results=()
for kind in rsa2048 p256; do
  dir="$work/$kind"
  "$bin" pki init "$dir" --key-type "$kind" >/dev/null
  "$bin" emulate --trust-anchor "$dir/root-ca.pem" --port 0 >"$work/emu.out" 2>"$work/emu.err" &
  emu=$!
  for _ in $(seq 100); do grep -q '^listening on ' "$work/emu.out" 2>/dev/null && break; sleep 0.05; done
  url=$(sed -n 's/^listening on //p' "$work/emu.out" | head -1)
  ca=$(grep -o '/[^ ]*\.pem' "$work/emu.out" | head -1)
  [ -n "$url" ] && [ -f "$ca" ] || { echo "emulator did not start"; cat "$work/emu.err"; exit 1; }
  export AWS_CA_BUNDLE=$ca
  results+=("$(measure "curl-$kind" curl -sS --cacert "$ca" -X POST -H 'Content-Type: application/json' \
    -d '{"durationSeconds":3600}' "$url/sessions?profileArn=$pr&roleArn=$role&trustAnchorArn=$ta")")
  results+=("$(measure "credential-process-$kind" "$bin" credential-process \
    --certificate "$dir/leaf.pem" --private-key "$dir/leaf.key" --trust-anchor-arn "$ta" \
    --profile-arn "$pr" --role-arn "$role" --endpoint "$url")")
  kill $emu; wait $emu 2>/dev/null || true
done

printf '%s\n' "${results[@]}" >"$work/results"
python3 - "$work/results" "$runs" <<'PY'
import sys
rows = {l.split()[0]: list(map(float, l.split()[1:])) for l in open(sys.argv[1]) if l.strip()}
print("%-28s %8s %8s %8s   %s" % ("case", "cpu ms", "wall ms", "rss MiB", "ratio to curl (cpu, wall, rss)"))
for name, (cpu, wall, rss) in rows.items():
    line = "%-28s %8.2f %8.2f %8.1f" % (name, cpu, wall, rss / 1024)
    if name.startswith("credential-process"):
        base = rows["curl-" + name.split("-")[-1]]
        line += "   %.2fx %.2fx %.2fx" % (cpu / max(base[0], 0.1), wall / max(base[1], 0.1), rss / base[2])
    print(line)
print("(medians of %s runs; goals: credential-process cpu <= 10 ms, peak rss <= 10 MiB)" % sys.argv[2])
PY
