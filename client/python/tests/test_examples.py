"""examples/quickstart.py and examples/receive_messages.py run as README.md shows them (the
repository's README.md quotes them too: tests/clients/check_readme_examples.py)."""

import json
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import CALL_SID

PACKAGE = Path(__file__).resolve().parent.parent
QUICKSTART = PACKAGE / "examples" / "quickstart.py"
RECEIVE = PACKAGE / "examples" / "receive_messages.py"


def quickstart(*args):
    return subprocess.run([sys.executable, str(QUICKSTART), *args], capture_output=True,
                          text=True, timeout=60)


def test_the_readme_shows_the_quickstart_as_it_is():
    blocks = re.findall(r"```python\n(.*?)```", (PACKAGE / "README.md").read_text(), re.S)
    assert blocks, "README.md has no python example"
    assert blocks[0] in QUICKSTART.read_text()


def test_the_quickstart_creates_sends_and_deletes(fixture):
    done = quickstart(fixture.target, CALL_SID)
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"ZY[0-9a-f]{32}\nKX[0-9a-f]{32}\n", done.stdout)


def test_the_quickstart_says_what_to_do_after_an_error(fixture):
    done = quickstart(fixture.target, "CA-not-a-call")
    assert done.returncode == 1
    assert done.stderr.startswith("INVALID_ARGUMENT INVALID_REQUEST: fix the request and use a "
                                  "new key")


def test_receive_messages_subscribes_and_prints_what_the_sdk_sends(fixture):
    call_sid = "CA" + secrets.token_hex(16)
    with subprocess.Popen([sys.executable, str(RECEIVE), fixture.webhook_target, call_sid],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as example:
        try:
            # It subscribes first (no callback: the gateway's own URL), then watches from the
            # oldest message kept, so what is delivered once the subscription exists is printed.
            deadline = time.monotonic() + 30
            while not any(s["call_sid"] == call_sid and s["callback"] == fixture.webhook_url
                          for s in fixture.sim("GET", "/_sim/subscriptions")["subscriptions"]):
                assert example.poll() is None, example.stderr.read()
                assert time.monotonic() < deadline, "the example never subscribed"
                time.sleep(0.05)
            fixture.sim("POST", "/_sim/deliver",
                        {"call_sid": call_sid, "contents": ['{"text": "hi"}', "[1, 2]"]})
            lines = [example.stdout.readline() for _ in range(2)]
        finally:
            example.send_signal(signal.SIGINT)
            example.communicate(timeout=30)
    assert lines == [f"0 {json.dumps({'text': 'hi'})}\n", "1 [1, 2]\n"]


def test_receive_messages_says_what_to_do_and_where_to_resume_after_an_error(fixture):
    done = subprocess.run([sys.executable, str(RECEIVE), fixture.webhook_target, CALL_SID,
                           "not-a-cursor"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr == ("INVALID_ARGUMENT INVALID_REQUEST: fix the request: retrying it "
                           "unchanged cannot succeed (cursor not-a-cursor)\n")
