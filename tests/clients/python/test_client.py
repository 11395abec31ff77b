#!/usr/bin/python3
"""A client in another language: Python stubs generated from proto/ by Debian's
python3-grpc-tools, run against the real services (started here on free ports).

Environment: KP_BIN_DIR (built binaries), KP_PROTO_DIR (proto root). KP_VIA_GATEWAY=1 also
starts redis-server and kp-gateway and sends every call through the gateway's one port.
KP_TARGETS="organisations=HOST:PORT,events=...,participants=...,gateway=..." starts nothing and
calls servers already running (the container image's, say: tests/deploy/suite_from_image.sh),
through the gateway with KP_VIA_GATEWAY=1.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

PROTO_DIR = os.environ.get("KP_PROTO_DIR", os.path.join(os.path.dirname(__file__), "../../../proto"))
BIN_DIR = os.environ.get("KP_BIN_DIR", os.path.join(os.path.dirname(__file__), "../../../build/bin"))


def generate_stubs(out_dir):
    from grpc_tools import protoc
    protos = []
    for root, _, files in os.walk(PROTO_DIR):
        if os.path.relpath(root, PROTO_DIR).startswith("grpc"):
            continue  # grpc.health.v1 would shadow the grpc package; health is called generically
        for f in files:
            if f.endswith(".proto"):
                protos.append(os.path.relpath(os.path.join(root, f), PROTO_DIR))
    well_known = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    includes = [f"-I{PROTO_DIR}"]
    for candidate in (well_known, "/usr/include"):
        if os.path.isdir(candidate):
            includes.append(f"-I{candidate}")
    rc = protoc.main(["protoc", *includes, f"--python_out={out_dir}", f"--grpc_python_out={out_dir}", *protos])
    if rc != 0:
        raise RuntimeError(f"protoc failed with {rc}")
    local = os.path.join(os.path.dirname(os.path.abspath(__file__)), "protos")
    rc = protoc.main(["protoc", f"-I{local}", f"--python_out={out_dir}", f"--grpc_python_out={out_dir}",
                      "kp_reflection/reflection.proto"])
    if rc != 0:
        raise RuntimeError(f"protoc failed with {rc}")
    sys.path.insert(0, out_dir)


STUB_DIR = tempfile.mkdtemp(prefix="kp-py-stubs-")
generate_stubs(STUB_DIR)

import grpc  # noqa: E402
from google.rpc import error_details_pb2, status_pb2  # noqa: E402
from khartoum.events.v1 import events_pb2, events_pb2_grpc  # noqa: E402
from khartoum.organisations.v1 import organisations_pb2, organisations_pb2_grpc  # noqa: E402
from khartoum.participants.v1 import participants_pb2, participants_pb2_grpc  # noqa: E402
from khartoum.type.v1 import date_pb2  # noqa: E402
from khartoum.gateway.v1 import portal_pb2, portal_pb2_grpc  # noqa: E402
from kp_reflection import reflection_pb2, reflection_pb2_grpc  # noqa: E402
from google.protobuf import field_mask_pb2  # noqa: E402


def wait_serving(address, timeout=30.0):
    """Polls grpc.health.v1.Health/Check (an empty request; b"\\x08\\x01" is SERVING)."""
    deadline = time.monotonic() + timeout
    check = grpc.insecure_channel(address).unary_unary("/grpc.health.v1.Health/Check")
    while time.monotonic() < deadline:
        try:
            if check(b"", timeout=1, wait_for_ready=True) == b"\x08\x01":
                return
        except grpc.RpcError:
            pass
    raise RuntimeError(f"{address} not serving")


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Services:
    """Starts the three backends on free ports (and, via the gateway, Redis and kp-gateway)."""

    def __init__(self, via_gateway):
        self.procs = []
        self.dir = tempfile.mkdtemp(prefix="kp-py-")
        self.addr = {}
        targets = os.environ.get("KP_TARGETS")
        if targets:
            self.addr = dict(t.split("=", 1) for t in targets.split(","))
            if via_gateway:
                for name in ("organisations", "events", "participants"):
                    self.addr[name] = self.addr["gateway"]
            for a in self.addr.values():
                wait_serving(a)
            return
        redis = []
        if via_gateway:
            port = free_port()
            self.procs.append(subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            redis = [f"--redis_address=127.0.0.1:{port}"]
        self._start("organisations", redis)
        org = f"--organisations_address={self.addr['organisations']}"
        self._start("events", [org, *redis])
        self._start("participants", [org, f"--events_address={self.addr['events']}", *redis])
        if via_gateway:
            self._start("gateway", [org, f"--events_address={self.addr['events']}",
                                    f"--participants_address={self.addr['participants']}", *redis], db=False)
            for name in ("organisations", "events", "participants"):
                self.addr[name] = self.addr["gateway"]
        for a in self.addr.values():
            wait_serving(a)

    def _start(self, name, args, db=True):
        port_file = os.path.join(self.dir, f"{name}.port")
        with open(os.path.join(self.dir, f"{name}.log"), "w") as log:
            proc = subprocess.Popen(
                [os.path.join(BIN_DIR, f"kp-{name}"), "--port=0", "--host=127.0.0.1", f"--port_file={port_file}",
                 "--plaintext", "--auth=disabled", "--metrics_port=0",
                 *([f"--database={self.dir}/{name}.db"] if db else []), *args], stdout=log, stderr=log)
        self.procs.append(proc)
        deadline = time.monotonic() + 30
        while not os.path.exists(port_file):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"kp-{name} did not start; see {self.dir}/{name}.log")
            time.sleep(0.01)
        self.addr[name] = f"127.0.0.1:{open(port_file).read().strip()}"

    def stop(self):
        for p in reversed(self.procs):
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            p.wait(timeout=15)
        shutil.rmtree(self.dir, ignore_errors=True)


def bad_request_fields(error):
    """The field paths of the google.rpc.BadRequest in a failed call's trailers."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad_request = error_details_pb2.BadRequest()
                    detail.Unpack(bad_request)
                    return [v.field for v in bad_request.field_violations]
    return []


class PythonClientTest(unittest.TestCase):
    VIA_GATEWAY = os.environ.get("KP_VIA_GATEWAY") == "1"

    @classmethod
    def setUpClass(cls):
        cls.services = Services(cls.VIA_GATEWAY)
        cls.orgs = organisations_pb2_grpc.OrganisationServiceStub(grpc.insecure_channel(cls.services.addr["organisations"]))
        cls.events = events_pb2_grpc.EventServiceStub(grpc.insecure_channel(cls.services.addr["events"]))
        cls.people = participants_pb2_grpc.ParticipantServiceStub(grpc.insecure_channel(cls.services.addr["participants"]))
        cls.tag = uuid.uuid4().hex[:8]

    @classmethod
    def tearDownClass(cls):
        cls.services.stop()

    def create_org(self, suffix, country="KE"):
        return self.orgs.CreateOrganisation(organisations_pb2.CreateOrganisationRequest(
            organisation_id=f"py-{self.tag}-{suffix}",
            organisation=organisations_pb2.Organisation(
                display_name=f"Python {suffix}", acronym=f"PY{self.tag}",
                kind=organisations_pb2.ORGANISATION_KIND_GOVERNMENT, country_code=country)), timeout=10).organisation

    def test_create_get_list_filter(self):
        kenya = self.create_org("kenya")
        germany = self.create_org("germany", "DE")
        got = self.orgs.GetOrganisation(organisations_pb2.GetOrganisationRequest(name=kenya.name), timeout=10)
        self.assertEqual(got.organisation.display_name, "Python kenya")
        listed = self.orgs.ListOrganisations(organisations_pb2.ListOrganisationsRequest(
            filter=f'acronym = "PY{self.tag}" AND country_code = "DE"'), timeout=10)
        self.assertEqual([o.name for o in listed.organisations], [germany.name])

        event = self.events.CreateEvent(events_pb2.CreateEventRequest(event=events_pb2.Event(
            title="Python workshop", kind=events_pb2.EVENT_KIND_THEMATIC_WORKSHOP,
            start_date=date_pb2.Date(year=2024, month=2, day=7), end_date=date_pb2.Date(year=2024, month=2, day=8),
            hosts=[kenya.name], co_hosts=[germany.name], capacity=2)), timeout=10).event
        self.assertEqual(event.level, events_pb2.EVENT_LEVEL_TECHNICAL)
        found = self.events.ListEvents(events_pb2.ListEventsRequest(
            filter=f'kind = THEMATIC_WORKSHOP AND (hosts:"{kenya.name}" OR co_hosts:"{kenya.name}")'), timeout=10)
        self.assertEqual([e.name for e in found.events], [event.name])

        person = self.people.CreateParticipant(participants_pb2.CreateParticipantRequest(
            participant=participants_pb2.Participant(given_name="Selam", family_name="Tesfaye",
                                                     organisation=kenya.name, country_code="KE")), timeout=10).participant
        reg = self.people.CreateRegistration(participants_pb2.CreateRegistrationRequest(
            registration=participants_pb2.Registration(event=event.name, participant=person.name,
                                                       role=participants_pb2.REGISTRATION_ROLE_SPEAKER)), timeout=10)
        self.assertEqual(reg.registration.status, participants_pb2.REGISTRATION_STATUS_REGISTERED)
        summary = self.people.SummarizeRegistrations(
            participants_pb2.SummarizeRegistrationsRequest(events=[event.name]), timeout=10).summaries[0]
        self.assertEqual(summary.total, 1)
        self.assertEqual(summary.by_role["REGISTRATION_ROLE_SPEAKER"], 1)

    def test_update_with_field_mask_and_stale_etag(self):
        org = self.create_org("upd")
        updated = self.orgs.UpdateOrganisation(organisations_pb2.UpdateOrganisationRequest(
            organisation=organisations_pb2.Organisation(name=org.name, display_name="Renamed", etag=org.etag),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"])), timeout=10).organisation
        self.assertEqual(updated.display_name, "Renamed")
        self.assertEqual(updated.country_code, "KE")
        with self.assertRaises(grpc.RpcError) as ctx:
            self.orgs.UpdateOrganisation(organisations_pb2.UpdateOrganisationRequest(
                organisation=organisations_pb2.Organisation(name=org.name, display_name="Again", etag=org.etag),
                update_mask=field_mask_pb2.FieldMask(paths=["display_name"])), timeout=10)
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.ABORTED)

    def test_rejected_request_carries_bad_request_details(self):
        with self.assertRaises(grpc.RpcError) as ctx:
            self.orgs.CreateOrganisation(organisations_pb2.CreateOrganisationRequest(
                organisation_id="Bad Id", organisation=organisations_pb2.Organisation(
                    kind=organisations_pb2.ORGANISATION_KIND_GOVERNMENT, country_code="XX")), timeout=10)
        err = ctx.exception
        self.assertEqual(err.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(sorted(bad_request_fields(err)),
                         ["organisation.country_code", "organisation.display_name", "organisation_id"])

    def test_reflection_lists_the_services(self):
        stub = reflection_pb2_grpc.ServerReflectionStub(grpc.insecure_channel(self.services.addr["events"]))
        responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
        names = {s.name for r in responses for s in r.list_services_response.service}
        expected = {"khartoum.events.v1.EventService", "grpc.health.v1.Health"}
        if self.VIA_GATEWAY:
            expected |= {"khartoum.gateway.v1.PortalService", "khartoum.organisations.v1.OrganisationService",
                         "khartoum.participants.v1.ParticipantService"}
        self.assertTrue(expected <= names, f"{expected - names} missing from {names}")

    def test_portal_event_overview(self):
        if not self.VIA_GATEWAY:
            self.skipTest("the portal is served by the gateway")
        kenya = self.create_org("portal")
        event = self.events.CreateEvent(events_pb2.CreateEventRequest(event=events_pb2.Event(
            title="Portal workshop", kind=events_pb2.EVENT_KIND_TRAINING,
            start_date=date_pb2.Date(year=2025, month=3, day=1), end_date=date_pb2.Date(year=2025, month=3, day=2),
            hosts=[kenya.name])), timeout=10).event
        for i in range(3):
            person = self.people.CreateParticipant(participants_pb2.CreateParticipantRequest(
                participant=participants_pb2.Participant(given_name="P", family_name=str(i), organisation=kenya.name,
                                                         country_code="KE")), timeout=10).participant
            self.people.CreateRegistration(participants_pb2.CreateRegistrationRequest(
                registration=participants_pb2.Registration(event=event.name, participant=person.name,
                                                           role=participants_pb2.REGISTRATION_ROLE_TRAINEE)), timeout=10)
        portal = portal_pb2_grpc.PortalServiceStub(grpc.insecure_channel(self.services.addr["gateway"]))
        overview = portal.GetEventOverview(portal_pb2.GetEventOverviewRequest(name=event.name), timeout=10)
        self.assertEqual(len(overview.attendees), 3)
        self.assertEqual(overview.stats.total, 3)
        self.assertEqual([h.display_name for h in overview.hosts], ["Python portal"])
        self.assertEqual(overview.attendees[0].organisation_display_name, "Python portal")

    def test_bad_filter_names_the_position(self):
        with self.assertRaises(grpc.RpcError) as ctx:
            self.events.ListEvents(events_pb2.ListEventsRequest(filter="kind = NOT_A_KIND"), timeout=10)
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("position 8", ctx.exception.details())
        self.assertEqual(bad_request_fields(ctx.exception), ["filter"])


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    shutil.rmtree(STUB_DIR, ignore_errors=True)
    sys.exit(0 if result.wasSuccessful() else 1)
