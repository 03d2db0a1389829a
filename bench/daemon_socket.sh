#!/usr/bin/env bash
# Benchmark: `credential-process --daemon-socket` (one process start and one round trip to a
# running `serve`) beside a direct `credential-process` call (process start, key, signature,
# TLS, CreateSession against the local emulator) and beside the bare process start of the same
# binary (`version`), all in the same run, taking turns, with a P-256 key.
#
#   bench/daemon_socket.sh [RUNS]     (default 50 runs per case)
#
# Prints, per case, the median CPU time (user+sys, GNU time's small share included), wall
# time and peak RSS, and PASS/FAIL for the goal: at most 2 ms wall per socket call, process
# start included. Every call must print credentials, or the benchmark stops. Checks that the
# socket calls made no CreateSession (the emulator's session count is read from serve's
# refresh log: one line per refresh). Not a test: the figures go in the README.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-50}

if ! command -v /usr/bin/time >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi
cargo build --release --quiet
bin=$(pwd)/target/release/rolesanywhere-helper
work=$(mktemp -d)
export work
trap 'kill $serve $emu 2>/dev/null || true; rm -rf "$work"' EXIT

ta=arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/bench
pr=arn:aws:rolesanywhere:us-east-1:111122223333:profile/bench
role=arn:aws:iam::111122223333:role/bench

. bench/measure.sh

dir="$work/p256"
"$bin" pki init "$dir" --key-type p256 >/dev/null
"$bin" emulate --trust-anchor "$dir/root-ca.pem" --port 0 >"$work/emu.out" 2>"$work/emu.err" &
emu=$!
for _ in $(seq 100); do grep -q '^listening on ' "$work/emu.out" 2>/dev/null && break; sleep 0.05; done
url=$(sed -n 's/^listening on //p' "$work/emu.out" | head -1)
ca=$(grep -o '/[^ ]*\.pem' "$work/emu.out" | head -1)
[ -n "$url" ] && [ -f "$ca" ] || { echo "emulator did not start"; cat "$work/emu.err"; exit 1; }
export AWS_CA_BUNDLE=$ca
flags=(--certificate "$dir/leaf.pem" --private-key "$dir/leaf.key" --trust-anchor-arn "$ta"
  --profile-arn "$pr" --role-arn "$role" --endpoint "$url")

socket="$work/daemon.sock"
"$bin" serve "${flags[@]}" --port 0 --daemon-socket "$socket" 2>"$work/serve.err" &
serve=$!
for _ in $(seq 200); do grep -q '^serving credentials' "$work/serve.err" 2>/dev/null && break; sleep 0.05; done
grep -q '^serving credentials' "$work/serve.err" || { echo "serve did not start"; cat "$work/serve.err"; exit 1; }
refreshes() { grep -c 'credentials refreshed' "$work/serve.err" || true; }
before=$(refreshes)

measure \
  "process-start" any "$bin" version \
  --next "daemon-socket" credentials "$bin" credential-process --daemon-socket "$socket" \
  --next "direct" credentials "$bin" credential-process "${flags[@]}" \
  >"$work/results"
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
print("daemon refreshes during the run: %d" % (int(sys.argv[4]) - int(sys.argv[3])))
print()
print("%-4s %-40s %.2f ms" % ("PASS" if sock[1] <= 2.0 else "FAIL", "daemon-socket wall <= 2 ms per call", sock[1]))
PY
