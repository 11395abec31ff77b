#!/usr/bin/python3
"""Memory bounds of the gateway against callers who send or read nothing they should.

Real processes on free ports (the three backends and kp-gateway, authentication required), and
a raw HTTP/2 client (tools/h2raw.py: tests need no HTTP/2 library) that:
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
import os
import sys
import time
import unittest

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kp_stack import Stack, metric, protos, rss_mib  # noqa: E402 (also puts tools/ on the path)
from h2raw import RawConnection  # noqa: E402


PARTIAL = 4 * 1024 * 1024 - 1024  # most of a largest request


def flood_partial(address, token, connections, streams, seconds):
    """Partial requests on every stream, sending while the server grants window, for up to
    `seconds` (or until nothing more can be sent): the bytes sent, the connections left open."""
    conns = [RawConnection(address, read=False) for _ in range(connections)]
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
        conn = RawConnection(self.stack.addr["gateway"], read=False)
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
