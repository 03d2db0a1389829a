#!/usr/bin/env python3
"""Idle keep-alive connections against `serve`, for bench/serve.sh (Python 3 stdlib only).

    idle_connections.py PORT PATH TOKEN [--count N] [--idle SECONDS] [--pid PID]

Opens COUNT TCP connections to 127.0.0.1:PORT, sends one keep-alive GET of PATH with the
IMDSv2 token on each and reads every answer, holds them all idle for SECONDS while sampling
the VmRSS of PID, then sends a second GET on every connection and counts the 200 answers.
Prints `key value` lines: opened, first_ok, second_ok, closed_or_silent, rss_held_kib.
"""

import argparse
import resource
import socket
import time


def read_response(sock):
    """Reads one HTTP/1.1 response; returns its status code, or None if the peer closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
        elif name.strip().lower() == b"transfer-encoding":
            raise ValueError("chunked answers are not expected here")
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        rest += chunk
    return status


def rss_kib(pid):
    if pid is None:
        return 0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def round_trip(socks, request):
    """Sends the request on every open connection, then reads every answer, all within
    15 s in total. Returns (number of 200 answers, number of connections that the server had
    closed or that did not answer in time)."""
    ok = closed = 0
    deadline = time.monotonic() + 15
    sent = []
    for sock in socks:
        try:
            sock.sendall(request)
            sent.append(sock)
        except OSError:
            closed += 1
    for sock in sent:
        try:
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            status = read_response(sock)
        except OSError:
            status = None
        if status is None:
            closed += 1
        elif status == 200:
            ok += 1
    return ok, closed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("path")
    parser.add_argument("token")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=5.0)
    parser.add_argument("--pid", type=int)
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.count + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))

    request = (
        f"GET {args.path} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{args.port}\r\n"
        f"X-aws-ec2-metadata-token: {args.token}\r\n"
        "Connection: keep-alive\r\n"
        "\r\n"
    ).encode()

    socks = []
    for _ in range(args.count):
        try:
            sock = socket.create_connection(("127.0.0.1", args.port), timeout=10)
        except OSError as err:
            print(f"connect failed after {len(socks)}: {err}")
            break
        socks.append(sock)

    first_ok, first_closed = round_trip(socks, request)

    # Hold them all idle, sampling the server's memory meanwhile.
    held_rss = rss_kib(args.pid)
    deadline = time.monotonic() + args.idle
    while time.monotonic() < deadline:
        time.sleep(0.2)
        held_rss = max(held_rss, rss_kib(args.pid))

    second_ok, second_closed = round_trip(socks, request)
    for sock in socks:
        sock.close()

    print(f"opened {len(socks)}")
    print(f"first_ok {first_ok}")
    print(f"second_ok {second_ok}")
    print(f"closed_or_silent {first_closed + second_closed}")
    print(f"rss_held_kib {held_rss}")


if __name__ == "__main__":
    main()
