"""The installed `subscription-cli create` command: the C++ CLI's flags, output and exit codes."""

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import CALL_SID, CALLBACK

# Installed next to the interpreter running the tests (the venv test.sh made).
CLI = str(Path(sys.executable).parent / "subscription-cli")


def run(*args, token=None):
    env = {k: v for k, v in os.environ.items() if k != "SUBSCRIPTION_CLI_TOKEN"}
    if token is not None:
        env["SUBSCRIPTION_CLI_TOKEN"] = token
    return subprocess.run([CLI, "create", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def test_success_prints_the_subscription_as_json(fixture):
    done = run("--target", fixture.target, "--call-sid", CALL_SID, "--callback", CALLBACK,
               "--method", "get", "--idempotency-key", "cli-success-key")
    assert done.returncode == 0, done.stderr
    subscription = json.loads(done.stdout)
    assert subscription["call_sid"] == CALL_SID
    assert subscription["idempotency_key"] == "cli-success-key"
    assert subscription["sid"].startswith("ZY")


def test_an_error_prints_the_advice_and_the_details(fixture):
    done = run("--target", fixture.target, "--call-sid", "CA-not-a-call", "--callback", CALLBACK,
               "--idempotency-key", "cli-invalid-key")
    assert done.returncode == 1
    assert done.stdout == ""
    first, second, report = done.stderr.split("\n", 2)
    assert first.startswith("error: INVALID_ARGUMENT: ")
    assert second == ("idempotency_key: cli-invalid-key (fix the request and use a new key: "
                      "retrying this one cannot succeed)")
    report = json.loads(report)
    assert (report["code"], report["code_number"]) == ("INVALID_ARGUMENT", 3)
    assert report["idempotency_key"] == "cli-invalid-key"
    bad_request = [d for d in report["details"]
                   if d["@type"] == "type.googleapis.com/google.rpc.BadRequest"]
    assert [v["field"] for v in bad_request[0]["field_violations"]] == ["call_sid"]


def test_the_token_comes_from_the_environment_and_is_never_printed(fixture):
    args = ("--target", fixture.tls_target, "--tls-ca", fixture.ca, "--call-sid", CALL_SID,
            "--callback", CALLBACK)
    done = run(*args, token=fixture.token)
    assert done.returncode == 0, done.stderr
    leaked = fixture.token in done.stdout + done.stderr
    assert not leaked, "the token was printed"

    unauthenticated = run(*args)
    assert unauthenticated.returncode == 1
    assert unauthenticated.stderr.startswith("error: UNAUTHENTICATED: ")


def test_usage_errors_exit_2(fixture):
    done = run("--call-sid", CALL_SID, "--callback", CALLBACK, "--tls-ca", fixture.ca,
               "--tls-cert", fixture.client_cert)
    assert done.returncode == 2
    assert "--tls-cert and --tls-key go together" in done.stderr
    assert run("--callback", CALLBACK).returncode == 2
