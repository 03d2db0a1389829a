#!/usr/bin/env bash
# Benchmark: one `credential-process` (one CreateSession) signed by a TPM key on swtpm,
# beside the same call with a file key, against the local emulator over HTTPS; and AWS's
# official helper with the same TPM key when it is there (bench/official.sh).
#
#   bench/tpm.sh [RUNS]     (default 25 runs per case)
#
# Needs swtpm, tpm2-tools and tpm2-openssl (tests/run.sh installs them). swtpm runs on a Unix
# socket with a fresh state; keys are made with tpm2-openssl under the owner hierarchy, so
# each signature also makes the storage primary key (CreatePrimary, Load, Sign, two
# FlushContext), as upstream does. Prints, per case, the median CPU time (user+sys of the
# helper alone: swtpm's work is in another process), wall time (which includes swtpm's) and
# peak RSS, timed by bench/cases.py. Not a test: the figures go in the README.
set -euo pipefail
start_dir=$PWD
cd "$(dirname "$0")/.."
runs=${1:-25}

. bench/official.sh

for tool in swtpm tpm2_flushcontext; do
  command -v "$tool" >/dev/null || { echo "bench/tpm.sh: $tool is missing; run tests/run.sh"; exit 1; }
done
if ! command -v /usr/bin/time >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi
cargo build --release --quiet
bin=$(pwd)/target/release/rolesanywhere-helper
work=$(mktemp -d)
export work
trap 'kill $emu $tpm 2>/dev/null || true; rm -rf "$work"' EXIT

. bench/emulator_pki.sh
dir="$work/pki"
start_emulator "$dir" p256
swtpm socket --tpm2 --tpmstate dir="$work" --server type=unixio,path="$work/sock" \
  --ctrl type=unixio,path="$work/sock.ctrl" --flags not-need-init,startup-clear 2>/dev/null &
tpm=$!
for _ in $(seq 100); do [ -S "$work/sock" ] && break; sleep 0.05; done
[ -S "$work/sock" ] || { echo "swtpm did not start"; exit 1; }
export TPM_DEVICE=$work/sock TPM2OPENSSL_TCTI=swtpm:path=$work/sock

printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n' >"$work/leaf.ext"
# A TPM key NAME.tss.pem (genpkey options after the name) and its certificate NAME.pem.
tpm_key() {
  local name=$1
  shift
  (cd "$work" &&
    openssl genpkey -provider tpm2 "$@" -out "$name.tss.pem" 2>/dev/null &&
    openssl req -new -provider tpm2 -provider default -propquery '?provider=tpm2' \
      -key "$name.tss.pem" -subj "/CN=$name" -out "$name.csr" &&
    openssl x509 -req -in "$name.csr" -CA "$dir/root-ca.pem" -CAkey "$dir/root-ca.key" \
      -CAcreateserial -days 2 -extfile leaf.ext -out "$name.pem" 2>/dev/null)
}
tpm_key tpm-p256 -algorithm EC -pkeyopt group:P-256
tpm_key tpm-rsa2048 -algorithm RSA -pkeyopt bits:2048

common=(--trust-anchor-arn "$ta" --profile-arn "$pr" --role-arn "$role" --endpoint "$url")
cases=(
  file-p256 credentials "$bin" credential-process --certificate "$dir/leaf.pem" --private-key "$dir/leaf.key" "${common[@]}"
  --next tpm-p256 credentials "$bin" credential-process --certificate "$work/tpm-p256.pem" --private-key "$work/tpm-p256.tss.pem" "${common[@]}"
  --next tpm-rsa2048 credentials "$bin" credential-process --certificate "$work/tpm-rsa2048.pem" --private-key "$work/tpm-rsa2048.tss.pem" "${common[@]}"
)
if [ -n "$official" ]; then
  cases+=(--next official-tpm-p256 credentials "$official" credential-process --certificate "$work/tpm-p256.pem"
    --private-key "$work/tpm-p256.tss.pem" --no-tpm-key-password "${common[@]}")
fi

python3 bench/cases.py "$runs" "$work" "${cases[@]}" >"$work/results"
python3 - "$work/results" "$runs" <<'PY'
import sys
rows = {l.split()[0]: list(map(float, l.split()[1:])) for l in open(sys.argv[1]) if l.strip()}
base = rows["file-p256"][1]
print("%-20s %8s %8s %8s   %s" % ("case", "cpu ms", "wall ms", "rss MiB", "wall to file-p256"))
for label, (cpu, wall, rss) in rows.items():
    print("%-20s %8.2f %8.2f %8.1f   %.2fx" % (label, cpu, wall, rss / 1024, wall / base))
print(f"medians of {sys.argv[2]} runs")
PY
