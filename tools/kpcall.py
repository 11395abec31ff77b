#!/usr/bin/python3
"""kpcall: call any Khartoum Process RPC with a JSON request, like grpcurl.

  tools/kpcall.py ADDRESS SERVICE/METHOD [JSON]
  tools/kpcall.py localhost:50052 khartoum.events.v1.EventService/ListEvents '{"filter": "kind = TRAINING"}'
  tools/kpcall.py --wait ADDRESS [SECONDS]     exit 0 once the server's health is SERVING
  tools/kpcall.py -v ADDRESS SERVICE/METHOD [JSON]   also print the response's headers and
                                                     trailers (x-kp-cache, x-kp-view) on stderr

The bearer token comes from KP_TOKEN (scripts/dev up prints one per role).

Stubs are generated from proto/ (Debian's python3-grpc-tools) into a cache directory.
Failures print the status code, message and google.rpc details, and exit 1.
"""
import hashlib
import importlib
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROTO_DIR = os.path.join(ROOT, "proto")


def health_check(address, timeout):
    import grpc
    deadline = time.monotonic() + timeout
    check = grpc.insecure_channel(address).unary_unary("/grpc.health.v1.Health/Check")
    while time.monotonic() < deadline:
        try:
            if check(b"", timeout=1, wait_for_ready=True) == b"\x08\x01":  # status: SERVING
                return True
        except grpc.RpcError:
            pass
    return False


def load_stubs():
    protos = []
    for root, _, files in os.walk(PROTO_DIR):
        rel = os.path.relpath(root, PROTO_DIR)
        if rel.startswith("grpc"):
            continue
        protos += [os.path.join(rel, f) for f in files if f.endswith(".proto")]
    digest = hashlib.sha256()
    for p in sorted(protos):
        digest.update(open(os.path.join(PROTO_DIR, p), "rb").read())
    cache = os.path.join(os.environ.get("KP_STUB_CACHE", os.path.join(ROOT, "var", "py-stubs")),
                         digest.hexdigest()[:16])
    if not os.path.isdir(cache):
        from grpc_tools import protoc
        os.makedirs(cache + ".tmp", exist_ok=True)
        well_known = os.path.join(os.path.dirname(protoc.__file__), "_proto")
        if protoc.main(["protoc", f"-I{PROTO_DIR}", f"-I{well_known}", f"--python_out={cache}.tmp", *protos]):
            sys.exit("kpcall: protoc failed")
        os.replace(cache + ".tmp", cache)
    sys.path.insert(0, cache)
    for p in protos:
        importlib.import_module(p[:-len(".proto")].replace("/", ".") + "_pb2")


def main(argv):
    if len(argv) >= 2 and argv[0] == "--wait":
        ok = health_check(argv[1], float(argv[2]) if len(argv) > 2 else 30.0)
        return 0 if ok else 1
    verbose = bool(argv) and argv[0] == "-v"
    if verbose:
        argv = argv[1:]
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    import grpc
    from google.protobuf import descriptor_pool, json_format
    try:
        from google.protobuf import message_factory
        get_class = message_factory.GetMessageClass
    except (ImportError, AttributeError):
        from google.protobuf import symbol_database
        get_class = lambda d: symbol_database.Default().GetPrototype(d)  # noqa: E731
    load_stubs()
    address, path = argv[0], argv[1]
    service_name, method_name = path.split("/")
    method = descriptor_pool.Default().FindServiceByName(service_name).FindMethodByName(method_name)
    request_class = get_class(method.input_type)
    response_class = get_class(method.output_type)
    request = json_format.Parse(argv[2] if len(argv) > 2 else "{}", request_class())
    call = grpc.insecure_channel(address).unary_unary(
        f"/{service_name}/{method_name}", request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response_class.FromString)
    metadata = [("authorization", f"Bearer {os.environ['KP_TOKEN']}")] if os.environ.get("KP_TOKEN") else []
    try:
        response, outcome = call.with_call(request, timeout=30, metadata=metadata)
        if verbose:
            for key, value in list(outcome.initial_metadata()) + list(outcome.trailing_metadata()):
                print(f"< {key}: {value}", file=sys.stderr)
    except grpc.RpcError as e:
        out = {"code": e.code().name, "message": e.details()}
        from google.rpc import error_details_pb2, status_pb2  # noqa: F401 (registers types)
        for key, value in e.trailing_metadata() or ():
            if key == "grpc-status-details-bin":
                status = status_pb2.Status.FromString(value)
                out["details"] = json.loads(json_format.MessageToJson(status))["details"]
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 1
    print(json_format.MessageToJson(response, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
