"""The stack the Python integration tests run against: the three backends and kp-gateway, real
processes on free ports, authentication required (a keys file with an attacker reader, a victim
reader and an editor), plus what those tests measure with (resident memory, /metrics).

Used by memory_bounds_test.py and edge_test.py. Raw HTTP/2 is in tools/h2raw.py.
"""
import atexit
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
BIN_DIR = os.environ.get("KP_BIN_DIR", os.path.join(HERE, "../../build/bin"))
TOOLS_DIR = os.path.normpath(os.path.join(HERE, "../../tools"))
if TOOLS_DIR not in sys.path:
    sys.path.insert(0, TOOLS_DIR)


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
    """The sum of a Prometheus family's samples (those whose line contains `labels`)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(family) and labels in line and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def protos():
    """The organisations, events and date message modules, generated from proto/ by grpc_tools."""
    out = os.path.join(tempfile.gettempdir(), f"kp-mem-proto-{os.getpid()}")
    if out not in sys.path:
        if not os.path.exists(out):
            from grpc_tools import protoc
            import grpc_tools
            proto = os.environ.get("KP_PROTO_DIR", os.path.join(HERE, "../../proto"))
            include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
            files = ["khartoum/organisations/v1/organisations.proto", "khartoum/events/v1/events.proto",
                     "khartoum/type/v1/date.proto", "khartoum/type/v1/audit.proto"]
            os.makedirs(out + ".tmp", exist_ok=True)
            if protoc.main(["protoc", f"-I{proto}", f"-I{include}", f"--python_out={out}.tmp", *files]) != 0:
                raise RuntimeError("protoc failed")
            os.replace(out + ".tmp", out)
            atexit.register(shutil.rmtree, out, True)
        sys.path.insert(0, out)
    from khartoum.organisations.v1 import organisations_pb2
    from khartoum.events.v1 import events_pb2
    from khartoum.type.v1 import date_pb2
    return organisations_pb2, events_pb2, date_pb2


class Stack:
    """The backends and the gateway, authentication required, two reader principals and an
    editor (and `principals`: more, name -> the rest of its keys-file line, e.g. "reader rate=0").
    `rate_limit` is the gateway's --rate_limit (None: its default); `gateway_args` are added to
    its flags. The gateway can be restarted alone (restart_gateway) between tests."""

    def __init__(self, rate_limit=0, gateway_args=(), prefix="kp-mem-", principals=None):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.procs, self.addr, self.metrics = {}, {}, {}
        roles = {"attacker": "reader", "victim": "reader", "editor": "editor", **(principals or {})}
        self.tokens = {who: f"kp_mem_{who}_" + os.urandom(8).hex() for who in roles}
        keys = os.path.join(self.dir, "keys.txt")
        with open(keys, "w") as f:
            for who, token in self.tokens.items():
                f.write(f"{hashlib.sha256(token.encode()).hexdigest()} {who} {roles[who]}\n")
        self.common = ["--plaintext", f"--keys_file={keys}", "--host=127.0.0.1"]
        try:
            self._start("organisations", self.common + [f"--database={self.dir}/o.db"])
            org = f"--organisations_address={self.addr['organisations']}"
            self._start("events", self.common + [org, f"--database={self.dir}/e.db"])
            self._start("participants", self.common + [org, f"--events_address={self.addr['events']}",
                                                       f"--database={self.dir}/p.db"])
            self.gateway_args = self.common + [
                org, f"--events_address={self.addr['events']}", f"--participants_address={self.addr['participants']}",
                *([] if rate_limit is None else [f"--rate_limit={rate_limit}"]), *gateway_args]
            self.start_gateway()
        except BaseException:
            self.stop()
            raise

    def _start(self, name, args):
        port_file = os.path.join(self.dir, f"{name}.port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        self.metrics[name] = free_port()
        with open(os.path.join(self.dir, f"{name}.log"), "a") as log:
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

    def start_gateway(self):
        self._start("gateway", self.gateway_args)

    def restart_gateway(self):
        """A fresh gateway process (new port): what one test did to it does not carry over."""
        self._stop(self.procs.pop("gateway"))
        self.start_gateway()

    def channel(self, who, address=None):
        """A channel to `address` (the gateway's by default) that sends `who`'s token."""
        token = self.tokens[who]
        creds = grpc.metadata_call_credentials(lambda ctx, cb: cb((("authorization", f"Bearer {token}"),), None))
        # Plaintext with call credentials: gRPC Python allows them only over "local" channel credentials.
        return grpc.secure_channel(address or self.addr["gateway"], grpc.composite_channel_credentials(
            grpc.local_channel_credentials(), creds))

    def serves(self, who="victim", address=None):
        """A read as `who` through the gateway: it answers (NOT_FOUND is an answer) within 5 s."""
        with self.channel(who, address) as channel:
            call = channel.unary_unary("/khartoum.events.v1.EventService/GetEvent")
            _, ev, _ = protos()
            try:
                call(ev.GetEventRequest(name="events/not-there-1").SerializeToString(), timeout=5)
                return True
            except grpc.RpcError as e:
                return e.code() == grpc.StatusCode.NOT_FOUND

    @staticmethod
    def _stop(proc, timeout=20):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            self._stop(p)
        shutil.rmtree(self.dir, ignore_errors=True)
