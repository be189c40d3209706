"""The installed `subscription-cli create` command: the C++ CLI's flags, output and exit codes."""

import json
import os
import signal
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


def run_command(command, *args):
    env = {k: v for k, v in os.environ.items() if k != "SUBSCRIPTION_CLI_TOKEN"}
    return subprocess.run([CLI, command, *args], env=env, capture_output=True, text=True,
                          timeout=60)


def test_create_without_a_callback_then_watch_until_the_deadline(fixture):
    call_sid = "CA" + os.urandom(16).hex()
    created = run_command("create", "--target", fixture.webhook_target, "--call-sid", call_sid)
    assert created.returncode == 0, created.stderr
    fixture.sim("POST", "/_sim/deliver", {"call_sid": call_sid, "contents": ['{"a": 1}', "[2]"]})

    watched = run_command("watch", "--target", fixture.webhook_target, "--call-sid", call_sid,
                          "--from-oldest", "--timeout", "2")
    assert watched.returncode == 1
    lines = [json.loads(line) for line in watched.stdout.splitlines()]
    assert [(m["sequence_number"], m["content"]) for m in lines] == [(0, '{"a": 1}'), (1, "[2]")]
    assert lines[0]["call_sid"] == call_sid and lines[0]["timestamp"].endswith("Z")
    error, advice, resume, _ = watched.stderr.split("\n", 3)
    assert error.startswith("error: DEADLINE_EXCEEDED")
    assert advice == ("next: watch again with the resume cursor: nothing it still keeps after it "
                      "is lost")
    assert resume == f"resume_cursor: {lines[1]['cursor']}"

    resumed = run_command("watch", "--target", fixture.webhook_target, "--call-sid", call_sid,
                          "--cursor", lines[0]["cursor"], "--timeout", "2")
    assert [json.loads(line)["content"] for line in resumed.stdout.splitlines()] == ["[2]"]


def test_watch_ends_cleanly_on_sigint(fixture):
    call_sid = "CA" + os.urandom(16).hex()
    assert run_command("create", "--target", fixture.webhook_target, "--call-sid",
                       call_sid).returncode == 0
    fixture.sim("POST", "/_sim/deliver", {"call_sid": call_sid})
    with subprocess.Popen([CLI, "watch", "--target", fixture.webhook_target, "--call-sid",
                           call_sid, "--from-oldest"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as watcher:
        # Its first line: the stream is open and the signal handlers are in place.
        first = watcher.stdout.readline()
        watcher.send_signal(signal.SIGINT)
        out, err = watcher.communicate(timeout=30)
    assert json.loads(first)["call_sid"] == call_sid
    assert watcher.returncode == 0, err
    assert out == ""


def test_watch_wants_either_a_cursor_or_from_oldest(fixture):
    done = run_command("watch", "--target", fixture.webhook_target, "--cursor", "1-0",
                       "--from-oldest")
    assert done.returncode == 2
    assert "not allowed with argument" in done.stderr
