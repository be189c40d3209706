#!/usr/bin/python3
"""The simulator's Twilio API and fault injection, over real HTTP, for each operation.

    tests/twilio_simulator/simulator_test.py [-v]

Starts the simulator on a free loopback port (and stops it) around each test class. Standard
library only, like the simulator; ctest runs it as twilio_simulator.api.
"""

import base64
import email.utils
import http.client
import http.server
import json
import os
import re
import subprocess
import sys
import socket
import tempfile
import threading
import time
import unittest
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import twilio_simulator  # noqa: E402  (the signing helper; the server runs as a subprocess)

SIMULATOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "twilio_simulator.py")
ACCOUNT = "AC" + "a" * 32
AUTH_TOKEN = "simulator-auth-token"  # The simulator's default; it signs the deliveries.
AUTH = "Basic " + base64.b64encode(("%s:simulator-auth-token" % ACCOUNT).encode()).decode()
CALL = "CA0123456789abcdef0123456789abcdef"
BASE = "/2010-04-01/Accounts/%s/Calls/%s" % (ACCOUNT, CALL)
SUBSCRIPTIONS = BASE + "/UserDefinedMessageSubscriptions.json"
MESSAGES = BASE + "/UserDefinedMessages.json"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def subscription_path(sid, base=BASE):
    return "%s/UserDefinedMessageSubscriptions/%s.json" % (base, sid)


class SimulatorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        port_file = os.path.join(cls.dir.name, "port")
        cls.proc = subprocess.Popen(
            [sys.executable, SIMULATOR, "--port", "0", "--port-file", port_file, "--quiet"],
            stdout=subprocess.DEVNULL)
        for _ in range(100):
            if os.path.exists(port_file):
                break
            if cls.proc.poll() is not None:
                raise RuntimeError("the simulator exited")
            time.sleep(0.05)
        with open(port_file) as f:
            cls.port = int(f.read())

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait(10)
        cls.dir.cleanup()

    def setUp(self):
        self.admin("POST", "/_sim/reset")

    def request(self, method, path, form=None, headers=None, auth=AUTH):
        """Returns (status, headers, body bytes); status None when the connection was dropped."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        all_headers = dict(headers or {})
        if auth:
            all_headers["Authorization"] = auth
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            all_headers.update(FORM)
        try:
            conn.request(method, path, body=body, headers=all_headers)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        except (http.client.RemoteDisconnected, ConnectionResetError):
            return None, {}, b""
        finally:
            conn.close()

    def admin(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        data = json.loads(response.read())
        conn.close()
        self.assertEqual(response.status, 200, data)
        return data

    def create(self, **form):
        status, _, body = self.request("POST", SUBSCRIPTIONS,
                                       dict({"Callback": "https://example.com/m"}, **form))
        self.assertEqual(status, 201, body)
        return json.loads(body)["sid"]

    def twilio_error(self, body):
        error = json.loads(body)
        self.assertEqual(error["more_info"], "https://www.twilio.com/docs/errors/%d" % error["code"])
        return error["code"]


class DeleteTest(SimulatorTest):
    def test_deletes_an_existing_subscription_once(self):
        sid = self.create()
        status, headers, body = self.request("DELETE", subscription_path(sid))
        self.assertEqual((status, body), (204, b""))
        self.assertNotIn("Content-Length", headers)
        self.assertTrue(headers["Twilio-Request-Id"].startswith("RQ"))

        status, _, body = self.request("DELETE", subscription_path(sid))
        self.assertEqual(status, 404)
        self.assertEqual(self.twilio_error(body), 20404)
        stats = self.admin("GET", "/_sim/stats")
        self.assertEqual((stats["subscriptions_deleted"], stats["subscriptions_live"]), (1, 0))
        self.assertEqual([s["deleted"] for s in self.admin("GET", "/_sim/subscriptions")
                          ["subscriptions"]], [True])

    def test_a_subscription_of_another_call_or_an_unknown_sid_is_not_found(self):
        sid = self.create()
        other = "/2010-04-01/Accounts/%s/Calls/CA%s" % (ACCOUNT, "b" * 32)
        for path in (subscription_path(sid, other), subscription_path("ZY" + "0" * 32),
                     subscription_path("ZYnot-a-sid")):
            status, _, body = self.request("DELETE", path)
            self.assertEqual((status, self.twilio_error(body)), (404, 20404), path)
        self.assertEqual(self.admin("GET", "/_sim/stats")["subscriptions_live"], 1)

    def test_checks_auth_and_method_like_create(self):
        sid = self.create()
        status, headers, body = self.request("DELETE", subscription_path(sid), auth=None)
        self.assertEqual((status, self.twilio_error(body)), (401, 20003))
        self.assertIn("WWW-Authenticate", headers)
        wrong = "Basic " + base64.b64encode(("%s:wrong" % ACCOUNT).encode()).decode()
        status, _, body = self.request("DELETE", subscription_path(sid), auth=wrong)
        self.assertEqual((status, self.twilio_error(body)), (401, 20003))
        status, headers, body = self.request("POST", subscription_path(sid), form={})
        self.assertEqual((status, self.twilio_error(body), headers["Allow"]), (405, 20004, "DELETE"))
        status, headers, _ = self.request("DELETE", SUBSCRIPTIONS)
        self.assertEqual((status, headers["Allow"]), (405, "POST"))
        self.assertEqual(self.admin("GET", "/_sim/stats")["subscriptions_live"], 1)

    def test_a_lost_response_after_deleting_leaves_a_404_for_the_retry(self):
        sid = self.create()
        self.admin("POST", "/_sim/faults",
                   {"rules": [{"operation": "delete", "drop": "after", "count": 1}]})
        self.assertEqual(self.request("DELETE", subscription_path(sid))[0], None)
        self.assertEqual(self.request("DELETE", subscription_path(sid))[0], 404)
        self.assertEqual(self.admin("GET", "/_sim/stats")["subscriptions_deleted"], 1)

    def test_faults_before_acting_keep_the_subscription(self):
        sid = self.create()
        self.admin("POST", "/_sim/faults", {"rules": [
            {"operation": "delete", "status": 429, "retry_after": "2", "count": 1},
            {"operation": "delete", "status": 503, "count": 1},
            {"operation": "delete", "drop": "before", "count": 1}]})
        status, headers, body = self.request("DELETE", subscription_path(sid))
        self.assertEqual((status, headers["Retry-After"], self.twilio_error(body)),
                         (429, "2", 20429))
        status, _, body = self.request("DELETE", subscription_path(sid))
        self.assertEqual((status, self.twilio_error(body)), (503, 20503))
        self.assertEqual(self.request("DELETE", subscription_path(sid))[0], None)
        self.assertEqual(self.admin("GET", "/_sim/stats")["subscriptions_live"], 1)
        self.assertEqual(self.request("DELETE", subscription_path(sid))[0], 204)

    def test_a_500_after_deleting_has_deleted(self):
        sid = self.create()
        self.admin("POST", "/_sim/faults", {"rules": [
            {"operation": "delete", "status": 500, "after_record": True, "delay_ms": 50}]})
        self.assertEqual(self.request("DELETE", subscription_path(sid))[0], 500)
        self.assertEqual(self.admin("GET", "/_sim/stats")["subscriptions_deleted"], 1)


class SendTest(SimulatorTest):
    def send(self, content='{"k": 1}', key=None, expect=201):
        form = {"Content": content}
        if key is not None:
            form["IdempotencyKey"] = key
        status, headers, body = self.request("POST", MESSAGES, form)
        self.assertEqual(status, expect, body)
        return json.loads(body) if status is not None else None

    def test_sends_a_message(self):
        message = self.send('{"hello": ["world", 1, null]}', key="m-1")
        self.assertEqual(set(message), {"account_sid", "call_sid", "sid", "date_created"})
        self.assertRegex(message["sid"], r"^KX[0-9a-f]{32}$")
        self.assertEqual((message["account_sid"], message["call_sid"]), (ACCOUNT, CALL))
        self.assertRegex(message["date_created"], r"^\w{3}, \d{2} \w{3} \d{4} [\d:]{8} \+0000$")
        [logged] = self.admin("GET", "/_sim/messages")["messages"]
        self.assertEqual((logged["content"], logged["idempotency_key"], logged["sid"]),
                         ('{"hello": ["world", 1, null]}', "m-1", message["sid"]))

    def test_the_same_key_sends_once_until_the_window_ends(self):
        first = self.send(key="k")
        self.assertEqual(self.send(key="k"), first)
        stats = self.admin("GET", "/_sim/stats")
        self.assertEqual(stats["messages_by_key"]["%s/%s/k" % (ACCOUNT, CALL)],
                         {"requests": 2, "messages": 1})
        self.assertEqual(stats["messages"], 1)
        self.assertEqual(stats["by_key"], {})  # subscriptions are counted apart

        self.admin("POST", "/_sim/config", {"idempotency_window_s": 0.1})
        time.sleep(0.2)
        self.assertNotEqual(self.send(key="k")["sid"], first["sid"])
        self.assertEqual(self.admin("GET", "/_sim/stats")["messages_by_key"]
                         ["%s/%s/k" % (ACCOUNT, CALL)], {"requests": 3, "messages": 2})

    def test_content_must_be_present_and_json(self):
        for content in (None, "", "{not json", "NaN", '{"a": 1} trailing', "[1, Infinity]"):
            form = {} if content is None else {"Content": content}
            status, _, body = self.request("POST", MESSAGES, form)
            self.assertEqual((status, self.twilio_error(body)), (400, 20001), content)
        for content in ('"just a string"', "42", "null", "[]", "true"):
            self.send(content)
        self.assertEqual(self.admin("GET", "/_sim/stats")["messages"], 5)

    def test_content_over_the_limit_is_31212(self):
        self.assertEqual(self.admin("GET", "/_sim/config")["max_content_bytes"], 4096)
        at_limit = json.dumps("x" * 4094)
        self.send(at_limit)
        status, _, body = self.request("POST", MESSAGES,
                                       {"Content": json.dumps("é" * 2048, ensure_ascii=False)})
        self.assertEqual((status, self.twilio_error(body)), (400, 31212))  # 4098 bytes, 2050 chars
        self.admin("POST", "/_sim/config", {"max_content_bytes": 10})
        status, _, body = self.request("POST", MESSAGES, {"Content": '"0123456789"'})
        self.assertEqual((status, self.twilio_error(body)), (400, 31212))
        self.admin("POST", "/_sim/reset")
        self.assertEqual(self.admin("GET", "/_sim/config")["max_content_bytes"], 4096)

    def test_a_call_that_is_not_active_is_31211_and_a_missing_one_404(self):
        self.admin("PUT", "/_sim/calls/" + CALL, {"state": "completed"})
        status, _, body = self.request("POST", MESSAGES, {"Content": "{}"})
        self.assertEqual((status, self.twilio_error(body)), (400, 31211))
        self.admin("PUT", "/_sim/calls/" + CALL, {"state": "ringing"})
        self.send("{}")
        self.admin("PUT", "/_sim/calls/" + CALL, {"state": "missing"})
        status, _, body = self.request("POST", MESSAGES, {"Content": "{}"})
        self.assertEqual((status, self.twilio_error(body)), (404, 20404))
        self.assertEqual(self.admin("GET", "/_sim/stats")["messages"], 1)

    def test_checks_auth_content_type_and_method_like_create(self):
        self.assertEqual(self.request("POST", MESSAGES, {"Content": "{}"}, auth=None)[0], 401)
        status, _, body = self.request("POST", MESSAGES, headers={"Content-Type": "text/plain"})
        self.assertEqual((status, self.twilio_error(body)), (400, 20001))
        status, headers, _ = self.request("GET", MESSAGES)
        self.assertEqual((status, headers["Allow"]), (405, "POST"))
        self.assertEqual(self.admin("GET", "/_sim/stats")["messages"], 0)

    def test_faults_after_acting_send_the_message_and_the_retry_replays_it(self):
        self.admin("POST", "/_sim/faults", {"rules": [
            {"operation": "send", "status": 500, "after_record": True, "count": 1},
            {"operation": "send", "drop": "after", "count": 1},
            {"operation": "send", "malformed": True, "count": 1}]})
        self.assertEqual(self.send(key="lost", expect=500)["code"], 20500)
        self.send(key="lost", expect=None)
        status, _, body = self.request("POST", MESSAGES, {"Content": "{}", "IdempotencyKey": "lost"})
        self.assertEqual(status, 201)
        self.assertRaises(ValueError, json.loads, body)
        self.send(key="lost")
        self.assertEqual(self.admin("GET", "/_sim/stats")["messages_by_key"]
                         ["%s/%s/lost" % (ACCOUNT, CALL)], {"requests": 4, "messages": 1})

    def test_faults_before_acting_send_nothing(self):
        self.admin("POST", "/_sim/faults", {"rules": [
            {"operation": "send", "status": 429, "retry_after": "1", "count": 1},
            {"operation": "send", "drop": "before", "count": 1},
            {"operation": "create", "status": 503}]})
        self.assertEqual(self.send(key="b", expect=429)["code"], 20429)
        self.send(key="b", expect=None)
        self.assertEqual(self.admin("GET", "/_sim/stats")["messages"], 0)
        self.send(key="b")  # the create rule does not apply to a send

    def test_a_rule_needs_a_known_operation(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request("POST", "/_sim/faults", body=json.dumps(
            {"rules": [{"operation": "fetch", "status": 500}]}))
        response = conn.getresponse()
        self.assertEqual(response.status, 400)
        self.assertIn("operation", json.loads(response.read())["error"])
        conn.close()


class SignatureTest(unittest.TestCase):
    """The signing helper against every test vector in shared/reference/twilio-facts.md."""
    TOKEN = "12345"
    URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
    PARAMS = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234",
              "From": "+14158675309", "To": "+18005551212"}
    BODY = b'{"property": "value", "boolean": true}'
    BODY_HASH = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"

    def test_form_post_vectors(self):
        sign = twilio_simulator.twilio_signature
        self.assertEqual(sign(self.TOKEN, self.URL, self.PARAMS), "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
        self.assertEqual(sign(self.TOKEN, "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                              self.PARAMS), "kvajT1Ptam85bY51eRf/AJRuM3w=")
        # The order the parameters come in does not matter; they are sorted by name.
        self.assertEqual(sign(self.TOKEN, self.URL, list(reversed(list(self.PARAMS.items())))),
                         "RSOYDt4T1cUTdK1PDd93/VVr8B8=")

    def test_json_body_vector(self):
        self.assertEqual(twilio_simulator.body_sha256(self.BODY), self.BODY_HASH)
        url = self.URL + "&bodySHA256=" + self.BODY_HASH
        self.assertEqual(twilio_simulator.twilio_signature(self.TOKEN, url),
                         "a9nBmqA0ju/hNViExpshrM61xv4=")

    def test_validation_tries_both_port_forms_and_checks_the_body(self):
        valid = twilio_simulator.validate_twilio_signature
        with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
        for url in (self.URL, with_port):
            for signature in ("RSOYDt4T1cUTdK1PDd93/VVr8B8=", "kvajT1Ptam85bY51eRf/AJRuM3w="):
                self.assertTrue(valid(self.TOKEN, signature, url, self.PARAMS), (url, signature))
        self.assertFalse(valid("54321", "RSOYDt4T1cUTdK1PDd93/VVr8B8=", self.URL, self.PARAMS))
        self.assertFalse(valid(self.TOKEN, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", self.URL,
                               dict(self.PARAMS, Digits="1235")))
        self.assertFalse(valid(self.TOKEN, None, self.URL, self.PARAMS))
        url = self.URL + "&bodySHA256=" + self.BODY_HASH
        self.assertTrue(valid(self.TOKEN, "a9nBmqA0ju/hNViExpshrM61xv4=", url, body=self.BODY))
        # A body that does not match its hash fails even though the URL's signature is right.
        self.assertFalse(valid(self.TOKEN, "a9nBmqA0ju/hNViExpshrM61xv4=", url,
                               body=self.BODY + b" "))
        self.assertFalse(valid(self.TOKEN, "a9nBmqA0ju/hNViExpshrM61xv4=", self.URL,
                               body=self.BODY))


class CallbackServer:
    """A local Callback endpoint that records every request it gets.

    It answers 200, or the status in the path (/status/403), after sleeping for /slow paths.
    """

    def __init__(self):
        self.received = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.handle_any()

            def do_POST(self):
                self.handle_any()

            def handle_any(self):
                with owner.lock:
                    owner.in_flight += 1
                    owner.max_in_flight = max(owner.max_in_flight, owner.in_flight)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path.startswith("/slow"):
                    time.sleep(0.3)
                match = re.match(r"^/status/(\d{3})", self.path)
                status = int(match.group(1)) if match else 200
                with owner.lock:
                    owner.in_flight -= 1
                    owner.received.append({
                        "method": self.command, "path": self.path, "body": body,
                        "headers": {k.lower(): v for k, v in self.headers.items()}})
                answer = b'{"ok": true}'
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # The simulator gave up waiting (the timeout test).

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class DeliverTest(SimulatorTest):
    def setUp(self):
        super().setUp()
        self.callback = CallbackServer()
        self.addCleanup(self.callback.stop)

    def deliver(self, expect=200, **spec):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("POST", "/_sim/deliver", body=json.dumps(spec))
        response = conn.getresponse()
        data = json.loads(response.read())
        conn.close()
        self.assertEqual(response.status, expect, data)
        return data

    def full_url(self, received):
        return self.callback.url(received["path"])

    def check_fields(self, fields, call=CALL):
        self.assertEqual(set(fields), {"ContentType", "Content", "SequenceNumber", "CallSid",
                                       "AccountSid", "Sid", "Timestamp"})
        self.assertEqual((fields["ContentType"], fields["CallSid"], fields["AccountSid"]),
                         ("application/json", call, ACCOUNT))
        self.assertRegex(fields["Sid"], r"^KX[0-9a-f]{32}$")
        self.assertTrue(fields["Timestamp"].endswith(" +0000"), fields["Timestamp"])
        self.assertIsNotNone(email.utils.parsedate_to_datetime(fields["Timestamp"]))

    def test_a_json_post_by_default_signed_with_the_body_hash(self):
        sid = self.create(Callback=self.callback.url("/hook?tenant=a"))
        contents = ['{"a": 1}', '{"b": [2]}', '"three"']
        report = self.deliver(subscription_sid=sid, contents=contents)
        self.assertEqual([d["status"] for d in report["deliveries"]], [200, 200, 200])
        self.assertEqual((report["succeeded"], report["failed"]), (3, 0))
        received = self.callback.received
        self.assertEqual(len(received), 3)
        for i, r in enumerate(received):
            self.assertEqual(r["method"], "POST")
            self.assertEqual(r["headers"]["content-type"], "application/json")
            self.assertRegex(r["path"], r"^/hook\?tenant=a&bodySHA256=[0-9a-f]{64}$")
            fields = json.loads(r["body"])
            self.check_fields(fields)
            self.assertEqual((fields["Content"], fields["SequenceNumber"]), (contents[i], i))
            self.assertEqual(fields["Sid"], report["deliveries"][i]["sid"])
            self.assertTrue(twilio_simulator.validate_twilio_signature(
                AUTH_TOKEN, r["headers"]["x-twilio-signature"], self.full_url(r), body=r["body"]))
            self.assertFalse(twilio_simulator.validate_twilio_signature(
                "another-token", r["headers"]["x-twilio-signature"], self.full_url(r),
                body=r["body"]))
        self.assertEqual(len({json.loads(r["body"])["Sid"] for r in received}), 3)
        # Numbers go on from where the call's last message left off.
        self.deliver(subscription_sid=sid)
        last = json.loads(self.callback.received[-1]["body"])
        self.assertEqual(last["SequenceNumber"], 3)
        self.assertEqual(json.loads(last["Content"]), {"n": 3})  # generated content
        self.assertEqual(self.admin("GET", "/_sim/stats")["callback_requests"], 4)

    def test_a_form_post_signs_the_url_and_sorted_fields(self):
        sid = self.create(Callback=self.callback.url("/hook"))
        self.deliver(subscription_sid=sid, count=2, body_form="form", content='{"x": "a b&c"}')
        for i, r in enumerate(self.callback.received):
            self.assertEqual((r["method"], r["path"]), ("POST", "/hook"))
            self.assertEqual(r["headers"]["content-type"], "application/x-www-form-urlencoded")
            fields = dict(urllib.parse.parse_qsl(r["body"].decode(), strict_parsing=True))
            self.check_fields(fields)
            self.assertEqual((fields["Content"], fields["SequenceNumber"]),
                             ('{"x": "a b&c"}', str(i)))
            self.assertTrue(twilio_simulator.validate_twilio_signature(
                AUTH_TOKEN, r["headers"]["x-twilio-signature"], self.full_url(r), fields))

    def test_a_get_subscription_gets_the_fields_in_a_signed_query(self):
        sid = self.create(Callback=self.callback.url("/get-hook"), Method="GET")
        report = self.deliver(subscription_sid=sid, count=2, body_form="form")
        self.assertEqual([d["body_form"] for d in report["deliveries"]], ["query", "query"])
        for i, r in enumerate(self.callback.received):
            self.assertEqual((r["method"], r["body"]), ("GET", b""))
            path, _, query = r["path"].partition("?")
            self.assertEqual(path, "/get-hook")
            fields = dict(urllib.parse.parse_qsl(query, strict_parsing=True))
            self.check_fields(fields)
            self.assertEqual(fields["SequenceNumber"], str(i))
            self.assertTrue(twilio_simulator.validate_twilio_signature(
                AUTH_TOKEN, r["headers"]["x-twilio-signature"], self.full_url(r)))

    def test_forged_deliveries_do_not_verify(self):
        sid = self.create(Callback=self.callback.url("/hook"))
        for body_form in ("json", "form"):
            for forge in (True, "signature", "missing", "body"):
                self.callback.received.clear()
                report = self.deliver(subscription_sid=sid, body_form=body_form, forge=forge)
                self.assertEqual(report["deliveries"][0]["forge"],
                                 "signature" if forge is True else forge)
                r = self.callback.received[0]
                signature = r["headers"].get("x-twilio-signature")
                self.assertEqual(signature is None, forge == "missing")
                if body_form == "json":
                    ok = twilio_simulator.validate_twilio_signature(
                        AUTH_TOKEN, signature, self.full_url(r), body=r["body"])
                    if forge == "body":
                        # The URL is signed correctly; only the body hash gives it away.
                        self.assertEqual(twilio_simulator.twilio_signature(
                            AUTH_TOKEN, self.full_url(r)), signature)
                else:
                    ok = twilio_simulator.validate_twilio_signature(
                        AUTH_TOKEN, signature, self.full_url(r),
                        dict(urllib.parse.parse_qsl(r["body"].decode())))
                self.assertFalse(ok, (body_form, forge))

    def test_duplicates_repeat_the_sid_and_the_body(self):
        sid = self.create(Callback=self.callback.url("/hook"))
        report = self.deliver(subscription_sid=sid, count=2, duplicate=True)
        self.assertEqual([d["copy"] for d in report["deliveries"]], [0, 1, 0, 1])
        bodies = [r["body"] for r in self.callback.received]
        self.assertEqual((bodies[0] == bodies[1], bodies[2] == bodies[3]), (True, True))
        sids = [json.loads(b)["Sid"] for b in bodies]
        self.assertEqual((sids[0] == sids[1], sids[1] != sids[2]), (True, True))
        self.assertEqual([json.loads(b)["SequenceNumber"] for b in bodies], [0, 0, 1, 1])
        signatures = [r["headers"]["x-twilio-signature"] for r in self.callback.received]
        self.assertEqual(signatures[0], signatures[1])
        self.deliver(subscription_sid=sid, duplicate=2)
        self.assertEqual(len({r["body"] for r in self.callback.received[4:]}), 1)
        self.assertEqual(len(self.callback.received), 7)

    def test_a_call_sid_delivers_each_message_to_every_live_subscription(self):
        first = self.create(Callback=self.callback.url("/one"))
        second = self.create(Callback=self.callback.url("/two"), Method="GET")
        gone = self.create(Callback=self.callback.url("/gone"))
        self.assertEqual(self.request("DELETE", subscription_path(gone))[0], 204)
        other_call = "CA" + "b" * 32
        self.request("POST", "/2010-04-01/Accounts/%s/Calls/%s/UserDefinedMessageSubscriptions"
                     ".json" % (ACCOUNT, other_call), {"Callback": self.callback.url("/other")})
        report = self.deliver(call_sid=CALL, count=2)
        self.assertEqual([(d["subscription_sid"], d["sequence_number"])
                          for d in report["deliveries"]],
                         [(first, 0), (second, 0), (first, 1), (second, 1)])
        self.assertEqual([r["path"].partition("?")[0] for r in self.callback.received],
                         ["/one", "/two", "/one", "/two"])
        # One message, one Sid, whichever subscription it reaches.
        self.assertEqual([m["sid"] for m in report["messages"]],
                         [d["sid"] for d in report["deliveries"][::2]])
        self.assertEqual(report["deliveries"][0]["sid"], report["deliveries"][1]["sid"])

    def test_order_and_concurrency(self):
        sid = self.create(Callback=self.callback.url("/slow"))
        self.deliver(subscription_sid=sid, count=3, order="reverse")
        self.assertEqual([json.loads(r["body"])["SequenceNumber"]
                          for r in self.callback.received], [2, 1, 0])
        self.assertEqual(self.callback.max_in_flight, 1)  # sequential by default
        report = self.deliver(subscription_sid=sid, count=4, concurrency=4)
        self.assertEqual([d["sequence_number"] for d in report["deliveries"]], [3, 4, 5, 6])
        self.assertGreater(self.callback.max_in_flight, 1)
        report = self.deliver(subscription_sid=sid, count=5, order="shuffle")
        self.assertEqual(sorted(d["sequence_number"] for d in report["deliveries"]),
                         [7, 8, 9, 10, 11])

    def test_the_callbacks_status_is_reported(self):
        for status in (403, 413, 400, 500):
            sid = self.create(Callback=self.callback.url("/status/%d" % status))
            report = self.deliver(subscription_sid=sid)
            self.assertEqual(report["deliveries"][0]["status"], status)
            self.assertEqual(report["deliveries"][0]["response_body"], '{"ok": true}')
            self.assertEqual((report["succeeded"], report["failed"]), (0, 1))

    def test_a_callback_that_is_down_or_slow_is_reported(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed_port = s.getsockname()[1]
        sid = self.create(Callback="http://127.0.0.1:%d/down" % closed_port)
        delivery = self.deliver(subscription_sid=sid, count=2)["deliveries"]
        self.assertEqual([d["status"] for d in delivery], [None, None])
        self.assertIn("Connect", delivery[0]["error"])
        sid = self.create(Callback=self.callback.url("/slow"))
        delivery = self.deliver(subscription_sid=sid, timeout_s=0.05)["deliveries"][0]
        self.assertEqual((delivery["status"], delivery["error"]), (None, "no answer within 0.05 s"))
        self.assertEqual(self.admin("GET", "/_sim/health"), {"ok": True})

    def test_refuses_what_twilio_would_not_deliver(self):
        sid = self.create(Callback=self.callback.url("/hook"))
        self.deliver(expect=400)
        self.deliver(expect=400, subscription_sid=sid, call_sid=CALL)
        self.deliver(expect=400, subscription_sid=sid, colour="red")
        self.deliver(expect=400, subscription_sid=sid, body_form="xml")
        self.deliver(expect=400, subscription_sid=sid, count=2, contents=["1"])
        self.deliver(expect=400, subscription_sid=sid, count=20_000)
        self.deliver(expect=404, subscription_sid="ZY" + "0" * 32)
        self.deliver(expect=404, call_sid="CA" + "c" * 32)
        self.admin("PUT", "/_sim/calls/" + CALL, {"state": "completed"})
        self.deliver(expect=409, subscription_sid=sid)
        self.admin("DELETE", "/_sim/calls/" + CALL)
        self.assertEqual(self.request("DELETE", subscription_path(sid))[0], 204)
        self.deliver(expect=404, subscription_sid=sid)
        self.assertEqual(self.callback.received, [])


class SlowAnswersTest(SimulatorTest):
    def test_a_delay_holds_every_operation(self):
        sid = self.create()
        self.admin("POST", "/_sim/faults", {"rules": [{"delay_ms": 300}]})
        for method, path, form in (("DELETE", subscription_path(sid), None),
                                   ("POST", MESSAGES, {"Content": "{}"})):
            started = time.monotonic()
            status = self.request(method, path, form)[0]
            self.assertGreaterEqual(time.monotonic() - started, 0.3)
            self.assertIn(status, (201, 204))
        self.assertEqual([r["operation"] for r in self.admin("GET", "/_sim/requests")["requests"]],
                         ["create", "delete", "send"])


class ConcurrencyLimitTest(SimulatorTest):
    """Twilio's per-account concurrency limit: past it, 429 with code 20429 at once."""

    def parallel(self, n, path=SUBSCRIPTIONS):
        """Sends n Creates at once; returns [(status, headers, body)] in completion order."""
        results, lock = [], threading.Lock()

        def one(i):
            result = self.request("POST", path, {"Callback": "https://example.com/m",
                                                 "IdempotencyKey": "conc-%d" % i})
            with lock:
                results.append(result)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results

    def test_requests_past_the_limit_get_20429_with_the_concurrent_count(self):
        config = self.admin("POST", "/_sim/config", {"max_concurrent_requests": 3, "delay_ms": 400})
        self.assertEqual(config["max_concurrent_requests"], 3)
        results = self.parallel(8)
        statuses = sorted(r[0] for r in results)
        self.assertEqual(statuses, [201] * 3 + [429] * 5)
        for status, headers, body in results:
            if status == 429:
                self.assertEqual(self.twilio_error(body), 20429)
                self.assertEqual(headers["Twilio-Concurrent-Requests"], "3")
        stats = self.admin("GET", "/_sim/stats?by_key=0")
        self.assertEqual(stats["concurrency_throttled"], 5)
        self.assertEqual(stats["max_account_in_flight"], 3)
        self.assertEqual(stats["subscriptions"], 3)  # A 429 is never processed.

    def test_the_count_falls_as_answers_go_and_the_limit_can_be_lifted(self):
        self.admin("POST", "/_sim/config", {"max_concurrent_requests": 1})
        # One at a time fits, however many in a row; the header counts this request.
        for i in range(3):
            status, headers, _ = self.request("POST", SUBSCRIPTIONS,
                                              {"Callback": "https://example.com/m"})
            self.assertEqual(status, 201)
            self.assertEqual(headers["Twilio-Concurrent-Requests"], "1")
        self.admin("POST", "/_sim/config", {"max_concurrent_requests": None, "delay_ms": 200})
        self.assertEqual(sorted(r[0] for r in self.parallel(4)), [201] * 4)

    def test_the_limit_is_per_account(self):
        other = "/2010-04-01/Accounts/%s/Calls/%s/UserDefinedMessageSubscriptions.json" % (
            "AC" + "b" * 32, CALL)
        self.admin("POST", "/_sim/config", {"max_concurrent_requests": 1, "delay_ms": 300})
        results, lock = [], threading.Lock()

        def one(path):
            status = self.request("POST", path, {"Callback": "https://example.com/m"})[0]
            with lock:
                results.append(status)

        threads = [threading.Thread(target=one, args=(p,)) for p in (SUBSCRIPTIONS, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # The other account is not this simulator's (401), but it was not throttled.
        self.assertEqual(sorted(results), [201, 401])

    def test_a_bad_limit_is_refused(self):
        for bad in (-1, 1.5, True, "3"):
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            conn.request("POST", "/_sim/config", body=json.dumps({"max_concurrent_requests": bad}))
            self.assertEqual(conn.getresponse().status, 400, bad)
            conn.close()


if __name__ == "__main__":
    unittest.main()
