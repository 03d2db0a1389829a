#!/usr/bin/env bash
# Benchmark: `credential-process --daemon-socket` (one process start and one round trip to a
# running `serve`) beside a direct `credential-process` call (process start, key, signature,
# TLS, CreateSession against the local emulator) and beside the bare process start of the same
# binary (`version`), all in the same run, taking turns, with a P-256 key; and beside the
# official helper's direct call (RA_BENCH_OFFICIAL, see bench/official.sh) when it is there.
#
#   bench/daemon_socket.sh [RUNS]     (default 50 runs per case)
#
# Prints, per case, the median wall time and CPU time (user+sys) of the whole process, from
# posix_spawn to wait4 (no shell or GNU time in between: at these sizes they would be most of
# the figure), and the median peak RSS from a few further runs under GNU time (both by
# bench/cases.py); then PASS/FAIL for the goals: at most 2 ms wall per socket call, process
# start included, and at most 0.3x the official helper's CPU per call. Every credential call
# must print credentials, or the benchmark stops. Also prints how many refreshes the daemon
# made during the run (the socket calls make no CreateSession: the answers come from its
# memory). Not a test: the figures go in the README.
set -euo pipefail
start_dir=$PWD
cd "$(dirname "$0")/.."
runs=${1:-50}

. bench/official.sh

if ! command -v /usr/bin/time >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi
cargo build --release --quiet
bin=$(pwd)/target/release/rolesanywhere-helper
work=$(mktemp -d)
trap 'kill $serve $emu 2>/dev/null || true; rm -rf "$work"' EXIT

. bench/emulator_pki.sh
start_emulator "$work/p256" p256

socket="$work/daemon.sock"
"$bin" serve "${flags[@]}" --port 0 --daemon-socket "$socket" 2>"$work/serve.err" &
serve=$!
for _ in $(seq 200); do grep -q '^serving credentials' "$work/serve.err" 2>/dev/null && break; sleep 0.05; done
grep -q '^serving credentials' "$work/serve.err" || { echo "serve did not start"; cat "$work/serve.err"; exit 1; }
refreshes() { grep -c 'credentials refreshed' "$work/serve.err" || true; }
before=$(refreshes)
official_case=()
if [ -n "$official" ]; then
  official_case=(--next official credentials "$official" credential-process "${flags[@]}")
fi

python3 bench/cases.py "$runs" "$work" process-start any "$bin" version \
  --next daemon-socket credentials "$bin" credential-process --daemon-socket "$socket" \
  --next direct credentials "$bin" credential-process "${flags[@]}" \
  "${official_case[@]}" >"$work/results"
after=$(refreshes)

python3 - "$work/results" "$runs" "$before" "$after" <<'PY'
import sys
rows = {l.split()[0]: list(map(float, l.split()[1:])) for l in open(sys.argv[1]) if l.strip()}
print("%-16s %8s %8s %8s" % ("case", "cpu ms", "wall ms", "rss MiB"))
for name, row in rows.items():
    print("%-16s %8.2f %8.2f %8.1f" % (name, row[0], row[1], row[2] / 1024))
sock, direct = rows["daemon-socket"], rows["direct"]
print("(medians of %s runs; daemon-socket / direct: %.2fx cpu, %.2fx wall)"
      % (sys.argv[2], sock[0] / direct[0], sock[1] / direct[1]))
if "official" in rows:
    official = rows["official"]
    print("(daemon-socket / official: %.2fx cpu, %.2fx wall, %.2fx rss)"
          % (sock[0] / official[0], sock[1] / official[1], sock[2] / official[2]))
print("daemon refreshes during the run: %d" % (int(sys.argv[4]) - int(sys.argv[3])))
print()
print("%-4s %-40s %.2f ms" % ("PASS" if sock[1] <= 2.0 else "FAIL", "daemon-socket wall <= 2 ms per call", sock[1]))
if "official" in rows:
    ratio = sock[0] / rows["official"][0]
    print("%-4s %-40s %.2fx" % ("PASS" if ratio <= 0.3 else "FAIL", "daemon-socket cpu <= 0.3x official", ratio))
PY
