"""Raw HTTP/2 and gRPC framing on plain sockets, for tests and tools/h2attack.py (stdlib only).

Everything a client needs to misbehave on purpose, which no HTTP/2 library lets it do: send
within (or without) the windows the server grants, never read, reset its own streams, flood
PING or SETTINGS frames. It decodes what the server answers (HPACK, Huffman included) so the
outcome of each stream is known: answered with a grpc-status, reset with an HTTP/2 error code,
or still open; and it records every GOAWAY.

    conn = RawConnection("127.0.0.1:50050", settings={SETTINGS_INITIAL_WINDOW_SIZE: 0})
    conn.call(1, "/pkg.Service/Method", token, request_bytes)
    conn.pump_in(0.5)
    conn.streams[1].status   # None while open; the grpc-status once answered
"""
import select
import socket
import struct

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
FRAME_NAMES = ["DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE", "PING", "GOAWAY",
               "WINDOW_UPDATE", "CONTINUATION"]
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 1, 1, 4, 8, 0x20
SETTINGS_HEADER_TABLE_SIZE, SETTINGS_MAX_CONCURRENT_STREAMS, SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_FRAME_SIZE = 1, 3, 4, 5
ERROR_NAMES = ["NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
               "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR",
               "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"]
NO_ERROR, REFUSED_STREAM, CANCEL = 0, 7, 8
GRPC_CODES = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
              "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
              "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"]


def error_name(code):
    return ERROR_NAMES[code] if code < len(ERROR_NAMES) else f"0x{code:x}"


def grpc_code_name(code):
    return GRPC_CODES[code] if 0 <= code < len(GRPC_CODES) else str(code)


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


# --- protobuf and gRPC messages, by hand -------------------------------------------------------

def varint(value):
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def pb_string(field, value):
    """A length-delimited protobuf field (string, bytes or an embedded message)."""
    value = value.encode() if isinstance(value, str) else value
    return varint(field << 3 | 2) + varint(len(value)) + value


def pb_fields(data):
    """The fields of a protobuf message: [(number, value)], value an int or bytes."""
    fields, i = [], 0

    def read_varint():
        nonlocal i
        value = shift = 0
        while True:
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value
    while i < len(data):
        key = read_varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            fields.append((number, read_varint()))
        elif wire == 1:
            fields.append((number, data[i:i + 8]))
            i += 8
        elif wire == 2:
            n = read_varint()
            fields.append((number, data[i:i + n]))
            i += n
        elif wire == 5:
            fields.append((number, data[i:i + 4]))
            i += 4
        else:
            raise ValueError(f"wire type {wire}")
    return fields


def grpc_frame(message, compressed=False):
    """A gRPC length-prefixed message."""
    return bytes([1 if compressed else 0]) + struct.pack(">I", len(message)) + message


def grpc_messages(body):
    """The messages in a response body (uncompressed)."""
    out = []
    while len(body) >= 5:
        n = struct.unpack(">I", body[1:5])[0]
        out.append(bytes(body[5:5 + n]))
        body = body[5 + n:]
    return out


# --- HPACK (RFC 7541) ---------------------------------------------------------------------------

STATIC_TABLE = [(":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"),
                (":path", "/index.html"), (":scheme", "http"), (":scheme", "https"), (":status", "200"),
                (":status", "204"), (":status", "206"), (":status", "304"), (":status", "400"), (":status", "404"),
                (":status", "500"), ("accept-charset", ""), ("accept-encoding", "gzip, deflate"),
                ("accept-language", ""), ("accept-ranges", ""), ("accept", ""), ("access-control-allow-origin", ""),
                ("age", ""), ("allow", ""), ("authorization", ""), ("cache-control", ""),
                ("content-disposition", ""), ("content-encoding", ""), ("content-language", ""),
                ("content-length", ""), ("content-location", ""), ("content-range", ""), ("content-type", ""),
                ("cookie", ""), ("date", ""), ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""),
                ("host", ""), ("if-match", ""), ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""),
                ("if-unmodified-since", ""), ("last-modified", ""), ("link", ""), ("location", ""),
                ("max-forwards", ""), ("proxy-authenticate", ""), ("proxy-authorization", ""), ("range", ""),
                ("referer", ""), ("refresh", ""), ("retry-after", ""), ("server", ""), ("set-cookie", ""),
                ("strict-transport-security", ""), ("transfer-encoding", ""), ("user-agent", ""), ("vary", ""),
                ("via", ""), ("www-authenticate", "")]

# The code lengths of RFC 7541 Appendix B, symbols 0..256 (EOS). The code is canonical (codes of
# one length are consecutive, in symbol order), so the lengths determine it.
_HUFFMAN_LENGTHS = bytes([
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28,
    28, 28, 28, 28,
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23,
    22, 23, 23, 24,
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22,
    23, 22, 22, 23,
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26,
    28, 27, 27, 27,
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27,
    27, 27, 27, 26,
    30])


def _huffman_codes():
    codes, code, previous = {}, 0, 0
    for symbol in sorted(range(257), key=lambda s: (_HUFFMAN_LENGTHS[s], s)):
        length = _HUFFMAN_LENGTHS[symbol]
        code <<= length - previous
        codes[(length, code)] = symbol
        code, previous = code + 1, length
    return codes


_HUFFMAN = _huffman_codes()


def huffman_decode(data):
    out, code, length = bytearray(), 0, 0
    for byte in data:
        for bit in range(7, -1, -1):
            code, length = code << 1 | (byte >> bit & 1), length + 1
            symbol = _HUFFMAN.get((length, code))
            if symbol is not None:
                if symbol == 256:
                    raise ValueError("EOS in a Huffman string")
                out.append(symbol)
                code = length = 0
    if length > 7 or code != (1 << length) - 1:
        raise ValueError("bad Huffman padding")
    return bytes(out)


def hpack_int(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out, value = bytearray([first | limit]), value - limit
    while value >= 128:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_literal(name, value):
    """A header as an HPACK literal without indexing, new name, no Huffman."""
    name = name.encode() if isinstance(name, str) else name
    value = value.encode() if isinstance(value, str) else value
    return b"\x00" + hpack_int(len(name), 7) + name + hpack_int(len(value), 7) + value


def headers(path, token=None, extra=()):
    """The header block of a gRPC call (no Huffman, no indexing: the same bytes every time)."""
    fields = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "localhost"),
              ("content-type", "application/grpc"), ("te", "trailers"), *extra]
    if token:
        fields.append(("authorization", "Bearer " + token))
    return b"".join(hpack_literal(k, v) for k, v in fields)


class HpackDecoder:
    def __init__(self, max_size=4096):
        self.table, self.size, self.max_size = [], 0, max_size

    def _entry(self, index):
        if index <= 0:
            raise ValueError("HPACK index 0")
        if index <= len(STATIC_TABLE):
            return STATIC_TABLE[index - 1]
        return self.table[index - len(STATIC_TABLE) - 1]

    def _add(self, name, value):
        self.table.insert(0, (name, value))
        self.size += len(name) + len(value) + 32
        self._evict()

    def _evict(self):
        while self.size > self.max_size and self.table:
            name, value = self.table.pop()
            self.size -= len(name) + len(value) + 32

    def decode(self, block):
        out, i = [], 0

        def integer(prefix_bits):
            nonlocal i
            limit = (1 << prefix_bits) - 1
            value = block[i] & limit
            i += 1
            if value < limit:
                return value
            shift = 0
            while True:
                byte = block[i]
                i += 1
                value += (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    return value

        def string():
            nonlocal i
            huffman = block[i] & 0x80
            n = integer(7)
            raw = bytes(block[i:i + n])
            i += n
            return (huffman_decode(raw) if huffman else raw).decode("latin-1")
        while i < len(block):
            byte = block[i]
            if byte & 0x80:  # indexed
                out.append(self._entry(integer(7)))
            elif byte & 0x40:  # literal, incremental indexing
                index = integer(6)
                name = self._entry(index)[0] if index else string()
                value = string()
                self._add(name, value)
                out.append((name, value))
            elif byte & 0x20:  # dynamic table size update
                self.max_size = integer(5)
                self._evict()
            else:  # literal without indexing, or never indexed
                index = integer(4)
                name = self._entry(index)[0] if index else string()
                out.append((name, string()))
        return out


# --- a connection -------------------------------------------------------------------------------

class Stream:
    """What the server did with one stream."""
    __slots__ = ("headers", "status", "message", "reset", "ended", "data_bytes", "data", "opened")

    def __init__(self):
        self.headers, self.status, self.message, self.reset = [], None, None, None
        self.ended, self.data_bytes, self.data, self.opened = False, 0, bytearray(), 0.0


def _percent_decode(text):
    import urllib.parse
    return urllib.parse.unquote(text)


# The local address connections are made from (None: the system's choice). Attack tools set it
# to another loopback address (127.0.0.2) so that an edge's per-address limits tell the
# attacker from the other callers of a test.
SOURCE_ADDRESS = None


class RawConnection:
    """One HTTP/2 connection that sends within the flow-control windows the server grants and
    answers SETTINGS and PING. Reading DATA is optional (read=False: a caller who never reads,
    who sends no WINDOW_UPDATE). `settings` are sent in the preface (e.g. an initial window of 0)."""

    def __init__(self, address, settings=None, read=True, keep_data=1 << 16, timeout=10):
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout,
                                             source_address=(SOURCE_ADDRESS, 0) if SOURCE_ADDRESS else None)
        self.sock.setblocking(False)
        self.out = bytearray()
        self.buf = bytearray()
        self.read, self.keep_data = read, keep_data
        self.hpack = HpackDecoder()
        self.header_block, self.header_stream, self.header_flags = None, 0, 0
        self.conn_window, self.initial_window, self.max_frame = 65535, 65535, 16384
        self.server_settings = {}
        self.windows, self.sent, self.pending = {}, {}, {}
        self.streams = {}
        self.ended = set()  # streams the server ended: answered (END_STREAM) or reset
        self.closed = False  # the socket is closed (by either side)
        self.close_reason = None  # "closed by the server", "<error> ..." (e.g. a TCP reset), "closed here"
        self.goaways = []  # (last stream id, error code, debug data) as received
        self.frames_sent, self.frames_received = {}, {}
        self.bytes_sent = 0
        self.pings_acked = self.settings_acked = 0
        payload = b"".join(struct.pack(">HI", k, v) for k, v in (settings or {}).items())
        self.send(PREFACE, count=False)
        self.send(frame(SETTINGS, 0, 0, payload))

    # Output is buffered and written as the socket takes it, so that a server which stops
    # reading never blocks this client from reading what it sends (and answering its PINGs).
    def send(self, data, count=True):
        if count:
            kind = data[3]
            self.frames_sent[kind] = self.frames_sent.get(kind, 0) + 1
        self.out += data
        self.flush()

    def send_frames(self, data, counts):
        """Several frames at once; `counts`: how many of each type they are ({HEADERS: 2, ...})."""
        for kind, n in counts.items():
            self.frames_sent[kind] = self.frames_sent.get(kind, 0) + n
        self.out += data
        self.flush()

    def flush(self):
        while self.out and not self.closed:
            try:
                n = self.sock.send(self.out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self._close(f"send: {e.strerror or e}")
                return
            del self.out[:n]
            self.bytes_sent += n

    def _close(self, reason="closed here"):
        if not self.closed:
            self.closed, self.close_reason = True, reason
            try:
                self.sock.close()
            except OSError:
                pass

    @property
    def goaway(self):
        return bool(self.goaways)

    def fileno(self):
        return self.sock.fileno()

    def pump_in(self, wait=0.0):
        """Writes what is buffered and reads what has arrived, waiting up to `wait` seconds."""
        self.flush()
        if self.closed:  # perhaps by that flush
            return
        ready, _, _ = select.select([self.sock], [self.sock] if self.out else [], [], wait)
        self.flush()
        if ready:
            self.on_readable()

    def on_readable(self):
        if self.closed:
            return
        for _ in range(64):  # bounded: a fast server cannot keep this loop forever
            try:
                data = self.sock.recv(1 << 20)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                self._close(f"recv: {e.strerror or e}")
                break
            if not data:
                self._close("closed by the server")
                break
            self.buf += data
            self._frames()
        self.flush()

    def _stream(self, stream):
        s = self.streams.get(stream)
        if s is None:
            s = self.streams[stream] = Stream()
        return s

    def _end(self, stream):
        s = self._stream(stream)
        s.ended = True
        self.ended.add(stream)
        self.windows.pop(stream, None)
        self.pending.pop(stream, None)

    def _frames(self):
        buf, pos = self.buf, 0
        while len(buf) - pos >= 9:
            length = int.from_bytes(buf[pos:pos + 3], "big")
            if len(buf) - pos < 9 + length:
                break
            kind, flags = buf[pos + 3], buf[pos + 4]
            stream = int.from_bytes(buf[pos + 5:pos + 9], "big") & 0x7FFFFFFF
            payload = bytes(buf[pos + 9:pos + 9 + length])
            pos += 9 + length
            self.frames_received[kind] = self.frames_received.get(kind, 0) + 1
            self._frame(kind, flags, stream, payload)
        del buf[:pos]

    def _frame(self, kind, flags, stream, payload):
        if kind == SETTINGS:
            if flags & ACK:
                self.settings_acked += 1
                return
            for i in range(0, len(payload) - 5, 6):
                key, value = struct.unpack(">HI", payload[i:i + 6])
                self.server_settings[key] = value
                if key == SETTINGS_INITIAL_WINDOW_SIZE:
                    for s in self.windows:
                        self.windows[s] += value - self.initial_window
                    self.initial_window = value
                elif key == SETTINGS_MAX_FRAME_SIZE:
                    self.max_frame = value
            self.send(frame(SETTINGS, ACK, 0))
        elif kind == PING:
            if flags & ACK:
                self.pings_acked += 1
            else:
                self.send(frame(PING, ACK, 0, payload))
        elif kind == WINDOW_UPDATE:
            increment = struct.unpack(">I", payload)[0] & 0x7FFFFFFF
            if stream == 0:
                self.conn_window += increment
            elif stream in self.windows:
                self.windows[stream] += increment
        elif kind in (HEADERS, CONTINUATION):
            if kind == HEADERS:
                body = payload
                if flags & PADDED:
                    body = body[1:len(body) - body[0]]
                if flags & PRIORITY_FLAG:
                    body = body[5:]
                self.header_block, self.header_stream, self.header_flags = bytearray(body), stream, flags
            elif self.header_block is not None:
                self.header_block += payload
            if flags & END_HEADERS and self.header_block is not None:
                fields = self.hpack.decode(bytes(self.header_block))
                s = self._stream(self.header_stream)
                s.headers += fields
                for name, value in fields:
                    if name == "grpc-status":
                        s.status = int(value)
                    elif name == "grpc-message":
                        s.message = _percent_decode(value)
                if self.header_flags & END_STREAM:
                    self._end(self.header_stream)
                self.header_block = None
        elif kind == DATA:
            s = self._stream(stream)
            s.data_bytes += len(payload)
            if len(s.data) < self.keep_data:
                s.data += payload[:self.keep_data - len(s.data)]
            if self.read and payload:
                self.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", len(payload))))
                if not flags & END_STREAM:
                    self.send(frame(WINDOW_UPDATE, 0, stream, struct.pack(">I", len(payload))))
            if flags & END_STREAM:
                self._end(stream)
        elif kind == RST_STREAM:
            self._stream(stream).reset = struct.unpack(">I", payload)[0]
            self._end(stream)
        elif kind == GOAWAY:
            last, code = struct.unpack(">II", payload[:8])
            self.goaways.append((last & 0x7FFFFFFF, code, payload[8:].decode("latin-1")))

    # --- calls ---

    def start(self, stream, path, token=None, extra=(), block=None):
        """HEADERS for a new call; its body follows with `body` (or `open_partial`)."""
        self.send(frame(HEADERS, END_HEADERS, stream, block or headers(path, token, extra)))
        self._stream(stream).opened = 1
        self.windows[stream], self.sent[stream] = self.initial_window, 0

    def body(self, stream, data, end_stream=True):
        """Queues a request body; pump_out sends it as the windows allow."""
        self.pending[stream] = [memoryview(data), 0, end_stream]
        self.pump_out()

    def open_partial(self, stream, path, token, size):
        """A call whose request message says `size` bytes and never gets them all: after the
        5-byte prefix, pump_out sends zeros as the windows allow."""
        self.start(stream, path, token)
        self.send(frame(DATA, 0, stream, b"\x00" + struct.pack(">I", size)))
        self.windows[stream] -= 5
        self.sent[stream] = 5
        self.conn_window -= 5
        self.pending[stream] = [None, 0, False]

    def pump_out(self, upto=None):
        """Sends what the windows allow of each open stream's queued body (of zero filler, up
        to `upto` bytes a stream); True if anything was sent."""
        progressed = False
        for stream in list(self.pending):
            source, offset, end_stream = self.pending[stream]
            while not self.closed and self.windows.get(stream, 0) > 0 and self.conn_window > 0:
                left = (len(source) - offset) if source is not None else (upto - self.sent[stream] if upto else 0)
                if left <= 0:
                    break
                n = min(self.max_frame, left, self.windows[stream], self.conn_window)
                chunk = bytes(source[offset:offset + n]) if source is not None else b"\x00" * n
                offset += n
                last = source is not None and offset == len(source) and end_stream
                self.send(frame(DATA, END_STREAM if last else 0, stream, chunk))
                self.sent[stream] += n
                self.windows[stream] -= n
                self.conn_window -= n
                progressed = True
            if stream in self.pending:
                self.pending[stream][1] = offset
                if source is not None and offset == len(source):
                    if len(source) == 0 and end_stream:
                        self.send(frame(DATA, END_STREAM, stream))
                    del self.pending[stream]
        return progressed

    def unsent(self):
        """Request bytes queued and not sent yet (over all streams)."""
        return sum(len(p[0]) - p[1] for p in self.pending.values() if p[0] is not None)

    def call(self, stream, path, token, message, extra=(), compressed=False):
        """A complete unary call (request sent at once: it must fit the initial window)."""
        self.start(stream, path, token, extra)
        body = grpc_frame(message, compressed)
        self.send(frame(DATA, END_STREAM, stream, body))
        self.windows[stream] -= len(body)
        self.conn_window -= len(body)

    def close(self):
        self._close()

    # --- what happened ---

    def outcomes(self, every_stream=False):
        """Counts of stream outcomes: answered by grpc-status name, reset by error code, open (of
        the streams opened with start(); every_stream: of all the server sent frames on)."""
        answered, reset, opened = {}, {}, 0
        for s in self.streams.values():
            if not s.opened and not every_stream:
                continue
            if s.status is not None and s.ended:  # trailers (perhaps followed by RST_STREAM NO_ERROR)
                answered[grpc_code_name(s.status)] = answered.get(grpc_code_name(s.status), 0) + 1
            elif s.reset is not None:
                reset[error_name(s.reset)] = reset.get(error_name(s.reset), 0) + 1
            elif s.ended:
                answered["no grpc-status"] = answered.get("no grpc-status", 0) + 1
            else:
                opened += 1
        return {"answered": answered, "reset": reset, "open": opened}


def pump_all(conns, wait):
    """Flushes and reads every connection, waiting up to `wait` seconds for any to be ready."""
    for c in conns:
        c.flush()
    live = [c for c in conns if not c.closed]  # after the flushes, which may find a socket closed
    if not live:
        return
    readable, _, _ = select.select(live, [c for c in live if c.out], [], wait)
    for c in live:
        c.flush()
    for c in readable:
        c.on_readable()


def merge_counts(target, counts):
    for k, v in counts.items():
        target[k] = target.get(k, 0) + v
    return target
