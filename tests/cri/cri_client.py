#!/usr/bin/python3
"""A minimal CRI (Kubernetes Container Runtime Interface, runtime.v1) client for rcni's tests:
one gRPC call per run, the way kubelet makes it, request and response as JSON.

    cri_client.py --socket PATH --gen DIR [--timeout SECONDS] METHOD [REQUEST-JSON]

METHOD is a method of runtime.v1.RuntimeService (RunPodSandbox, PodSandboxStatus, ...) or of
runtime.v1.ImageService (ListImages); REQUEST-JSON is its request message in protobuf's JSON
mapping (field names as in the .proto or lowerCamelCase), "{}" when left out. The response is
printed as JSON with the .proto's field names. A gRPC error exits 1 with "CODE: details" on
stderr, so a test can tell NOT_FOUND from a failure.

The stubs are compiled from runtime_v1.proto (beside this file) into DIR on first use with
grpc_tools.protoc (Debian: python3-grpcio, python3-grpc-tools; run with /usr/bin/python3).
"""
import argparse
import importlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = "runtime_v1.proto"
IMAGE_METHODS = {"ListImages"}


def stubs(gen):
    if not os.path.exists(os.path.join(gen, "runtime_v1_pb2_grpc.py")):
        from grpc_tools import protoc

        os.makedirs(gen, exist_ok=True)
        rc = protoc.main(["protoc", "-I" + HERE, "--python_out=" + gen, "--grpc_python_out=" + gen, PROTO])
        if rc != 0:
            sys.exit("cri_client: protoc failed on %s (exit %d)" % (PROTO, rc))
    sys.path.insert(0, gen)
    return importlib.import_module("runtime_v1_pb2"), importlib.import_module("runtime_v1_pb2_grpc")


def main():
    ap = argparse.ArgumentParser(description="one CRI runtime.v1 call, JSON in and out")
    ap.add_argument("--socket", required=True, help="the runtime's gRPC socket (unix path)")
    ap.add_argument("--gen", required=True, help="directory for the compiled stubs")
    ap.add_argument("--timeout", type=float, default=60.0, help="deadline of the call, seconds")
    ap.add_argument("method")
    ap.add_argument("request", nargs="?", default="{}")
    a = ap.parse_args()

    import grpc
    from google.protobuf import json_format

    pb, pb_grpc = stubs(a.gen)
    request_type = getattr(pb, a.method + "Request", None)
    if request_type is None:
        sys.exit("cri_client: no such method %s" % a.method)
    request = json_format.Parse(a.request, request_type())
    with grpc.insecure_channel("unix://" + a.socket) as channel:
        if a.method in IMAGE_METHODS:
            service = pb_grpc.ImageServiceStub(channel)
        else:
            service = pb_grpc.RuntimeServiceStub(channel)
        try:
            response = getattr(service, a.method)(request, timeout=a.timeout)
        except grpc.RpcError as e:
            sys.stderr.write("%s: %s\n" % (e.code().name, e.details()))
            sys.exit(1)
    print(json_format.MessageToJson(response, preserving_proto_field_name=True, including_default_value_fields=True))


if __name__ == "__main__":
    main()
