#!/usr/bin/env bash
# Throughput of the emulator's verified CreateSession against a baseline from the same run.
#
# One RSA-2048 request is signed here with openssl (independently of the Rust client), then
# replayed with wrk over HTTPS keep-alive within the 5-minute skew window. Every replay is
# fully verified (signature, cached chain with validity re-checked, profile) and issues new
# credentials. The baseline is the same wrk against the emulator's unauthenticated 404 route,
# so the ratio shows what verification costs over TLS + HTTP alone.
#
#   bench/emulator.sh [SECONDS] [CONNECTIONS]      (defaults: 10 s, 32 connections)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-32}
for tool in wrk openssl python3 curl; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install $tool)" >&2; exit 1; }
done

cargo build --release --quiet
bin=target/release/rolesanywhere-helper
work=$(mktemp -d)
emu_pid=""
cleanup() { [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$bin" pki init "$work/pki" --key-type rsa2048 >/dev/null
"$bin" emulate --trust-anchor "$work/pki/root-ca.pem" \
  --tls-cert "$work/pki/tls.pem" --tls-key "$work/pki/tls.key" --port 0 >"$work/out" 2>"$work/err" &
emu_pid=$!
for _ in $(seq 50); do grep -q '^listening on ' "$work/out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/out" | head -1)
[ -n "$url" ] || { echo "bench: the emulator did not start:" >&2; cat "$work/err" >&2; exit 1; }
hostport=${url#https://}

# Sign one CreateSession request (signing-spec §2) with openssl.
region=us-east-1
acct=123456789012
profile="arn:aws:rolesanywhere:$region:$acct:profile/bench"
role="arn:aws:iam::$acct:role/bench"
anchor="arn:aws:rolesanywhere:$region:$acct:trust-anchor/bench"
enc() { python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.argv[1],safe="-_.~"))' "$1"; }
query="profileArn=$(enc "$profile")&roleArn=$(enc "$role")&trustAnchorArn=$(enc "$anchor")"
body='{"durationSeconds":3600}'
date=$(date -u +%Y%m%dT%H%M%SZ)
x509=$(openssl x509 -in "$work/pki/leaf.pem" -outform DER | base64 -w0)
serial=$(python3 -c 'import sys;print(int(sys.argv[1],16))' "$(openssl x509 -in "$work/pki/leaf.pem" -noout -serial | cut -d= -f2)")
payload_hash=$(printf '%s' "$body" | openssl dgst -sha256 -r | cut -d' ' -f1)
canonical=$(printf 'POST\n/sessions\n%s\ncontent-type:application/json\nhost:%s\nx-amz-date:%s\nx-amz-x509:%s\n\ncontent-type;host;x-amz-date;x-amz-x509\n%s' \
  "$query" "$hostport" "$date" "$x509" "$payload_hash")
creq_hash=$(printf '%s' "$canonical" | openssl dgst -sha256 -r | cut -d' ' -f1)
sts=$(printf 'AWS4-X509-RSA-SHA256\n%s\n%s/%s/rolesanywhere/aws4_request\n%s' "$date" "${date:0:8}" "$region" "$creq_hash")
sig=$(printf '%s' "$sts" | openssl dgst -sha256 -sign "$work/pki/leaf.key" | od -An -tx1 -v | tr -d ' \n')
auth="AWS4-X509-RSA-SHA256 Credential=$serial/${date:0:8}/$region/rolesanywhere/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-x509, Signature=$sig"

# The request must be accepted before it is worth measuring.
code=$(curl -sS --cacert "$work/pki/root-ca.pem" -o "$work/answer" -w '%{http_code}' -X POST \
  -H 'content-type: application/json' -H "x-amz-date: $date" -H "x-amz-x509: $x509" \
  -H "authorization: $auth" --data-binary "$body" "$url/sessions?$query")
[ "$code" = 201 ] || { echo "bench: the signed request was refused ($code):" >&2; cat "$work/answer" >&2; exit 1; }

cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["content-type"] = "application/json"
wrk.headers["x-amz-date"] = "$date"
wrk.headers["x-amz-x509"] = "$x509"
wrk.headers["authorization"] = "$auth"
done = function(summary, latency, requests)
  local bad = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("non-2xx-or-errors %d\n", bad))
end
LUA

rps() { sed -n 's/^Requests\/sec: *//p' "$1"; }
bad() { sed -n 's/^non-2xx-or-errors //p' "$1"; }
echo "bench: $(nproc) cores, wrk -t2 -c$conns -d${secs}s, keep-alive over TLS, RSA-2048 leaf"
wrk -t2 -c"$conns" -d"${secs}s" "$url/baseline-404" >"$work/base.txt"
wrk -t2 -c"$conns" -d"${secs}s" -s "$work/post.lua" "$url/sessions?$query" >"$work/verified.txt"
base=$(rps "$work/base.txt")
verified=$(rps "$work/verified.txt")
failed=$(bad "$work/verified.txt")
echo "baseline (unauthenticated 404):       $base req/s"
echo "verified CreateSession (201 issued):  $verified req/s  (refused or failed: $failed)"
python3 - "$verified" "$base" "$failed" <<'PY'
import sys
v, b, failed = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
print(f"ratio verified/baseline: {v / b:.2f}")
ok = v >= 2000 and failed == 0
print("target >= 2000 verified req/s with no refusals:", "met" if ok else "NOT met")
sys.exit(0 if ok else 1)
PY
