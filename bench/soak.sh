#!/usr/bin/env bash
# Soak test of `serve`: wrk on the credentials path for a long time (default 10 minutes)
# while the emulator issues 20-second sessions, so the daemon refreshes about 60 times
# under load. A second wrk floods the token PUT meanwhile, to show the token store stays
# bounded. Reports and checks: zero non-2xx answers on the credentials path, RSS flat
# within 10 % from the first minute to the end, the token count at its bound, refreshes.
#
#   bench/soak.sh [SECONDS]          (default 600)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "soak: $tool is missing (apt-get install $tool)" >&2; exit 1; }
done

cargo build --release --quiet
bin=target/release/rolesanywhere-helper
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

region=us-east-1
acct=111122223333
anchor="arn:aws:rolesanywhere:$region:$acct:trust-anchor/soak"
profile="arn:aws:rolesanywhere:$region:$acct:profile/soak"
role="arn:aws:iam::$acct:role/soak"

"$bin" pki init "$work/pki" --key-type p256 >/dev/null
cat >"$work/emulator.toml" <<EOF
region = "$region"
allowShortSessions = true

[[trustAnchors]]
certificates = "pki/root-ca.pem"

[[profiles]]
arn = "$profile"
roleArns = ["$role"]
durationSeconds = 20
EOF
"$bin" emulate --config "$work/emulator.toml" --port 0 >"$work/emu.out" 2>"$work/emu.err" &
pids+=($!)
for _ in $(seq 50); do grep -q '^listening on ' "$work/emu.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/emu.out" | head -1)
ca=$(sed -n 's/.*AWS_CA_BUNDLE=//p' "$work/emu.out" | head -1)
[ -n "$url" ] || { echo "soak: the emulator did not start:" >&2; cat "$work/emu.err" >&2; exit 1; }

ops_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
AWS_CA_BUNDLE="$ca" "$bin" serve --certificate "$work/pki/leaf.pem" --private-key "$work/pki/leaf.key" \
  --trust-anchor-arn "$anchor" --profile-arn "$profile" --role-arn "$role" --endpoint "$url" \
  --port 0 --ops-listen "127.0.0.1:$ops_port" >/dev/null 2>"$work/serve.err" &
serve_pid=$!
pids+=($serve_pid)
for _ in $(seq 100); do grep -q '^serving credentials' "$work/serve.err" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/^Local server started on port: //p' "$work/serve.err" | head -1)
[ -n "$port" ] || { echo "soak: serve did not start:" >&2; cat "$work/serve.err" >&2; exit 1; }
base="http://127.0.0.1:$port"
token=$(curl -sf -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 21600' "$base/latest/api/token")

rss() { awk '/^VmRSS/ {print $2}' "/proc/$serve_pid/status"; }
metric() { curl -sf "http://127.0.0.1:$ops_port/metrics" | awk -v m="$1" '$1 ~ m {s += $2} END {print s + 0}'; }

echo "soak: ${secs}s of wrk on $base (20-second sessions), token PUT flood beside it" >&2
wrk -t1 -c16 -d"${secs}s" --latency -H "X-aws-ec2-metadata-token: $token" \
  "$base/latest/meta-data/iam/security-credentials/soak" >"$work/wrk.out" 2>&1 &
wrk_pid=$!
pids+=($wrk_pid)
cat >"$work/put.lua" <<'EOF'
wrk.method = "PUT"
wrk.headers["X-aws-ec2-metadata-token-ttl-seconds"] = "21600"
EOF
wrk -t1 -c2 -d"${secs}s" -s "$work/put.lua" "$base/latest/api/token" >"$work/put.out" 2>&1 &
pids+=($!)

sleep 60
rss_start=$(rss)
tokens_mid=$(metric '^rolesanywhere_imds_tokens$')
peak=$rss_start
while kill -0 "$wrk_pid" 2>/dev/null; do
  now=$(rss); [ "$now" -gt "$peak" ] && peak=$now
  sleep 10
done
rss_end=$(rss)
tokens_end=$(metric '^rolesanywhere_imds_tokens$')
refreshes=$(metric 'rolesanywhere_refreshes_total\{role="soak",outcome="success"\}')
failed=$(metric 'rolesanywhere_refreshes_total\{role="soak",outcome="(transient|permanent)_error"\}')
requests=$(awk '/requests in/ {print $1}' "$work/wrk.out")
non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.out"); non2xx=${non2xx:-0}
errors=$(awk '/Socket errors/ {print}' "$work/wrk.out")
puts=$(awk '/requests in/ {print $1}' "$work/put.out")
p99=$(awk '$1 == "99%" {print $2}' "$work/wrk.out")
growth=$(python3 -c "print(f'{($rss_end - $rss_start) * 100 / $rss_start:+.1f}')")

printf '\n%-44s %s\n' "credentials GETs" "$requests (p99 $p99)"
printf '%-44s %s\n' "non-2xx answers on the credentials path" "$non2xx"
printf '%-44s %s\n' "socket errors" "${errors:-none}"
printf '%-44s %s\n' "token PUTs" "$puts"
printf '%-44s %s\n' "live IMDS tokens (after 60 s / at the end)" "$tokens_mid / $tokens_end (bound 4096)"
printf '%-44s %s\n' "refreshes (succeeded / failed)" "$refreshes / $failed"
printf '%-44s %s\n' "RSS at 60 s / end / peak (KiB)" "$rss_start / $rss_end / $peak ($growth %)"

ok=1
[ "$non2xx" = 0 ] || { echo "FAIL: non-2xx answers"; ok=0; }
[ -z "$errors" ] || { echo "FAIL: socket errors"; ok=0; }
[ "$tokens_end" -le 4096 ] || { echo "FAIL: token store above its bound"; ok=0; }
python3 -c "import sys; sys.exit(0 if abs($rss_end - $rss_start) <= 0.1 * $rss_start else 1)" \
  || { echo "FAIL: RSS moved more than 10 %"; ok=0; }
[ "$ok" = 1 ] && echo "PASS" || exit 1
