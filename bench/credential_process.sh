#!/usr/bin/env bash
# Benchmark: whole-process cost of `credential-process` against the local emulator, beside a
# `curl` POST to the same endpoint as the floor (process start + TLS handshake + one request),
# and beside AWS's official helper (aws_signing_helper 1.8.0) given the same certificate, key,
# ARNs and emulator.
#
#   bench/credential_process.sh [RUNS]     (default 25 runs per case)
#
# The official helper is RA_BENCH_OFFICIAL (default, from the repository root:
# ../shared/peers/official-1.8.0/aws_signing_helper); when it is missing, the script says so
# and measures the rest (relative paths in RA_BENCH_OFFICIAL are from the current directory).
# It has no --ca-bundle flag: it reaches the emulator through --endpoint and trusts the
# emulator's CA through AWS_CA_BUNDLE, as ours does here.
#
# Prints, per case, the median CPU time (user+sys), wall time and peak RSS, the ratio of each to
# the curl floor and to the official helper, all measured in the same run: the cases take turns
# run by run, so that other load on the machine falls on all of them alike. Every credential
# call must exit 0 and print credentials with an AccessKeyId, or the benchmark stops. Prints
# PASS/FAIL for the goal against the official helper. The timing is bench/cases.py's. Not a
# test: the figures go in the README.
set -euo pipefail
start_dir=$PWD
cd "$(dirname "$0")/.."
runs=${1:-25}

. bench/official.sh

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

. bench/emulator_pki.sh

# Cases separated by `--next`, each: label, what its stdout must be (`any`, or `credentials`),
# then the command; see bench/cases.py. Prints "label cpu_ms wall_ms rss_kib" (medians) per case.
measure() {
  python3 bench/cases.py "$runs" "$work" "$@"
}

results=()
for key_type in rsa2048 p256 ml-dsa-65; do
  kind=${key_type//-/} # the case labels end in one dash-free word
  dir="$work/$kind"
  start_emulator "$dir" "$key_type"
  cases=(
    "curl-$kind" any curl -sS --cacert "$ca" -X POST -H 'Content-Type: application/json'
    -d '{"durationSeconds":3600}' "$url/sessions?profileArn=$pr&roleArn=$role&trustAnchorArn=$ta"
    --next "credential-process-$kind" credentials "$bin" credential-process "${flags[@]}"
  )
  if [ -n "$official" ]; then
    cases+=(--next "official-$kind" credentials "$official" credential-process "${flags[@]}")
  fi
  measure "${cases[@]}" >"$work/measured"
  while read -r line; do results+=("$line"); done <"$work/measured"
  kill $emu; wait $emu 2>/dev/null || true
done

printf '%s\n' "${results[@]}" >"$work/results"
python3 - "$work/results" "$runs" <<'PY'
import sys
rows = {l.split()[0]: list(map(float, l.split()[1:])) for l in open(sys.argv[1]) if l.strip()}
ratios = lambda a, b: "%.2fx %.2fx %.2fx" % (a[0] / max(b[0], 0.1), a[1] / max(b[1], 0.1), a[2] / b[2])
print("%-28s %8s %8s %8s   %-32s %s" % ("case", "cpu ms", "wall ms", "rss MiB",
                                       "ratio to curl (cpu, wall, rss)", "ratio to official"))
goals = []
for name, row in rows.items():
    line = "%-28s %8.2f %8.2f %8.1f" % (name, row[0], row[1], row[2] / 1024)
    kind = name.split("-")[-1]
    if not name.startswith("curl"):
        line += "   %-32s" % ratios(row, rows["curl-" + kind])
    official = rows.get("official-" + kind)
    if name.startswith("credential-process"):
        goals.append((f"credential-process-{kind} peak rss <= 8 MiB", row[2] <= 8 * 1024,
                      "%.1f MiB" % (row[2] / 1024)))
    if name.startswith("credential-process") and official:
        line += " " + ratios(row, official)
        cpu = row[0] / official[0]
        goals.append((f"credential-process-{kind} cpu <= 0.3x official", cpu <= 0.3,
                      f"{cpu:.2f}x ({row[0]:.2f} ms vs {official[0]:.2f} ms); peak rss {row[2] / official[2]:.2f}x"))
    print(line.rstrip())
print("(medians of %s runs)" % sys.argv[2])
if not any(name.startswith("official") for name in rows):
    print("(no official helper measured: no ratio to it)")
print()
for name, ok, value in goals:
    print("%-4s %-48s %s" % ("PASS" if ok else "FAIL", name, value))
PY
