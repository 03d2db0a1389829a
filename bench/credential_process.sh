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
trap 'kill $emu 2>/dev/null || true; rm -rf "$work"' EXIT

ta=arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/bench
pr=arn:aws:rolesanywhere:us-east-1:111122223333:profile/bench
role=arn:aws:iam::111122223333:role/bench

measure() { # label, then the command; prints "label cpu_ms wall_ms rss_kib" medians
  local label=$1; shift
  local out="$work/$label.times"
  : >"$out"
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%U %S %e %M" -a -o "$out" "$@" >/dev/null 2>"$work/err" || {
      echo "$label failed:"; cat "$work/err"; exit 1; }
  done
  python3 - "$label" "$out" <<'PY'
import statistics, sys
label, path = sys.argv[1], sys.argv[2]
rows = [list(map(float, l.split()[-4:])) for l in open(path) if l.strip() and l.split()[0][0].isdigit()]
cpu = statistics.median((u + s) * 1000 for u, s, _, _ in rows)
wall = statistics.median(e * 1000 for _, _, e, _ in rows)
rss = statistics.median(m for *_, m in rows)
print(f"{label} {cpu:.1f} {wall:.1f} {rss:.0f}")
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

printf '%s\n' "${results[@]}" | python3 -c '
import sys
rows = {l.split()[0]: list(map(float, l.split()[1:])) for l in sys.stdin if l.strip()}
print(f"{\"case\":28} {\"cpu ms\":>8} {\"wall ms\":>8} {\"rss MiB\":>8}   ratios to curl (cpu, wall, rss)")
for name, (cpu, wall, rss) in rows.items():
    line = f"{name:28} {cpu:8.1f} {wall:8.1f} {rss/1024:8.1f}"
    if name.startswith("credential-process"):
        base = rows["curl-" + name.split("-")[-1]]
        line += f"   {cpu/max(base[0],0.1):.2f}x {wall/max(base[1],0.1):.2f}x {rss/base[2]:.2f}x"
    print(line)
print(f"(medians of '"$runs"' runs; goals: credential-process cpu <= 10 ms, rss <= 10 MiB)")
'
