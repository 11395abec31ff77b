#!/usr/bin/python3
"""Memory bounds of the gateway against callers who send or read nothing they should.

Real processes on free ports (the three backends and kp-gateway, authentication required), and
a raw HTTP/2 client (tests need no HTTP/2 library) that:
  - opens many streams without credentials and sends most of a 4 MiB request on each, never
    finishing it: refused before any body is read, so the gateway's memory does not grow;
  - does the same with a valid token: bounded by the requests one principal may have being read at
    once (--principal_reads, 16 of at most 4 MiB), not by what the caller sends;
  - makes hundreds of calls with large answers and never reads them: bounded by the bytes of
    responses the gateway may hold unsent per principal (--unsent_responses_per_principal_mib),
    the rest RESOURCE_EXHAUSTED, while another principal is still served.
After each, the gateway still serves, and its resident memory stays under the bound asserted.

  KP_BIN_DIR=build/bin /usr/bin/python3 tests/integration/memory_bounds_test.py
"""
import hashlib
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import grpc

BIN_DIR = os.environ.get("KP_BIN_DIR", os.path.join(os.path.dirname(__file__), "../../build/bin"))
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
END_STREAM, END_HEADERS, ACK = 1, 4, 1


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def hpack_literal(name, value):
    """A header as an HPACK literal without indexing (lengths below 127)."""
    name, value = name.encode(), value.encode()
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def headers(path, token=None):
    fields = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "localhost"),
              ("content-type", "application/grpc"), ("te", "trailers")]
    if token:
        fields.append(("authorization", "Bearer " + token))
    return b"".join(hpack_literal(k, v) for k, v in fields)


class RawConnection:
    """One HTTP/2 connection that sends within the flow-control windows the server grants and
    answers SETTINGS and PING; reading DATA is optional (a caller who never reads)."""

    def __init__(self, address):
        host, port = address.split(":")
        self.sock = socket.create_connection((host, int(port)))
        self.sock.sendall(PREFACE + frame(SETTINGS, 0, 0))
        self.buf = b""
        self.conn_window, self.initial_window = 65535, 65535
        self.windows, self.sent, self.ended = {}, {}, set()
        self.closed = False

    def pump_in(self, wait=0.0):
        if self.closed:
            return
        ready, _, _ = select.select([self.sock], [], [], wait)
        if not ready:
            return
        try:
            data = self.sock.recv(1 << 20)
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return
        self.buf += data
        while len(self.buf) >= 9:
            length = int.from_bytes(self.buf[:3], "big")
            if len(self.buf) < 9 + length:
                break
            kind, flags = self.buf[3], self.buf[4]
            stream = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
            payload, self.buf = self.buf[9:9 + length], self.buf[9 + length:]
            if kind == SETTINGS and not flags & ACK:
                for i in range(0, len(payload), 6):
                    key, value = struct.unpack(">HI", payload[i:i + 6])
                    if key == 4:  # SETTINGS_INITIAL_WINDOW_SIZE
                        for s in self.windows:
                            self.windows[s] += value - self.initial_window
                        self.initial_window = value
                self.sock.sendall(frame(SETTINGS, ACK, 0))
            elif kind == WINDOW_UPDATE:
                increment = struct.unpack(">I", payload)[0] & 0x7FFFFFFF
                if stream == 0:
                    self.conn_window += increment
                elif stream in self.windows:
                    self.windows[stream] += increment
            elif kind == PING and not flags & ACK:
                self.sock.sendall(frame(PING, ACK, 0, payload))
            elif kind in (RST_STREAM, HEADERS) and stream:
                self.ended.add(stream)  # refused, reset, or answered (trailers)
                self.windows.pop(stream, None)
            elif kind == GOAWAY:
                self.closed = True

    def open_partial(self, stream, path, token, size):
        """A call whose request message says `size` bytes and never gets them all."""
        self.sock.sendall(frame(HEADERS, END_HEADERS, stream, headers(path, token)))
        self.sock.sendall(frame(DATA, 0, stream, b"\x00" + struct.pack(">I", size)))
        self.windows[stream], self.sent[stream] = self.initial_window - 5, 5
        self.conn_window -= 5

    def pump_out(self, upto):
        """Sends what the windows allow of each open stream's body, up to `upto` bytes each."""
        progressed = False
        for stream in list(self.windows):
            while self.sent[stream] < upto and self.windows.get(stream, 0) > 0 and self.conn_window > 0:
                n = min(16384, upto - self.sent[stream], self.windows[stream], self.conn_window)
                try:
                    self.sock.sendall(frame(DATA, 0, stream, b"\x00" * n))
                except OSError:
                    self.closed = True
                    return progressed
                self.sent[stream] += n
                self.windows[stream] -= n
                self.conn_window -= n
                progressed = True
        return progressed

    def call(self, stream, path, token, message):
        """A complete call whose response this connection will never read."""
        body = b"\x00" + struct.pack(">I", len(message)) + message
        self.sock.sendall(frame(HEADERS, END_HEADERS, stream, headers(path, token)) +
                          frame(DATA, END_STREAM, stream, body))

    def close(self):
        self.sock.close()


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric(port, family, labels=""):
    import urllib.request
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(family) and labels in line and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def protos():
    """The organisations, events and date message modules, generated from proto/ by grpc_tools."""
    out = os.path.join(tempfile.gettempdir(), f"kp-mem-proto-{os.getpid()}")
    if not os.path.exists(out):
        from grpc_tools import protoc
        import grpc_tools
        proto = os.environ.get("KP_PROTO_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../proto"))
        include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
        files = ["khartoum/organisations/v1/organisations.proto", "khartoum/events/v1/events.proto",
                 "khartoum/type/v1/date.proto", "khartoum/type/v1/audit.proto"]
        os.makedirs(out)
        if protoc.main(["protoc", f"-I{proto}", f"-I{include}", f"--python_out={out}", *files]) != 0:
            raise RuntimeError("protoc failed")
        sys.path.insert(0, out)
    from khartoum.organisations.v1 import organisations_pb2
    from khartoum.events.v1 import events_pb2
    from khartoum.type.v1 import date_pb2
    return organisations_pb2, events_pb2, date_pb2


class Stack:
    """The backends and the gateway, authentication required, two reader principals."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="kp-mem-")
        self.procs, self.addr, self.metrics = {}, {}, {}
        self.tokens = {"attacker": "kp_mem_attacker_" + os.urandom(8).hex(),
                       "victim": "kp_mem_victim_" + os.urandom(8).hex(),
                       "editor": "kp_mem_editor_" + os.urandom(8).hex()}
        roles = {"attacker": "reader", "victim": "reader", "editor": "editor"}
        keys = os.path.join(self.dir, "keys.txt")
        with open(keys, "w") as f:
            for who, token in self.tokens.items():
                f.write(f"{hashlib.sha256(token.encode()).hexdigest()} {who} {roles[who]}\n")
        common = ["--plaintext", f"--keys_file={keys}", "--host=127.0.0.1"]
        self._start("organisations", common + [f"--database={self.dir}/o.db"])
        org = f"--organisations_address={self.addr['organisations']}"
        self._start("events", common + [org, f"--database={self.dir}/e.db"])
        self._start("participants", common + [org, f"--events_address={self.addr['events']}",
                                              f"--database={self.dir}/p.db"])
        # The rate limit is not what is tested here (the floods fit in its burst anyway).
        self._start("gateway", common + [org, f"--events_address={self.addr['events']}",
                                         f"--participants_address={self.addr['participants']}", "--rate_limit=0"])

    def _start(self, name, args):
        port_file = os.path.join(self.dir, f"{name}.port")
        self.metrics[name] = free_port()
        with open(os.path.join(self.dir, f"{name}.log"), "w") as log:
            proc = subprocess.Popen([os.path.join(BIN_DIR, f"kp-{name}"), "--port=0", f"--port_file={port_file}",
                                    f"--metrics_port={self.metrics[name]}", *args], stdout=log, stderr=log)
        self.procs[name] = proc
        deadline = time.monotonic() + 30
        while not os.path.exists(port_file):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"kp-{name} did not start; see {self.dir}/{name}.log")
            time.sleep(0.01)
        with open(port_file) as f:
            self.addr[name] = f"127.0.0.1:{f.read().strip()}"

    def channel(self, who):
        token = self.tokens[who]
        creds = grpc.metadata_call_credentials(lambda ctx, cb: cb((("authorization", f"Bearer {token}"),), None))
        # Plaintext with call credentials: gRPC Python allows them only over "local" channel credentials.
        return grpc.secure_channel(self.addr["gateway"], grpc.composite_channel_credentials(
            grpc.local_channel_credentials(), creds))

    def serves(self, who="victim"):
        """A read as `who` through the gateway: it answers (NOT_FOUND is an answer) within 5 s."""
        call = self.channel(who).unary_unary("/khartoum.events.v1.EventService/GetEvent")
        _, ev, _ = protos()
        try:
            call(ev.GetEventRequest(name="events/not-there-1").SerializeToString(), timeout=5)
            return True
        except grpc.RpcError as e:
            return e.code() == grpc.StatusCode.NOT_FOUND

    def stop(self):
        for p in self.procs.values():
            p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            p.wait(timeout=20)
        shutil.rmtree(self.dir, ignore_errors=True)


PARTIAL = 4 * 1024 * 1024 - 1024  # most of a largest request


def flood_partial(address, token, connections, streams, seconds):
    """Partial requests on every stream, sending while the server grants window, for up to
    `seconds` (or until nothing more can be sent): the bytes sent, the connections left open."""
    conns = [RawConnection(address) for _ in range(connections)]
    for c in conns:
        c.pump_in(0.2)
        for k in range(streams):
            c.open_partial(1 + 2 * k, "/khartoum.participants.v1.ParticipantService/ListParticipants", token,
                           PARTIAL + 64)
    deadline = time.monotonic() + seconds
    idle_since = None
    while time.monotonic() < deadline:
        progressed = False
        for c in conns:
            c.pump_in(0)
            progressed |= c.pump_out(PARTIAL)
        if progressed:
            idle_since = None
            continue
        for c in conns:
            c.pump_in(0.02)
        idle_since = idle_since or time.monotonic()
        if time.monotonic() - idle_since > 1.5:  # the server grants no more window
            break
    return sum(sum(c.sent.values()) for c in conns), conns


class MemoryBoundsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack()
        cls.gateway = cls.stack.procs["gateway"].pid

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def test_1_unauthenticated_partial_requests_are_refused_before_their_bodies(self):
        before = rss_mib(self.gateway)
        sent, conns = flood_partial(self.stack.addr["gateway"], None, connections=4, streams=50, seconds=20)
        during = rss_mib(self.gateway)
        refused = sum(len(c.ended) for c in conns)
        for c in conns:
            c.close()
        print(f"unauthenticated: {sent / 2**20:.1f} MiB sent on 200 streams, {refused} streams ended by the "
              f"gateway; gateway RSS {before:.0f} -> {during:.0f} MiB")
        self.assertEqual(refused, 200, "every unauthenticated call is refused at once")
        self.assertLess(sent, 20 * 2**20, "the gateway kept granting window to callers it refused")
        self.assertLess(during - before, 32)
        self.assertTrue(self.stack.serves())

    def test_2_authenticated_partial_requests_are_bounded_per_principal(self):
        before = rss_mib(self.gateway)
        sent, conns = flood_partial(self.stack.addr["gateway"], self.stack.tokens["attacker"], connections=4,
                                    streams=64, seconds=25)
        during = rss_mib(self.gateway)
        serves = self.stack.serves()
        for c in conns:
            c.close()
        print(f"authenticated: {sent / 2**20:.1f} MiB of unfinished requests on 256 streams (1 GiB if all were "
              f"taken); gateway RSS {before:.0f} -> {during:.0f} MiB; another caller served meanwhile: {serves}")
        # 16 requests being read (4 MiB each at most), the other 240 streams at their initial 64 KiB.
        self.assertLess(sent, (16 * 4 + 240 / 16 + 4) * 2**20)
        self.assertLess(during - before, 128)
        self.assertTrue(serves)
        self.assertTrue(self.stack.serves())

    def test_3_responses_nobody_reads_are_bounded_per_principal(self):
        # Large answers: ListEvents pages of big events (descriptions of 40,000 characters).
        org, ev, date = protos()
        editor = self.stack.channel("editor")
        create = editor.unary_unary("/khartoum.organisations.v1.OrganisationService/CreateOrganisation")
        try:
            create(org.CreateOrganisationRequest(organisation_id="mem-host", organisation=org.Organisation(
                display_name="Mem host", kind=org.ORGANISATION_KIND_GOVERNMENT, country_code="KE")).SerializeToString(),
                   timeout=10)
        except grpc.RpcError as e:
            self.assertEqual(e.code(), grpc.StatusCode.ALREADY_EXISTS, e.details())
        create_event = editor.unary_unary("/khartoum.events.v1.EventService/CreateEvent")
        for i in range(30):
            req = ev.CreateEventRequest(event_id=f"mem-big-{i:02d}", event=ev.Event(
                title=f"Big event {i}", kind=ev.EVENT_KIND_THEMATIC_WORKSHOP, description="x" * 40000,
                start_date=date.Date(year=2025, month=1, day=1 + i % 28), end_date=date.Date(year=2025, month=1, day=1 + i % 28),
                hosts=["organisations/mem-host"]))
            try:
                create_event(req.SerializeToString(), timeout=10)
            except grpc.RpcError as e:
                self.assertEqual(e.code(), grpc.StatusCode.ALREADY_EXISTS, e.details())
        # ~1.2 MB a page; 400 calls unread would be ~480 MB.
        before = rss_mib(self.gateway)
        conn = RawConnection(self.stack.addr["gateway"])
        conn.pump_in(0.2)
        for k in range(400):
            page = ev.ListEventsRequest(page_size=30)
            conn.call(1 + 2 * k, "/khartoum.events.v1.EventService/ListEvents", self.stack.tokens["attacker"],
                      page.SerializeToString())
        # Wait until the gateway has answered or refused them all (it cannot send more than the
        # connection's 64 KiB window: the rest it holds, or refuses).
        port = self.stack.metrics["gateway"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            held = metric(port, "kp_gateway_response_bytes_held")
            refused = metric(port, "kp_gateway_responses_refused_total", 'principal="attacker"')
            calls = metric(port, "kp_grpc_server_handled_total", 'method="/khartoum.events.v1.EventService/ListEvents"')
            if calls >= 400 or (refused > 0 and calls + metric(port, "kp_grpc_server_in_flight") >= 400):
                break
            time.sleep(0.2)
        peak = rss_mib(self.gateway)
        served = self.stack.serves("victim")
        print(f"400 unread ListEvents pages: {held / 2**20:.1f} MiB held, {refused:.0f} refused; gateway RSS "
              f"{before:.0f} -> {peak:.0f} MiB; another principal served: {served}")
        self.assertGreater(refused, 0, "the calls beyond the principal's bound must be refused")
        self.assertLessEqual(held, 24 * 2**20 + 4 * 2**20)
        self.assertLess(peak - before, 128)
        self.assertTrue(served)
        conn.close()
        deadline = time.monotonic() + 20
        while metric(port, "kp_gateway_response_bytes_held") > 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(metric(port, "kp_gateway_response_bytes_held"), 0, "held bytes released when the caller left")


if __name__ == "__main__":
    unittest.main(verbosity=2)
