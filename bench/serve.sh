#!/usr/bin/env bash
# Benchmark of `serve` (the IMDSv2 credentials endpoint) beside a baseline from the same run.
#
# The baseline is examples/baseline_server.rs: hyper 1 on the same single-threaded tokio
# runtime, answering every request with the very bytes (and Content-Type) that `serve`
# returned for the credentials GET, and doing nothing else. The ratio serve/baseline is what
# the daemon's routing, token check and credentials lookup cost over HTTP alone.
#
#   bench/serve.sh [SECONDS] [CONNECTIONS] [IDLE_CONNECTIONS] [IDLE_SECONDS]
#                  (defaults: 10 s, 64 connections, 1000 idle connections held 5 s)
#
# Figures, for each server: RSS once ready (after one token and one credentials GET, 1 s
# later); wrk -t1 requests/s and p99 latency over keep-alive (after a 2 s warm-up), with the
# server's CPU time per request over that run (user+sys from /proc/PID/stat, which other load
# on the machine disturbs less than requests/s); p99 at one connection; peak RSS
# during the wrk run (VmHWM reset just before it through /proc/PID/clear_refs, or VmRSS
# sampled every 50 ms where that is not allowed); IDLE_CONNECTIONS keep-alive connections
# opened, used, held idle and used again (bench/idle_connections.py), with the RSS while they
# are held.
#
# Beside them, AWS's official helper (aws_signing_helper 1.8.0, RA_BENCH_OFFICIAL, default from
# the repository root: ../shared/peers/official-1.8.0/aws_signing_helper) runs `serve` with the
# same certificate, key, ARNs and emulator (trusted through AWS_CA_BUNDLE), on its own port with
# its own IMDS token, and goes through the same figures and the same wrk load. It fetches
# credentials before it listens and refreshes them only inside a credentials request once less
# than 10 minutes remain: the emulator's one-hour credentials keep refreshes out of the run, and
# the script checks that its AccessKeyId is the same after the run as before (its startup
# ignores CreateSession errors and would then serve empty credentials with 200: the script
# checks for an AccessKeyId too). When it is missing, the script says so and measures the rest.
# Relative paths in RA_BENCH_OFFICIAL are from the current directory.
#
# On a machine with two or more CPUs the servers run on one and wrk on another (taskset):
# with the load generator and the server free to share cores, the p99 latency measures the
# kernel's time slices (several milliseconds whenever wrk preempts the server), not the
# server. All servers are treated alike. Run it on an otherwise idle machine: other load
# shows first in the p99 latency.
# Prints PASS/FAIL per goal (serve >= 2.5x the official's requests/s among them) and exits 0 whatever the verdicts (non-zero only when the
# measurement itself could not run).
set -euo pipefail
start_dir=$PWD
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-64}
idle_conns=${3:-1000}
idle_secs=${4:-5}
for tool in wrk python3 curl taskset; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install $tool)" >&2; exit 1; }
done

. bench/official.sh

# Enough descriptors for the idle connections, in the servers and the client.
want_fds=$((idle_conns + 256))
if [ "$(ulimit -Sn)" != unlimited ] && [ "$(ulimit -Sn)" -lt "$want_fds" ]; then
  hard=$(ulimit -Hn)
  if [ "$hard" = unlimited ] || [ "$hard" -ge "$want_fds" ]; then ulimit -Sn "$want_fds"; else ulimit -Sn "$hard"; fi
fi

# The servers' CPU and the load generator's: the first two this process may use.
read -r -a cpus < <(python3 -c 'import os; print(*sorted(os.sched_getaffinity(0))[:2])')
if [ "${#cpus[@]}" -ge 2 ]; then
  server_cpu=(taskset -c "${cpus[0]}")
  client_cpu=(taskset -c "${cpus[1]}")
else
  server_cpu=()
  client_cpu=()
fi

cargo build --release --quiet --bin rolesanywhere-helper
cargo build --release --quiet --example baseline_server
bin=$(pwd)/target/release/rolesanywhere-helper
baseline_bin=$(pwd)/target/release/examples/baseline_server
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "bench: $1" >&2; [ -n "${2:-}" ] && [ -f "$2" ] && sed 's/^/  | /' "$2" >&2; exit 1; }
status_kib() { sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status"; } # pid, field
mib() { python3 -c 'import sys; print(f"{int(sys.argv[1]) / 1024:.1f}")' "$1"; }

# Dev PKI and the emulator (HTTPS with its own CA, as in bench/credential_process.sh).
"$bin" pki init "$work/pki" --key-type p256 >/dev/null
"$bin" emulate --trust-anchor "$work/pki/root-ca.pem" --port 0 >"$work/emu.out" 2>"$work/emu.err" &
pids+=($!)
for _ in $(seq 100); do grep -q '^listening on ' "$work/emu.out" 2>/dev/null && break; sleep 0.05; done
emu_url=$(sed -n 's/^listening on //p' "$work/emu.out" | head -1)
ca=$(grep -o '/[^ ]*\.pem' "$work/emu.out" | head -1 || true)
[ -n "$emu_url" ] && [ -f "$ca" ] || fail "the emulator did not start:" "$work/emu.err"

acct=111122223333
role_name=bench
role="arn:aws:iam::$acct:role/$role_name"

# The IMDS servers (ours and the official) take the same flags, each on a free port.
imds_flags=(--certificate "$work/pki/leaf.pem" --private-key "$work/pki/leaf.key"
  --trust-anchor-arn "arn:aws:rolesanywhere:us-east-1:$acct:trust-anchor/bench"
  --profile-arn "arn:aws:rolesanywhere:us-east-1:$acct:profile/bench"
  --role-arn "$role" --endpoint "$emu_url" --port 0)
path="/latest/meta-data/iam/security-credentials/$role_name"

# Starts one on the servers' CPU; ready once it prints the export line. Sets NAME_pid and
# NAME_port.
start_imds() { # name binary
  local name=$1 pid port
  AWS_CA_BUNDLE=$ca "${server_cpu[@]}" "$2" serve "${imds_flags[@]}" >"$work/$name.out" 2>"$work/$name.err" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 300); do
    grep -q 'export AWS_EC2_METADATA_SERVICE_ENDPOINT=' "$work/$name.err" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  grep -q 'export AWS_EC2_METADATA_SERVICE_ENDPOINT=' "$work/$name.err" || fail "$name did not start:" "$work/$name.err"
  port=$(sed -n 's/.*Local server started on port: *\([0-9]*\).*/\1/p' "$work/$name.err" | head -1)
  [ -n "$port" ] || fail "$name printed no port:" "$work/$name.err"
  printf -v "${name}_pid" %s "$pid"
  printf -v "${name}_port" %s "$port"
}

# The AccessKeyId of an IMDS credentials answer; fails unless it holds credentials.
access_key() { # name file
  python3 -c 'import json, sys; c = json.load(open(sys.argv[1])); k = c.get("AccessKeyId")
assert k and c.get("Code", "Success") == "Success"; print(k)' "$2" 2>/dev/null \
    || fail "$1 answered no credentials:" "$2"
}

# An IMDSv2 token from one, then one credentials GET with it: must answer 200 with
# credentials. Leaves the token in $work/token-NAME, the answer in $work/body-NAME (headers in
# $work/headers-NAME) and its AccessKeyId in $work/key-NAME.
first_get() { # name port
  local name=$1 url="http://127.0.0.1:$2" code
  curl -sS -f -o "$work/token-$name" -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 21600' \
    "$url/latest/api/token" || fail "$name refused the token request"
  [ -s "$work/token-$name" ] || fail "$name answered an empty token"
  code=$(curl -sS -o "$work/body-$name" -D "$work/headers-$name" -w '%{http_code}' \
    -H "X-aws-ec2-metadata-token: $(cat "$work/token-$name")" "$url$path")
  [ "$code" = 200 ] || fail "the credentials GET to $name answered $code:" "$work/body-$name"
  access_key "$name" "$work/body-$name" >"$work/key-$name"
}

start_imds serve "$bin"
port=$serve_port
base_url="http://127.0.0.1:$port"
first_get serve "$port"
token=$(cat "$work/token-serve")
cp "$work/body-serve" "$work/body"
content_type=$(sed -n 's/^[Cc]ontent-[Tt]ype: *//p' "$work/headers-serve" | tr -d '\r' | head -1)
content_type=${content_type:-text/plain}
body_bytes=$(wc -c <"$work/body")
sleep 1
serve_idle=$(status_kib "$serve_pid" VmRSS)
# Of which mapped program code and data (clean pages of the binary and libraries, shared with
# the page cache) and anonymous memory (heap, stacks: what the process itself allocated).
serve_idle_file=$(status_kib "$serve_pid" RssFile)
serve_idle_anon=$(status_kib "$serve_pid" RssAnon)

# The baseline, returning the same bytes.
"${server_cpu[@]}" "$baseline_bin" 0 "$work/body" "$content_type" 2>"$work/baseline.err" &
baseline_pid=$!
pids+=("$baseline_pid")
for _ in $(seq 100); do grep -q '^listening on ' "$work/baseline.err" 2>/dev/null && break; sleep 0.05; done
baseline_port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$work/baseline.err" | head -1)
[ -n "$baseline_port" ] || fail "the baseline did not start:" "$work/baseline.err"
baseline_url="http://127.0.0.1:$baseline_port"
curl -sS -o "$work/baseline_body" "$baseline_url$path"
cmp -s "$work/body" "$work/baseline_body" || fail "the baseline does not return serve's bytes"
sleep 0.5
baseline_idle=$(status_kib "$baseline_pid" VmRSS)

# The official helper, with its own token; its idle RSS taken as ours (1 s after one GET).
official_idle=0 official_idle_file=0 official_idle_anon=0 official_body_bytes=0
if [ -n "$official" ]; then
  start_imds official "$official"
  official_url="http://127.0.0.1:$official_port"
  first_get official "$official_port"
  official_token=$(cat "$work/token-official")
  official_body_bytes=$(wc -c <"$work/body-official")
  sleep 1
  official_idle=$(status_kib "$official_pid" VmRSS)
  official_idle_file=$(status_kib "$official_pid" RssFile)
  official_idle_anon=$(status_kib "$official_pid" RssAnon)
fi

# wrk scripts, one per token (the baseline ignores it).
write_lua() { # file token
  cat >"$1" <<LUA
wrk.headers["X-aws-ec2-metadata-token"] = "$2"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("bench-bad %d\n", e.connect + e.read + e.write + e.status + e.timeout))
  io.write(string.format("bench-rps %.1f\n", summary.requests / (summary.duration / 1e6)))
  io.write(string.format("bench-requests %d\n", summary.requests))
  io.write(string.format("bench-p50-us %d\n", latency:percentile(50)))
  io.write(string.format("bench-p99-us %d\n", latency:percentile(99)))
end
LUA
}
write_lua "$work/get.lua" "$token"
[ -z "$official" ] || write_lua "$work/get-official.lua" "$official_token"

# Max VmRSS of a process, sampled every 50 ms for a given time: the fallback where VmHWM
# cannot be reset. Only then, because each sample takes the CPU from the server or wrk for
# a moment, which shows in the p99 latency.
sample_rss() { # pid seconds
  python3 - "$1" "$2" <<'PY'
import sys, time
pid, end, peak = sys.argv[1], time.monotonic() + float(sys.argv[2]), 0
while time.monotonic() < end:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            peak = max(peak, int(line.split()[1]))
    time.sleep(0.05)
print(peak)
PY
}

# User + system CPU time of a process (all its threads), in clock ticks.
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
clk_tck=$(getconf CLK_TCK)

# Runs wrk against one server; leaves its output in $work/wrk-NAME.txt and the server's peak
# RSS during the run (VmHWM reset first when the kernel allows it, else sampled) in
# $work/peak-NAME, and the server's CPU time during the run in $work/ticks-NAME.
load() { # name pid url lua
  local name=$1 pid=$2 url=$3 lua=$4
  "${client_cpu[@]}" wrk -t1 -c"$conns" -d2s -s "$lua" "$url" >/dev/null # warm-up
  local sampler= ticks
  if ! echo 5 >"/proc/$pid/clear_refs" 2>/dev/null; then
    sample_rss "$pid" "$secs" >"$work/sampled-$name" &
    sampler=$!
  fi
  ticks=$(cpu_ticks "$pid")
  "${client_cpu[@]}" wrk -t1 -c"$conns" -d"${secs}s" --latency -s "$lua" "$url" >"$work/wrk-$name.txt"
  echo $(($(cpu_ticks "$pid") - ticks)) >"$work/ticks-$name"
  if [ -n "$sampler" ]; then
    wait "$sampler"
    echo "$(cat "$work/sampled-$name") sampled" >"$work/peak-$name"
  else
    echo "$(status_kib "$pid" VmHWM) hwm-since-reset" >"$work/peak-$name"
  fi
}
field() { sed -n "s/^bench-$2 //p" "$work/wrk-$1.txt"; } # name key

load1=$(cut -d' ' -f1 /proc/loadavg)
pinning=${server_cpu[*]:+servers on CPU ${cpus[0]}, wrk on CPU ${cpus[1]:-}}
echo "bench: $(nproc) cores, load average $load1 before the runs; wrk -t1 -c$conns -d${secs}s keep-alive${pinning:+; $pinning}; body $body_bytes bytes ($content_type)${official:+; official body $official_body_bytes bytes}"
names=(baseline serve)
load baseline "$baseline_pid" "$baseline_url$path" "$work/get.lua"
load serve "$serve_pid" "$base_url$path" "$work/get.lua"
if [ -n "$official" ]; then
  names+=(official)
  load official "$official_pid" "$official_url$path" "$work/get-official.lua"
fi
# Latency without queueing: one connection, one request at a time (the saturated runs above
# measure mostly the wait behind the other connections' requests).
"${client_cpu[@]}" wrk -t1 -c1 -d5s -s "$work/get.lua" "$baseline_url$path" >"$work/wrk-baseline1.txt"
"${client_cpu[@]}" wrk -t1 -c1 -d5s -s "$work/get.lua" "$base_url$path" >"$work/wrk-serve1.txt"
if [ -n "$official" ]; then
  "${client_cpu[@]}" wrk -t1 -c1 -d5s -s "$work/get-official.lua" "$official_url$path" >"$work/wrk-official1.txt"
fi
for name in "${names[@]}"; do
  for run in "$name" "${name}1"; do
    [ -n "$(field "$run" rps)" ] || fail "wrk against $name gave no figures:" "$work/wrk-$run.txt"
  done
done

# Idle keep-alive connections: serve first (the figure), then the others for reference.
# The options first and the positionals after `--`: the token is URL-safe base64, and one
# that starts with '-' would otherwise read as an option.
python3 bench/idle_connections.py --count "$idle_conns" --idle "$idle_secs" --pid "$serve_pid" \
  -- "$port" "$path" "$token" >"$work/idle-serve.txt"
python3 bench/idle_connections.py --count "$idle_conns" --idle "$idle_secs" --pid "$baseline_pid" \
  -- "$baseline_port" "$path" "$token" >"$work/idle-baseline.txt"
kill -0 "$serve_pid" 2>/dev/null || fail "serve died during the benchmark:" "$work/serve.err"
if [ -n "$official" ]; then
  python3 bench/idle_connections.py --count "$idle_conns" --idle "$idle_secs" --pid "$official_pid" \
    -- "$official_port" "$path" "$official_token" >"$work/idle-official.txt"
  kill -0 "$official_pid" 2>/dev/null || fail "the official helper died during the benchmark:" "$work/official.err"
  # Still the credentials it fetched at startup: no refresh (a CreateSession inside a request)
  # fell in the measured runs.
  code=$(curl -sS -o "$work/body-official-after" -w '%{http_code}' \
    -H "X-aws-ec2-metadata-token: $official_token" "$official_url$path")
  [ "$code" = 200 ] || fail "the official helper's credentials GET after the runs answered $code:" "$work/body-official-after"
  access_key official "$work/body-official-after" >"$work/key-official-after"
  cmp -s "$work/key-official" "$work/key-official-after" \
    || fail "the official helper refreshed its credentials during the runs (synchronously, inside a request): its figures include CreateSession calls"
fi

export work conns idle_conns idle_secs clk_tck serve_idle baseline_idle official_idle \
  serve_idle_anon serve_idle_file official_idle_anon official_idle_file
python3 - "${names[@]}" <<'PY'
import os, sys

env, work = os.environ, os.environ["work"]
names = sys.argv[1:]
conns, n, clk_tck = env["conns"], int(env["idle_conns"]), int(env["clk_tck"])


def wrk(name):
    """The bench-* lines of one wrk run, as numbers."""
    out = {}
    for line in open(f"{work}/wrk-{name}.txt"):
        if line.startswith("bench-"):
            key, value = line[len("bench-"):].split()
            out[key] = float(value)
    return out


def figures(name):
    """Every figure of one server, or None when it was not measured."""
    if name not in names:
        return None
    loaded, single = wrk(name), wrk(name + "1")
    peak, how = open(f"{work}/peak-{name}").read().split()
    held = dict(line.split() for line in open(f"{work}/idle-{name}.txt") if len(line.split()) == 2)
    return {
        "rps": loaded["rps"], "p50": loaded["p50-us"], "p99": loaded["p99-us"],
        "cpu_us": int(open(f"{work}/ticks-{name}").read()) / clk_tck * 1e6 / max(loaded["requests"], 1),
        "p99_1": single["p99-us"], "rps_1": single["rps"],
        "bad": int(loaded["bad"] + single["bad"]),
        "idle": int(env[f"{name}_idle"]), "peak": int(peak), "peak_how": how,
        "first_ok": int(held.get("first_ok", 0)), "second_ok": int(held.get("second_ok", 0)),
        "held": int(held.get("rss_held_kib", 0)),
    }


serve, base, official = figures("serve"), figures("baseline"), figures("official")
mib = lambda kib: f"{int(kib) / 1024:.1f} MiB"
ms = lambda us: f"{us / 1000:.3f} ms"
ratio = serve["rps"] / base["rps"]


def row(label, show, note=""):
    """One figure for each server: show(figures) gives its text."""
    return (label, show(serve), show(base), show(official) if official else "-", note)


def vs_official(key):
    return f"serve/official {serve[key] / official[key]:.2f}" if official else ""


def join(*notes):
    return "; ".join(note for note in notes if note)


rows = [
    row(f"requests/s (wrk, {conns} conns)", lambda f: f"{f['rps']:,.0f}",
        join(f"ratio {ratio:.2f}", vs_official("rps"))),
    row("server CPU per request (user+sys)", lambda f: f"{f['cpu_us']:.1f} us",
        join(f"ratio {serve['cpu_us'] / base['cpu_us']:.2f}", vs_official("cpu_us"))),
    row("p50 latency", lambda f: ms(f["p50"])),
    row("p99 latency", lambda f: ms(f["p99"]), vs_official("p99")),
    row("p99 latency, 1 connection", lambda f: ms(f["p99_1"]),
        f"requests/s: {serve['rps_1']:,.0f} vs {base['rps_1']:,.0f}"
        + (f" vs {official['rps_1']:,.0f}" if official else "")),
    row("non-200 or socket errors", lambda f: str(f["bad"])),
    row("RSS idle after startup", lambda f: mib(f["idle"]),
        join(f"serve: {mib(env['serve_idle_anon'])} anonymous + {mib(env['serve_idle_file'])} mapped files",
             vs_official("idle"))),
    row("peak RSS under wrk load", lambda f: mib(f["peak"]), join(serve["peak_how"], vs_official("peak"))),
    row(f"{n} idle keep-alive conns: 2nd GET 200", lambda f: f"{f['second_ok']}/{n}",
        f"first GET 200: {serve['first_ok']}/{n}"
        + (f" (official {official['first_ok']}/{n})" if official else "") + f"; held {env['idle_secs']} s"),
    row(f"RSS with {n} conns held", lambda f: mib(f["held"])),
]
print()
print("%-40s %14s %14s %14s   %s" % ("figure", "serve", "baseline", "official", "note"))
for line in rows:
    print("%-40s %14s %14s %14s   %s" % line)

goals = [
    ("serve >= 0.9x baseline requests/s", ratio >= 0.9 and serve["bad"] == 0,
     f"{ratio:.2f}x" + (f", {serve['bad']} errors" if serve["bad"] else "")),
    (f"serve p99 <= 1.5x baseline's ({conns} connections)", serve["p99"] <= 1.5 * base["p99"],
     f"{ms(serve['p99'])} (baseline {ms(base['p99'])}, {serve['p99'] / base['p99']:.2f}x)"),
    ("idle RSS <= 8 MiB", serve["idle"] <= 8 * 1024, mib(serve["idle"])),
    ("RSS under load <= 12 MiB", serve["peak"] <= 12 * 1024, mib(serve["peak"])),
    (f"{n}/{n} idle connections held", serve["second_ok"] == n, f"{serve['second_ok']}/{n}"),
]
if official:
    # An error on either side makes the ratio meaningless (a 401 is cheaper than credentials).
    off_ratio = serve["rps"] / official["rps"]
    errors = join(serve["bad"] and f"{serve['bad']} errors", official["bad"] and f"official {official['bad']} errors")
    goals.append(("serve >= 2.5x official requests/s", off_ratio >= 2.5 and not errors,
                  join(f"{off_ratio:.2f}x ({serve['rps']:,.0f} vs {official['rps']:,.0f})", errors)))
print()
for name, ok, value in goals:
    print("%-4s %-40s %s" % ("PASS" if ok else "FAIL", name, value))
if not official:
    print("(no official helper measured: no ratio to it)")
failed = sum(1 for _, ok, _ in goals if not ok)
print()
print("all goals met" if not failed else f"{failed} goal(s) NOT met")
PY
