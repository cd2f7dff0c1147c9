#!/usr/bin/python3
"""A regional IT system talking to medkoord through the gateway with grpcio.

Submits an application for its own region, reads and lists it, sees a
validation error with its field violations, is refused another region's
cases, and withdraws its application. Prints "ok" and exits 0 when every
step behaved as a regional system expects.
"""
import argparse
import sys
import uuid

import grpc
from google.rpc import error_details_pb2, status_pb2

from medkoord.common.v1 import common_pb2
from medkoord.intake.v1 import intake_pb2, intake_pb2_grpc


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def details(err):
    """Field violations from grpc-status-details-bin."""
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            st = status_pb2.Status.FromString(value)
            out = []
            for any_ in st.details:
                bad = error_details_pb2.BadRequest()
                if any_.Unpack(bad):
                    out += [v.field for v in bad.field_violations]
            return out
    return []


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    channel = grpc.insecure_channel(args.addr)
    intake = intake_pb2_grpc.IntakeStub(channel)
    md = [("authorization", "Bearer " + args.key), ("x-request-id", "py-" + uuid.uuid4().hex)]

    app = intake_pb2.Application(
        case_ref="PY-0001", region=common_pb2.REGION_SYDDANMARK, drug_name="mepolizumab", atc_code="R03DX09",
        indication="chronic rhinosinusitis with nasal polyps", icd10="J33.9", cancer=False, marketed_dk=True,
        medicinraadet_status=intake_pb2.MEDICINRAADET_STATUS_REJECTED, ema_status=intake_pb2.EMA_STATUS_OFF_LABEL)
    app.submitted_on.year, app.submitted_on.month, app.submitted_on.day = 2024, 6, 3
    created = intake.SubmitApplication(
        intake_pb2.SubmitApplicationRequest(request_id="py-req-1", application=app), metadata=md, timeout=10)
    if not created.name.startswith("regions/syddanmark/applications/"):
        fail("unexpected name " + created.name)
    again = intake.SubmitApplication(
        intake_pb2.SubmitApplicationRequest(request_id="py-req-1", application=app), metadata=md, timeout=10)
    if again.name != created.name:
        fail("idempotent retry returned another application")

    got = intake.GetApplication(intake_pb2.GetApplicationRequest(name=created.name), metadata=md, timeout=10)
    if got.drug_name != "mepolizumab" or got.state != intake_pb2.APPLICATION_STATE_OPEN:
        fail("get returned something else")

    listed = intake.ListApplications(intake_pb2.ListApplicationsRequest(parent="regions/-"), metadata=md, timeout=10)
    if [a.name for a in listed.applications] != [created.name]:
        fail("list shows other regions' cases or misses ours")

    bad = intake_pb2.Application(case_ref="PY-0002", region=common_pb2.REGION_SYDDANMARK, atc_code="L01E")
    try:
        intake.SubmitApplication(intake_pb2.SubmitApplicationRequest(request_id="py-req-2", application=bad),
                                 metadata=md, timeout=10)
        fail("an invalid application was accepted")
    except grpc.RpcError as err:
        if err.code() != grpc.StatusCode.INVALID_ARGUMENT:
            fail("invalid application: " + str(err.code()))
        fields = details(err)
        if "application.atc_code" not in fields or len(fields) < 2:
            fail("field violations missing: %r" % fields)

    try:
        intake.GetApplication(intake_pb2.GetApplicationRequest(name="regions/midtjylland/applications/X-1"),
                              metadata=md, timeout=10)
        fail("another region's case was readable")
    except grpc.RpcError as err:
        if err.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED):
            fail("other region: " + str(err.code()))

    try:
        intake.ListApplications(intake_pb2.ListApplicationsRequest(), timeout=10)
        fail("a call without a key was served")
    except grpc.RpcError as err:
        if err.code() != grpc.StatusCode.UNAUTHENTICATED:
            fail("no key: " + str(err.code()))

    withdrawn = intake.WithdrawApplication(
        intake_pb2.WithdrawApplicationRequest(name=created.name, reason="patient moved"), metadata=md, timeout=10)
    if withdrawn.state != intake_pb2.APPLICATION_STATE_WITHDRAWN:
        fail("withdraw did not withdraw")
    print("ok")


if __name__ == "__main__":
    main()
