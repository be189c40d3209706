#!/usr/bin/python3
"""Checks what an example client (client/python, client/node) printed for one e2e case.

    check_e2e.py CASE EXIT_CODE STDOUT_FILE STDERR_FILE [key=value ...]

Both clients print the subscription as JSON on stdout (exit 0), or on failure two text lines
("error: CODE: message" and "idempotency_key: KEY (what to do with it next)", the C++ CLI's
advice by code and ErrorInfo reason) and then one JSON object on stderr (exit 1):
    {"code": "NOT_FOUND", "code_number": 5, "message": ..., "idempotency_key": ...,
     "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", ...}, ...]}
Usage errors exit 2 with a message on stderr (case tls_cert_without_*: message=TEXT).
Exits 0 when the case's expectations hold, 1 (with the reasons) otherwise.

    check_e2e.py --oversized-spec

prints the requests of case `oversized` as JSON for send_oversized.py and send_oversized.js, which
send them with the client's code and print one report per request (case oversized checks them;
sim_requests=N is how many requests the simulator received meanwhile).
"""

import json
import re
import sys

ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
TWILIO_ERROR = "type.googleapis.com/twilio_gateway.v1.TwilioError"


class Failure(Exception):
    pass


def expect(condition, what):
    if not condition:
        raise Failure(what)


def read_error_report(stderr):
    start = stderr.find("\n{")
    expect(start >= 0, "no JSON error report on stderr")
    return json.loads(stderr[start + 1:])


def detail(report, type_url):
    found = [d for d in report["details"] if d.get("@type") == type_url]
    expect(len(found) == 1, f"expected one {type_url} detail, got {len(found)}")
    return found[0]


def check_error_info(report, reason, key):
    info = detail(report, ERROR_INFO)
    expect(info.get("domain") == "twilio-gateway", f"ErrorInfo domain {info.get('domain')!r}")
    expect(info.get("reason") == reason, f"ErrorInfo reason {info.get('reason')!r}, want {reason!r}")
    if key is not None:
        expect(info.get("metadata", {}).get("idempotency_key") == key,
               f"ErrorInfo idempotency_key {info.get('metadata')!r}, want {key!r}")
    return info


# What the line after the error says to do with the key, by case: the C++ CLI's NextStep
# (client/cli/main.cc), by the gRPC code and the ErrorInfo reason.
RETRY_SAFELY = "retry with it to repeat this create safely"
NEXT_STEP = {
    "invalid_call_sid": "fix the request and use a new key: retrying this one cannot succeed",
    "call_not_found": "retrying with it changes nothing until the cause is fixed",
    "throttled": RETRY_SAFELY,
    "tls_no_token": "retrying with it changes nothing until the cause is fixed",
    "tls_wrong_token": "retrying with it changes nothing until the cause is fixed",
    "mtls_not_allowed": "retrying with it changes nothing until the cause is fixed",
}


def check_next_step(case, stderr, key):
    want = f"idempotency_key: {key} ({NEXT_STEP[case]})"
    # A line, not the second: Node warns before the error when the target is an IP (DEP0123).
    expect(re.search(rf"^{re.escape(want)}$", stderr, re.M), f"no line {want!r} on stderr")


# Case oversized: each request is valid but for one string field, `fill` repeated `size` times.
# The fillers make every size but 0 invalid; an empty account_sid or key is valid and not sent.
OVERSIZED_BASE = {"call_sid": "CA0123456789abcdef0123456789abcdef",
                  "callback": "https://example.com/twilio/messages",
                  "idempotency_key": "oversized-key"}
OVERSIZED_FILL = {"call_sid": "x", "callback": "x", "idempotency_key": " ", "account_sid": "x"}
OVERSIZED_SIZES = (0, 1, 255, 256, 4 << 10, 64 << 10, 1 << 20)
# Clients at default settings refuse large trailers (gRPC's C core over 8 KiB: RESOURCE_EXHAUSTED
# instead of the error; Node's past 64 KiB: a call that hangs until its deadline). An error's
# trailers stay within 4 KiB, whatever the request.
MAX_ERROR_TRAILER_BYTES = 4096


def oversized_spec():
    cases = [{"field": field, "fill": fill, "size": size}
             for field, fill in OVERSIZED_FILL.items() for size in OVERSIZED_SIZES
             if size > 0 or field in ("call_sid", "callback")]
    return {"base": OVERSIZED_BASE, "cases": cases}


def trailer_wire_bytes(report):
    """The trailers' size as HTTP/2 carries them: -bin values in base64 (unpadded), grpc-message
    percent-encoded. Clients hand grpc-status and grpc-message over apart from the metadata."""
    total, keys = 0, set()
    for key, length in report["trailers"]:
        keys.add(key)
        total += len(key) + ((length * 4 + 2) // 3 if key.endswith("-bin") else length)
    if "grpc-status" not in keys:
        total += len("grpc-status") + len(str(report["code_number"]))
    if "grpc-message" not in keys:
        total += len("grpc-message") + sum(
            3 if b < 0x20 or b > 0x7e or b == 0x25 else 1 for b in report["message"].encode())
    return total


def check_oversized(exit_code, stdout, params):
    expect(exit_code == 0, f"exit code {exit_code}, want 0")
    reports = json.loads(stdout)
    cases = oversized_spec()["cases"]
    sent = [(r.get("field"), r.get("size")) for r in reports]
    expect(sent == [(c["field"], c["size"]) for c in cases],
           "the reports are not one per request of the spec, in order")
    problems = []
    for r in reports:
        name = f"{r['field']} of {r['size']} bytes"
        if r["code"] != "INVALID_ARGUMENT" or r["code_number"] != 3:
            problems.append(f"{name}: {r['code']} ({r['message']!r}), want INVALID_ARGUMENT")
            continue
        try:
            fields = [v.get("field") for v in detail(r, BAD_REQUEST).get("field_violations", [])]
            expect(fields == [r["field"]], f"BadRequest names {fields}, want [{r['field']!r}]")
            check_error_info(r, "INVALID_REQUEST", None)
            expect("status_code_mismatch" not in r, "google.rpc.Status code differs from gRPC's")
            size = trailer_wire_bytes(r)
            expect(size < MAX_ERROR_TRAILER_BYTES, f"trailers of {size} bytes")
        except Failure as e:
            problems.append(f"{name}: {e}")
    expect(not problems, "\n  ".join(["requests answered wrongly:"] + problems))
    expect(params.get("sim_requests") == "0",
           f"the simulator received {params.get('sim_requests')} requests, want 0")
    return ""


# Cases that create a subscription; the tls_ and mtls_ ones on the gateway that wants callers
# to authenticate.
SUCCESS_CASES = ("success", "replay", "tls_token", "mtls_certificate")


def check(case, exit_code, stdout, stderr, params):
    if case == "oversized":
        return check_oversized(exit_code, stdout, params)
    key = params.get("key")
    if case.startswith("tls_cert_without_"):
        expect(exit_code == 2, f"exit code {exit_code}, want 2 (usage error)")
        expect(stdout == "", "usage error printed on stdout")
        expect(params["message"] in stderr, f"stderr does not say {params['message']!r}")
        return ""
    if case in SUCCESS_CASES:
        expect(exit_code == 0, f"exit code {exit_code}, want 0")
        sub = json.loads(stdout)
        expect(sub.get("call_sid") == params["call_sid"], f"call_sid {sub.get('call_sid')!r}")
        expect(re.fullmatch(r"ZY[0-9a-f]{32}", sub.get("sid", "")), f"sid {sub.get('sid')!r}")
        expect(re.fullmatch(r"AC[0-9a-f]{32}", sub.get("account_sid", "")), "account_sid")
        expect(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", sub.get("date_created", "")),
               f"date_created {sub.get('date_created')!r}")
        expect(sub.get("uri", "").endswith(f"/UserDefinedMessageSubscriptions/{sub['sid']}.json"), "uri")
        expect(sub.get("idempotency_key") == key, f"idempotency_key {sub.get('idempotency_key')!r}")
        if case == "replay":
            expect(sub["sid"] == params["sid"], f"replay created {sub['sid']}, first create {params['sid']}")
        return sub["sid"]

    expect(exit_code == 1, f"exit code {exit_code}, want 1")
    report = read_error_report(stderr)
    expect(report.get("idempotency_key") == key, f"reported idempotency_key {report.get('idempotency_key')!r}")
    expect("status_code_mismatch" not in report, "google.rpc.Status code differs from the gRPC code")
    if case in NEXT_STEP:
        check_next_step(case, stderr, key)
    if case == "invalid_call_sid":
        expect(report["code"] == "INVALID_ARGUMENT" and report["code_number"] == 3, f"code {report['code']}")
        # Retrying an invalid request with its key cannot succeed: the client must not advise it.
        expect("use a new key" in stderr, "stderr does not say \"use a new key\"")
        expect("retry with it" not in stderr, "stderr advises to \"retry with it\"")
        violations = detail(report, BAD_REQUEST).get("field_violations", [])
        expect([v.get("field") for v in violations] == ["call_sid"], f"field violations {violations!r}")
        expect(violations[0].get("description"), "field violation without description")
        check_error_info(report, "INVALID_REQUEST", None)
    elif case == "call_not_found":
        expect(report["code"] == "NOT_FOUND" and report["code_number"] == 5, f"code {report['code']}")
        twilio = detail(report, TWILIO_ERROR)
        expect(twilio.get("code") == 20404, f"TwilioError code {twilio.get('code')!r}")
        expect(twilio.get("http_status") == 404, f"TwilioError http_status {twilio.get('http_status')!r}")
        expect(twilio.get("more_info", "").startswith("https://"), "TwilioError more_info")
        info = check_error_info(report, "CALL_NOT_FOUND", key)
        expect(info["metadata"].get("subscription_may_exist") == "false", "subscription_may_exist")
        expect(info["metadata"].get("attempts") == "1", f"attempts {info['metadata'].get('attempts')!r}")
    elif case == "throttled":
        expect(report["code"] == "RESOURCE_EXHAUSTED", f"code {report['code']}")
        retry = detail(report, RETRY_INFO)
        expect(retry.get("retry_delay") == "1s", f"RetryInfo retry_delay {retry.get('retry_delay')!r}")
        expect(detail(report, TWILIO_ERROR).get("code") == 20429, "TwilioError code")
        check_error_info(report, "TWILIO_THROTTLED", key)
    elif case in ("tls_no_token", "tls_wrong_token"):
        expect(report["code"] == "UNAUTHENTICATED" and report["code_number"] == 16,
               f"code {report['code']}")
        # A line, not the first: Node warns before it when the target is an IP (DEP0123).
        expect(re.search(r"^error: UNAUTHENTICATED: ", stderr, re.M), "no \"error: UNAUTHENTICATED\" line")
        check_error_info(report, "CALLER_UNAUTHENTICATED", None)
    elif case == "mtls_not_allowed":
        expect(report["code"] == "PERMISSION_DENIED" and report["code_number"] == 7,
               f"code {report['code']}")
        check_error_info(report, "CALLER_NOT_ALLOWED", key)
    else:
        raise Failure(f"unknown case {case}")
    return ""


def main(argv):
    if argv[1:] == ["--oversized-spec"]:
        json.dump(oversized_spec(), sys.stdout)
        return 0
    case, exit_code, stdout_file, stderr_file = argv[1:5]
    params = dict(arg.split("=", 1) for arg in argv[5:])
    with open(stdout_file, encoding="utf-8") as f:
        stdout = f.read()
    with open(stderr_file, encoding="utf-8") as f:
        stderr = f.read()
    try:
        result = check(case, int(exit_code), stdout, stderr, params)
    except (Failure, ValueError, KeyError) as e:
        print(f"{case}: FAILED: {type(e).__name__ if not isinstance(e, Failure) else ''}{e}\n"
              f"--- stdout\n{stdout}--- stderr\n{stderr}---", file=sys.stderr)
        return 1
    if result:
        print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
