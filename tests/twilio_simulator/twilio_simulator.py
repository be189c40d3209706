#!/usr/bin/python3
"""A local stand-in for Twilio's REST API, for integration tests, demos and load benchmarks.

It serves the three Twilio operations the gateway uses,

    POST   /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}/UserDefinedMessageSubscriptions.json
    DELETE /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}/UserDefinedMessageSubscriptions/{Sid}.json
    POST   /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}/UserDefinedMessages.json

with Twilio's validation order, error bodies and headers, and lets a test script its failures
(errors, stalls, dropped connections, lost responses, truncated bodies) through a small JSON admin
API under /_sim/ on the same port. POST /_sim/deliver plays the Voice SDK's part: it delivers
user-defined messages to subscriptions' Callback URLs, signed with X-Twilio-Signature as Twilio
signs them. See README.md next to this file for the flags, the admin API, deliveries and the fault
rule format.

Why it is built this way:
- Python 3 standard library only, so it runs anywhere the tests run (Debian 12's /usr/bin/python3).
- One asyncio event loop with a hand-written HTTP/1.1 parser instead of http.server: a thread per
  connection cannot hold 1,000+ keep-alive connections that each sleep for an injected delay.
- All state lives in one Simulator object touched only from the event loop thread, so no locks.
- Log lines go to stderr through a bounded queue drained by a thread: a parent that never reads our
  stderr pipe must not be able to stall the event loop.
"""

import argparse
import asyncio
import base64
import collections
import datetime
import email.utils
import functools
import hashlib
import hmac
import http
import ipaddress
import json
import os
import queue
import random
import re
import signal
import socket
import ssl
import sys
import tempfile
import threading
import time
import urllib.parse

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024
# Unanswered input a connection may buffer while its current request waits (e.g. pipelining).
MAX_UNANSWERED_BYTES = MAX_HEADER_BYTES + MAX_BODY_BYTES
MAX_LOGGED_BODY_CHARS = 64 * 1024
MAX_FORM_FIELDS = 1000
MAX_CALLBACK_CHARS = 4000
REQUEST_LOG_SIZE = 10_000
SUBSCRIPTION_LOG_SIZE = 10_000
MESSAGE_LOG_SIZE = 10_000
# Subscriptions a DELETE can find. Bounded so that a long benchmark cannot grow without limit; the
# oldest are forgotten first (a DELETE of one then answers 404, as for a subscription Twilio
# dropped with its call).
LIVE_SUBSCRIPTIONS_MAX = 1_000_000
# Twilio publishes no limit for a user-defined message's Content (it answers 31212 past its own).
# 4096 bytes is the gateway contract's own cap, so default runs agree with it; tests lower it
# (--max-content-bytes, /_sim/config) to see Twilio's 31212.
DEFAULT_MAX_CONTENT_BYTES = 4096
LISTEN_BACKLOG = 4096

DEFAULT_ACCOUNT_SID = "AC" + "a" * 32
DEFAULT_AUTH_TOKEN = "simulator-auth-token"
DEFAULT_API_KEY = "SK" + "a" * 32
DEFAULT_API_SECRET = "simulator-api-secret"

# Operation name -> (route, the one method Twilio allows on it). Groups: account, call[, sid].
ROUTES = {
    "create": (re.compile(
        r"^/2010-04-01/Accounts/([^/]+)/Calls/([^/]+)/UserDefinedMessageSubscriptions\.json$"),
        "POST"),
    "delete": (re.compile(
        r"^/2010-04-01/Accounts/([^/]+)/Calls/([^/]+)/UserDefinedMessageSubscriptions/([^/]+)"
        r"\.json$"), "DELETE"),
    "send": (re.compile(
        r"^/2010-04-01/Accounts/([^/]+)/Calls/([^/]+)/UserDefinedMessages\.json$"), "POST"),
}
ACCOUNT_SID_RE = re.compile(r"^AC[0-9a-fA-F]{32}$")
CALL_SID_RE = re.compile(r"^CA[0-9a-fA-F]{32}$")
SUBSCRIPTION_SID_RE = re.compile(r"^ZY[0-9a-fA-F]{32}$")
TOKEN_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Control characters other than HTAB, and any CR or LF that is not part of a CRLF pair.
BAD_HEAD_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n")
TARGET_RE = re.compile(r"^[\x21-\x7e]+$")
URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")
DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")

ACTIVE_CALL_STATES = ("in-progress", "ringing")
MISSING_CALL_STATE = "missing"
DEFAULT_FAULT_CODES = {429: 20429, 500: 20500, 503: 20503}

FAULT_RULE_KEYS = {
    "operation", "call_sid", "idempotency_key", "count", "share", "status", "code", "message", "retry_after",
    "after_record", "delay_ms", "drop", "malformed", "comment", "name",
}
CONFIG_KEYS = {"delay_ms", "default_call_state", "api_keys", "idempotency_window_s",
               "max_content_bytes", "max_concurrent_requests"}

# POST /_sim/deliver: user-defined messages delivered to subscriptions' Callback URLs.
DELIVER_KEYS = {"subscription_sid", "call_sid", "count", "content", "contents", "content_type",
                "duplicate", "forge", "body_form", "concurrency", "order", "timeout_s", "comment"}
# Requests one /_sim/deliver may make (messages x subscriptions x copies), so that one admin call
# cannot hold unbounded memory.
MAX_DELIVERIES = 10_000
DEFAULT_DELIVERY_TIMEOUT_S = 10.0
MAX_DELIVERY_TIMEOUT_S = 600.0
# How much of a callback's answer the report keeps.
MAX_CALLBACK_EXCERPT_BYTES = 1024
FORGE_KINDS = ("signature", "missing", "body")
DELIVERY_USER_AGENT = "TwilioProxy/1.1"


_REASONS = {s.value: s.phrase for s in http.HTTPStatus}
_SID_RANDOM = random.Random()  # SIDs must be unique, not secret; this avoids a syscall each.


def _reason(status):
    return _REASONS.get(status, "Unknown")


def _twilio_error(status, code, message):
    return {
        "code": code,
        "message": message,
        "more_info": "https://www.twilio.com/docs/errors/%d" % code,
        "status": status,
    }


def _error(status, code, message, extra=()):
    """A Twilio error answer: (status, body bytes, extra headers)."""
    return status, _json_bytes(_twilio_error(status, code, message)), list(extra)


def _no_constants(name):
    raise ValueError("%s is not JSON" % name)


def is_json_document(text):
    """Strict JSON (RFC 8259): one value of any kind, no NaN or Infinity."""
    try:
        json.loads(text, parse_constant=_no_constants)
    except ValueError:  # json.JSONDecodeError and RecursionError's cousins are ValueErrors.
        return False
    except RecursionError:
        return False
    return True


def _json_bytes(obj):
    return json.dumps(obj).encode("utf-8")


def _new_sid(prefix):
    return "%s%032x" % (prefix, _SID_RANDOM.getrandbits(128))


_date_created_cache = [None, ""]


def _rfc2822_now():
    now = int(time.time())
    if _date_created_cache[0] != now:
        # usegmt=False on an aware UTC datetime yields Twilio's "+0000" form rather than "GMT".
        _date_created_cache[0] = now
        _date_created_cache[1] = email.utils.format_datetime(
            datetime.datetime.fromtimestamp(now, datetime.timezone.utc), usegmt=False)
    return _date_created_cache[1]


def twilio_signature(auth_token, url, params=None):
    """Twilio's webhook signature, the value of X-Twilio-Signature.

    base64(HMAC-SHA1(auth token, url + each parameter's name and value)), the parameters sorted by
    name (bytewise, then by value for a repeated name) and concatenated without separators. For a
    form POST, params are the POST parameters; for a JSON body or a GET there are none: the URL
    (with its query, including bodySHA256 for a JSON body) is all that is signed.
    """
    if isinstance(auth_token, str):
        auth_token = auth_token.encode("utf-8")
    data = url
    if params:
        items = params.items() if isinstance(params, dict) else params
        for name, value in sorted(items, key=lambda nv: (nv[0].encode("utf-8"),
                                                         nv[1].encode("utf-8"))):
            data += name + value
    digest = hmac.new(auth_token, data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def body_sha256(body):
    """The bodySHA256 query parameter Twilio adds for a JSON body: lowercase hex SHA-256."""
    return hashlib.sha256(body).hexdigest()


def _port_variants(url):
    """The URL as given and with its default port toggled (validators must try both)."""
    parts = urllib.parse.urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme.lower())
    try:
        port = parts.port
    except ValueError:
        return [url]
    if default is None:
        return [url]
    if port is None:
        other = parts._replace(netloc="%s:%d" % (parts.netloc, default))
    elif port == default:
        other = parts._replace(netloc=parts.netloc.rsplit(":", 1)[0])
    else:
        return [url]
    return [url, urllib.parse.urlunsplit(other)]


def validate_twilio_signature(auth_token, signature, url, params=None, body=None):
    """What a receiver checks, as Twilio's helper libraries do.

    url is the full URL Twilio requested (scheme to the end of the query). For a JSON body pass the
    raw body: its SHA-256 must equal the URL's bodySHA256 and only the URL is signed. For a form POST
    pass the POST parameters. Signatures are compared in constant time, with and without the
    default port.
    """
    if not signature:
        return False
    if body is not None:
        claimed = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).get("bodySHA256")
        if not claimed or not hmac.compare_digest(claimed[0].encode("ascii", "replace"),
                                                  body_sha256(body).encode("ascii")):
            return False
        params = None
    expected = signature.encode("ascii", "replace")
    ok = False
    for candidate in _port_variants(url):
        # No short cut: every variant is computed and compared.
        ok |= hmac.compare_digest(twilio_signature(auth_token, candidate, params).encode("ascii"),
                                  expected)
    return ok


def build_callback_request(callback, method, fields, auth_token, body_form="json", forge=None):
    """The request Twilio makes to a subscription's Callback for one user-defined message.

    fields are the message's (ContentType, Content, SequenceNumber, CallSid, AccountSid, Sid,
    Timestamp). A GET carries them in the query and signs the whole URL. A POST carries them as a
    JSON body (body_form "json": Twilio appends bodySHA256 to the URL and signs the URL alone) or as
    form fields (body_form "form": the URL plus the sorted fields are signed). forge spoils it:
    "signature" signs with a wrong token, "missing" sends no X-Twilio-Signature, "body" signs the
    real message and then sends one whose Content differs (a trailing space), so only a receiver
    that checks the parameters or the bodySHA256 notices.
    Returns (url, headers as (name, value) pairs, body bytes or None, the body form used).
    """
    if isinstance(auth_token, str):
        auth_token = auth_token.encode("utf-8")
    key = b"forged-" + auth_token if forge == "signature" else auth_token
    base = callback.partition("#")[0]
    sep = "" if base.endswith(("?", "&")) else ("&" if urllib.parse.urlsplit(base).query else "?")
    strings = {name: str(value) for name, value in fields.items()}
    sent = dict(fields, Content=fields["Content"] + " ") if forge == "body" else fields
    sent_strings = {name: str(value) for name, value in sent.items()}
    headers = [("User-Agent", DELIVERY_USER_AGENT), ("Accept", "*/*")]
    if method == "GET":
        url = base + sep + urllib.parse.urlencode(strings)
        signature = twilio_signature(key, url)
        url = base + sep + urllib.parse.urlencode(sent_strings)
        body, used = None, "query"
    elif body_form == "form":
        url = base
        signature = twilio_signature(key, url, strings)
        body, used = urllib.parse.urlencode(sent_strings).encode("utf-8"), "form"
        headers.append(("Content-Type", "application/x-www-form-urlencoded"))
    else:
        signed_body = _json_bytes(fields)
        url = base + sep + "bodySHA256=" + body_sha256(signed_body)
        signature = twilio_signature(key, url)
        body, used = _json_bytes(sent), "json"
        headers.append(("Content-Type", "application/json"))
    if forge != "missing":
        headers.append(("X-Twilio-Signature", signature))
    return url, headers, body, used


_client_ssl = []


def _client_ssl_context():
    if not _client_ssl:
        _client_ssl.append(ssl.create_default_context())
    return _client_ssl[0]


async def http_exchange(method, url, headers, body, timeout_s):
    """One HTTP/1.1 request on a connection of its own (Connection: close).

    Returns (status or None, excerpt of the answer's body, error text or None). Never raises for
    what the peer does: a refused connection, a timeout or a garbled answer is an error text.
    """
    parts = urllib.parse.urlsplit(url)
    https = parts.scheme.lower() == "https"
    target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    lines = ["%s %s HTTP/1.1" % (method, target), "Host: " + parts.netloc]
    lines += ["%s: %s" % header for header in headers]
    if body is not None:
        lines.append("Content-Length: %d" % len(body))
    lines.append("Connection: close")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
    writer = None
    status = None
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(
                parts.hostname, parts.port or (443 if https else 80),
                ssl=_client_ssl_context() if https else None, limit=MAX_HEADER_BYTES)
            writer.write(data)
            await writer.drain()
            length = None
            while status is None or status < 200:  # Skip interim (1xx) answers.
                match = re.match(rb"HTTP/1\.[01] ([0-9]{3})[ \r\n]", await reader.readline())
                if not match:
                    return status, "", "malformed status line from the callback"
                status = int(match.group(1))
                while True:
                    line = await reader.readline()
                    if not line.strip():
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.strip().lower() == "content-length" and value.strip().isdigit():
                        length = int(value.strip())
        # The status is what callers assert on; the body is a courtesy, read briefly.
        want = 0 if status in (204, 304) else min(length if length is not None
                                                   else MAX_CALLBACK_EXCERPT_BYTES,
                                                   MAX_CALLBACK_EXCERPT_BYTES)
        excerpt = b""
        try:
            async with asyncio.timeout(min(1.0, timeout_s)):
                while len(excerpt) < want:
                    chunk = await reader.read(want - len(excerpt))
                    if not chunk:
                        break
                    excerpt += chunk
        except (TimeoutError, OSError):
            pass
        return status, excerpt.decode("utf-8", "replace"), None
    except TimeoutError:
        return status, "", "no answer within %g s" % timeout_s
    except (OSError, ValueError, asyncio.IncompleteReadError) as e:  # ssl.SSLError is an OSError.
        return status, "", "%s: %s" % (type(e).__name__, e)
    finally:
        if writer is not None:
            writer.close()


@functools.lru_cache(maxsize=4096)  # Benchmarks send the same few callbacks over and over.
def is_valid_callback(url):
    """An absolute http(s) URI whose host is an IP literal or an LDH host name (no underscores)."""
    if len(url) > MAX_CALLBACK_CHARS or URL_FORBIDDEN.search(url) or not url.isascii():
        return False
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # Raises ValueError for a non-numeric or out-of-range port.
    except ValueError:
        return False
    if parts.scheme.lower() not in ("http", "https"):
        return False
    netloc = parts.netloc
    if not netloc or "@" in netloc:
        return False
    host = parts.hostname
    if not host:
        return False
    if netloc.startswith("["):
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return False
        return True
    if host.replace(".", "").isdigit():
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return False
        return True
    name = host[:-1] if host.endswith(".") else host
    if not name or len(name) > 253:
        return False
    return all(DNS_LABEL.match(label) for label in name.split("."))


def parse_basic_auth(value):
    """Returns (user, password); user is None if absent or malformed, password None if unusable."""
    if not value:
        return None, None
    scheme, _, param = value.strip().partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        decoded = base64.b64decode(param.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None, None
    user, sep, password = decoded.partition(":")
    return user, (password if sep else None)


def parse_form(body):
    """Parses an x-www-form-urlencoded body; the first occurrence of a name wins.

    Returns (form, error). On a strict-parsing error the form is a best-effort lenient parse, so the
    request log and fault filters still see what the client sent.
    """
    def first_values(pairs):
        form = {}
        for name, value in pairs:
            form.setdefault(name, value)
        return form

    if not body:
        return {}, None
    try:
        # Same result as parse_qsl(strict_parsing=True, keep_blank_values=True, errors="strict"),
        # but only unquotes fields that need it: this runs on every request of a benchmark.
        text = body.decode("utf-8")
        fields = text.split("&")
        if len(fields) > MAX_FORM_FIELDS:
            raise ValueError("too many fields")
        form = {}
        for field in fields:
            name, sep, value = field.partition("=")
            if not sep:
                raise ValueError("bad query field: %r" % field)
            if "%" in name or "+" in name:
                name = urllib.parse.unquote_plus(name, errors="strict")
            if "%" in value or "+" in value:
                value = urllib.parse.unquote_plus(value, errors="strict")
            form.setdefault(name, value)
        return form, None
    except ValueError as e:  # UnicodeDecodeError is a ValueError.
        try:
            pairs = urllib.parse.parse_qsl(body.decode("utf-8", "replace"),
                                           keep_blank_values=True,
                                           max_num_fields=MAX_FORM_FIELDS)
        except ValueError:
            pairs = []
        return first_values(pairs), str(e) or "invalid form body"


class HttpError(Exception):
    """A request the HTTP layer rejects before routing; the connection is closed after replying."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class Request:
    __slots__ = ("method", "target", "path", "query", "version", "headers", "keep_alive",
                 "content_length", "expect_continue")


def parse_request_head(head):
    """Parses a request line and header block (bytes ending in CRLF CRLF) into a Request."""
    text = head.decode("latin-1")
    if BAD_HEAD_CHARS.search(text):
        raise HttpError(400, "invalid characters in request head")
    lines = text.split("\r\n")
    i = 0
    while i < len(lines) and lines[i] == "":
        i += 1  # RFC 9112 2.2: ignore empty lines before the request line.
    if i >= len(lines):
        raise HttpError(400, "empty request")
    parts = lines[i].split(" ")
    if len(parts) != 3:
        raise HttpError(400, "malformed request line")
    method, target, version = parts
    if not TOKEN_RE.match(method):
        raise HttpError(400, "malformed method")
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise HttpError(400 if not version.startswith("HTTP/") else 505, "unsupported version")
    if not TARGET_RE.match(target):
        raise HttpError(400, "malformed request target")
    if target.startswith("/"):
        path_query = target
    elif target.lower().startswith(("http://", "https://")):
        split = urllib.parse.urlsplit(target)
        path_query = (split.path or "/") + ("?" + split.query if split.query else "")
    else:
        raise HttpError(400, "unsupported request target form")
    path_query = path_query.partition("#")[0]
    path, _, query = path_query.partition("?")

    headers = {}
    for line in lines[i + 1:]:
        if line == "":
            break
        if line[0] in " \t":
            raise HttpError(400, "obsolete header line folding")
        name, sep, value = line.partition(":")
        if not sep or not TOKEN_RE.match(name):
            raise HttpError(400, "malformed header line")
        name = name.lower()
        value = value.strip(" \t")
        if name in headers:
            headers[name] = headers[name] + ", " + value
        else:
            headers[name] = value

    content_length = 0
    if "transfer-encoding" in headers:
        if "content-length" in headers:
            raise HttpError(400, "both Transfer-Encoding and Content-Length")
        raise HttpError(411, "Transfer-Encoding is not supported; send Content-Length")
    if "content-length" in headers:
        values = {v.strip() for v in headers["content-length"].split(",")}
        if len(values) != 1:
            raise HttpError(400, "conflicting Content-Length")
        value = values.pop()
        if not value.isdigit() or not value.isascii() or len(value) > 18:
            raise HttpError(400, "invalid Content-Length")
        content_length = int(value)
        if content_length > MAX_BODY_BYTES:
            raise HttpError(413, "request body too large")

    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    if version == "HTTP/1.1":
        keep_alive = "close" not in tokens
    else:
        keep_alive = "keep-alive" in tokens and "close" not in tokens

    req = Request()
    req.method = method
    req.target = target
    req.path = path
    req.query = query
    req.version = version
    req.headers = headers
    req.keep_alive = keep_alive
    req.content_length = content_length
    req.expect_continue = headers.get("expect", "").lower() == "100-continue"
    return req


class FaultRule:
    """One validated fault rule; see README.md for the JSON format."""

    def __init__(self, index, spec):
        if not isinstance(spec, dict):
            raise ValueError("rule %d: must be an object" % index)
        unknown = set(spec) - FAULT_RULE_KEYS
        if unknown:
            raise ValueError("rule %d: unknown keys %s" % (index, sorted(unknown)))

        def opt(key, types, what):
            value = spec.get(key)
            if value is None:
                return None
            if isinstance(value, bool) and bool not in types:
                raise ValueError("rule %d: %s must be %s" % (index, key, what))
            if not isinstance(value, types):
                raise ValueError("rule %d: %s must be %s" % (index, key, what))
            return value

        self.index = index
        self.spec = spec
        self.operation = opt("operation", (str,), '"create", "delete" or "send"')
        if self.operation is not None and self.operation not in ROUTES:
            raise ValueError('rule %d: operation must be "create", "delete" or "send"' % index)
        self.call_sid = opt("call_sid", (str,), "a string")
        self.idempotency_key = opt("idempotency_key", (str,), "a string")
        self.count = opt("count", (int,), "an integer or null")
        if self.count is not None and self.count < 0:
            raise ValueError("rule %d: count must be >= 0" % index)
        self.remaining = self.count
        share = opt("share", (int, float), "a number in [0, 1]")
        self.share = 1.0 if share is None else float(share)
        if not 0.0 <= self.share <= 1.0:
            raise ValueError("rule %d: share must be in [0, 1]" % index)
        self.status = opt("status", (int,), "an integer")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError("rule %d: status must be in [100, 599]" % index)
        self.code = opt("code", (int,), "an integer")
        self.message = opt("message", (str,), "a string")
        retry_after = opt("retry_after", (str, int, float), "a string or number")
        self.retry_after = None if retry_after is None else str(retry_after)
        if self.retry_after is not None and BAD_HEAD_CHARS.search(self.retry_after + "\r\n"):
            raise ValueError("rule %d: retry_after contains control characters" % index)
        self.after_record = bool(opt("after_record", (bool,), "a boolean"))
        delay = opt("delay_ms", (int, float), "a number >= 0")
        self.delay_ms = 0.0 if delay is None else float(delay)
        if self.delay_ms < 0:
            raise ValueError("rule %d: delay_ms must be >= 0" % index)
        self.drop = opt("drop", (str,), '"before" or "after"')
        if self.drop not in (None, "before", "after"):
            raise ValueError('rule %d: drop must be "before" or "after"' % index)
        self.malformed = bool(opt("malformed", (bool,), "a boolean"))
        for key in ("comment", "name"):
            opt(key, (str,), "a string")

        effects = sum([self.status is not None, self.drop is not None, self.malformed])
        if effects > 1:
            raise ValueError("rule %d: status, drop and malformed are mutually exclusive" % index)
        if effects == 0 and delay is None:
            raise ValueError("rule %d: needs status, drop, malformed or delay_ms" % index)
        if self.after_record and self.status is None:
            raise ValueError("rule %d: after_record needs status" % index)
        for key in ("code", "message", "retry_after"):
            if spec.get(key) is not None and self.status is None:
                raise ValueError("rule %d: %s needs status" % (index, key))
        self.applied = 0
        self.description = self._describe()

    def _describe(self):
        parts = []
        if self.delay_ms:
            parts.append("delay %gms" % self.delay_ms)
        if self.status is not None:
            parts.append("status %d" % self.status + (" after_record" if self.after_record else ""))
        if self.drop:
            parts.append("drop %s" % self.drop)
        if self.malformed:
            parts.append("malformed")
        return "rule %d: %s" % (self.index, ", ".join(parts))

    def matches(self, operation, call_sid, idempotency_key, rng):
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.operation is not None and self.operation != operation:
            return False
        if self.call_sid is not None and self.call_sid != call_sid:
            return False
        if self.idempotency_key is not None and self.idempotency_key != idempotency_key:
            return False
        if self.share < 1.0 and rng.random() >= self.share:
            return False
        return True

    def to_json(self):
        out = dict(self.spec)
        out["index"] = self.index
        out["remaining"] = self.remaining
        out["applied"] = self.applied
        out["description"] = self.description
        return out


class StderrLog:
    """Non-blocking logging: a bounded queue drained to stderr by a daemon thread."""

    def __init__(self, enabled):
        self.enabled = enabled
        self.dropped = 0
        self._unwritten = 0  # Queued or being written; only a hint for flush().
        self._queue = queue.Queue(maxsize=10_000)
        if enabled:
            threading.Thread(target=self._drain, name="stderr-log", daemon=True).start()

    def __call__(self, line):
        if not self.enabled:
            return
        try:
            self._queue.put_nowait(line)
            self._unwritten += 1
        except queue.Full:
            self.dropped += 1

    def _drain(self):
        # os.write on the raw descriptor, not sys.stderr: if the reader of our stderr stalls, this
        # thread blocks in the kernel without holding the io lock that interpreter exit needs.
        while True:
            lines = [self._queue.get()]
            try:
                while len(lines) < 256:
                    lines.append(self._queue.get_nowait())
            except queue.Empty:
                pass
            data = ("\n".join(lines) + "\n").encode("utf-8", "replace")
            try:
                while data:
                    data = data[os.write(2, data):]
            except OSError:
                pass
            self._unwritten -= len(lines)

    def flush(self, timeout=1.0):
        deadline = time.monotonic() + timeout
        while self.enabled and self._unwritten > 0 and time.monotonic() < deadline:
            time.sleep(0.01)


class HttpConnection(asyncio.Protocol):
    """One client connection: frames HTTP/1.1 requests and answers them strictly in order.

    A protocol rather than asyncio streams: no task per connection and no coroutine hops per
    request, which roughly halves the CPU cost per request at benchmark rates. A request being
    answered (possibly after an injected delay) holds back pipelined ones behind it; reading pauses
    when too much unanswered input piles up or when the client stops reading our responses.
    """

    def __init__(self, sim):
        self.sim = sim
        self.transport = None
        self.buf = bytearray()
        self.scanned = 0  # Bytes of buf already searched for the end of the head.
        self.pending = None  # Parsed head of a request whose body has not fully arrived.
        self.continue_sent = False
        self.busy = False  # A request is being answered.
        self.advancing = False  # Inside _advance(); responses sent from there must not recurse.
        self.eof = False
        self.closed = False
        self.write_paused = False
        self.read_paused = False

    # asyncio.Protocol callbacks.

    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self.sim.connections.add(self)

    def connection_lost(self, exc):
        self.closed = True
        self.sim.connections.discard(self)

    def data_received(self, data):
        self.buf += data
        if not self.busy:
            self._advance()
        self._update_reading()

    def eof_received(self):
        self.eof = True
        if not self.busy:
            self._advance()
        return True  # Keep our side open until the response to a pending request is written.

    def pause_writing(self):
        self.write_paused = True
        self._update_reading()

    def resume_writing(self):
        self.write_paused = False
        self._update_reading()

    # Used by the Simulator.

    def send(self, data, keep_alive):
        """Answers the current request; data None closes without answering (an injected drop)."""
        self.busy = False
        if self.closed:
            return
        if data is not None:
            self.transport.write(data)
        if data is None or not keep_alive:
            self.close()
            return
        if not self.advancing:
            self._advance()
            self._update_reading()

    def fail(self, status, message):
        """Answers an HTTP-level error and closes: after one, the framing cannot be trusted."""
        self.busy = False
        if not self.closed:
            self.transport.write(self.sim.http_error_bytes(status, message))
            self.close()

    def close(self):
        if not self.closed:
            self.closed = True
            self.transport.close()

    def abort(self):
        self.closed = True
        self.transport.abort()

    # Framing.

    def _update_reading(self):
        if self.closed:
            return
        pause = self.write_paused or (self.busy and len(self.buf) > MAX_UNANSWERED_BYTES)
        if pause != self.read_paused:
            self.read_paused = pause
            if pause:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    def _advance(self):
        if self.advancing:
            return
        self.advancing = True
        try:
            while not self.busy and not self.closed and self._next_request():
                pass
        except Exception as e:  # Never let one bad request take the server down.
            self.sim.log("internal error: %s: %s" % (type(e).__name__, e))
            self.fail(500, "internal simulator error")
        finally:
            self.advancing = False

    def _next_request(self):
        """Frames and dispatches one request; False when more input is needed."""
        buf = self.buf
        req = self.pending
        if req is None:
            start = 0
            while buf.startswith(b"\r\n", start):
                start += 2  # RFC 9112 2.2: ignore empty lines before a request line.
            if start:
                del buf[:start]
                self.scanned = 0
            end = buf.find(b"\r\n\r\n", self.scanned)
            if end < 0 or end + 4 > MAX_HEADER_BYTES:
                if len(buf) > MAX_HEADER_BYTES:
                    self.fail(431, "request header block too large")
                elif self.eof:
                    self.close()  # Peer closed, possibly mid-head; nobody to answer.
                else:
                    self.scanned = max(0, len(buf) - 3)
                return False
            head_len = end + 4
            try:
                req = parse_request_head(bytes(buf[:head_len]))
            except HttpError as e:
                self.fail(e.status, e.message)
                return False
            del buf[:head_len]
            self.scanned = 0
            self.pending = req
            self.continue_sent = False
        length = req.content_length
        if len(buf) < length:
            if req.expect_continue and not self.continue_sent:
                self.continue_sent = True
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            if self.eof:
                self.close()
            return False
        body = bytes(buf[:length])
        del buf[:length]
        self.pending = None
        self.busy = True
        self.sim.dispatch(self, req, body)
        return True


class ApiCall:
    """A Twilio API request between arrival and answer (which an injected delay may postpone)."""
    __slots__ = ("conn", "req", "op", "route", "is_form", "form", "form_error", "key", "auth_ok",
                 "key_stats", "entry", "rule", "started", "account")


class Simulator:
    def __init__(self, args, log):
        self.account_sid = args.account_sid
        self.auth_token = args.auth_token.encode("utf-8")
        # API Key SID -> secret. Replaceable at run time (/_sim/config "api_keys") to test
        # credential rotation: Twilio accepts every key that is not revoked.
        self.startup_api_keys = ({args.api_key: (args.api_secret or "").encode("utf-8")}
                                 if args.api_key else {})
        self.api_keys = dict(self.startup_api_keys)
        self.startup_delay_ms = float(args.delay_ms)
        self.startup_call_state = args.default_call_state
        self.startup_idempotency_window_s = args.idempotency_window_s
        self.startup_max_content_bytes = args.max_content_bytes
        self.startup_max_concurrent = args.max_concurrent_requests
        self.rng = random.Random(args.seed)
        self.log = log
        self.loop = None
        self.connections = set()
        self.delivery_tasks = set()  # Running /_sim/deliver requests (held against collection).
        self.in_flight = 0
        # Account SID in the path -> its API requests being answered (Twilio's per-account count,
        # which Twilio-Concurrent-Requests reports and --max-concurrent-requests limits).
        self.account_in_flight = collections.Counter()
        self._date_second = -1
        self._date_header = b""
        self.reset()

    def reset(self):
        self.delay_ms = self.startup_delay_ms
        self.default_call_state = self.startup_call_state
        # Seconds a created subscription is replayed for its IdempotencyKey; None: forever.
        self.idempotency_window_s = self.startup_idempotency_window_s
        # Largest Content, in UTF-8 bytes, a message may have; past it Twilio answers 31212.
        self.max_content_bytes = self.startup_max_content_bytes
        # Concurrent API requests an account may have; past it, 429 with code 20429. 0: none.
        self.max_concurrent = self.startup_max_concurrent
        self.concurrency_throttled = 0
        self.max_account_in_flight = 0
        self.api_keys = dict(self.startup_api_keys)
        self.rules = []
        self.call_states = {}
        self.request_log = collections.deque(maxlen=REQUEST_LOG_SIZE)
        self.subscription_log = collections.deque(maxlen=SUBSCRIPTION_LOG_SIZE)
        self.message_log = collections.deque(maxlen=MESSAGE_LOG_SIZE)
        # Subscription SID -> subscription, for the ones not deleted (oldest first).
        self.live_subscriptions = {}
        # "<account>/<call>/<key>" -> [requests seen, subscriptions created, subscription or None,
        #                               monotonic time the subscription was created]
        self.by_key = {}
        # The same for messages: [requests seen, messages created, message or None, time].
        self.messages_by_key = {}
        self.requests_total = 0
        self.subscriptions_total = 0
        self.without_key = 0
        self.subscriptions_deleted = 0
        self.messages_total = 0
        self.messages_without_key = 0
        self.idempotent_replays = 0
        self.faults_applied = 0
        self.max_in_flight = self.in_flight
        # CallSid -> the SequenceNumber of the next user-defined message delivered for the call.
        self.sequence_numbers = {}
        self.callback_requests = 0

    # ------------------------------------------------------------------------ responses

    def _date(self):
        now = int(time.time())
        if now != self._date_second:
            self._date_second = now
            self._date_header = email.utils.formatdate(now, usegmt=True).encode("ascii")
        return self._date_header

    def response_bytes(self, status, body, keep_alive, version="HTTP/1.1", head_only=False,
                       extra_headers=(), concurrent=None):
        lines = [
            b"HTTP/1.1 %d %s" % (status, _reason(status).encode("ascii")),
            b"Date: " + self._date(),
        ]
        if status != 204:  # RFC 9110 6.4.1: a 204 has no content, so no Content-Length.
            lines.append(b"Content-Type: application/json")
            lines.append(b"Content-Length: %d" % len(body))
        lines.append(b"Twilio-Request-Id: " + _new_sid("RQ").encode("ascii"))
        lines.append(b"Twilio-Concurrent-Requests: %d" %
                     (self.in_flight if concurrent is None else concurrent))
        for name, value in extra_headers:
            lines.append(name.encode("latin-1") + b": " + value.encode("latin-1"))
        if not keep_alive:
            lines.append(b"Connection: close")
        elif version == "HTTP/1.0":
            lines.append(b"Connection: keep-alive")
        lines.append(b"")
        lines.append(b"" if head_only or status in (204, 304) or status < 200 else body)
        return b"\r\n".join(lines)

    def http_error_bytes(self, status, message):
        code, text = (20001, "Bad Request: " + message) if status == 400 else (status, message)
        return self.response_bytes(status, _json_bytes(_twilio_error(status, code, text)),
                                   keep_alive=False)

    def dispatch(self, conn, req, body):
        if req.path == "/_sim" or req.path.startswith("/_sim/"):
            self._handle_admin(conn, req, body)
        else:
            self._handle_api(conn, req, body)

    # ------------------------------------------------------------------------ the Twilio API

    def _handle_api(self, conn, req, body):
        """Records the request, picks a fault, then answers now or after the injected delay."""
        call = ApiCall()
        call.conn = conn
        call.req = req
        call.started = time.monotonic()
        self.requests_total += 1
        self.in_flight += 1
        if self.in_flight > self.max_in_flight:
            self.max_in_flight = self.in_flight

        headers = req.headers
        call.op, route = None, None
        for op, (pattern, _) in ROUTES.items():
            route = pattern.match(req.path)
            if route:
                call.op = op
                break
        call.route = route
        account_in_path, call_in_path = route.groups()[:2] if route else (None, None)
        call.account = None
        content_type = headers.get("content-type", "")
        is_form = call.is_form = content_type.split(";", 1)[0].strip().lower() == \
            "application/x-www-form-urlencoded"
        form, call.form_error = parse_form(body) if is_form else ({}, None)
        call.form = form
        key = call.key = form.get("IdempotencyKey") or None

        auth_user, password = parse_basic_auth(headers.get("authorization"))
        auth_ok = call.auth_ok = self._check_credentials(auth_user, password)

        logged_headers = dict(headers)
        if "authorization" in logged_headers:
            logged_headers["authorization"] = "<redacted>"
        # Mirrored inside headers too, so either place a reader looks finds them.
        logged_headers["auth_user"] = auth_user
        logged_headers["auth_ok"] = auth_ok
        raw_body = body.decode("utf-8", "replace")
        entry = call.entry = {
            "operation": call.op,
            "method": req.method,
            "path": req.path,
            "query": req.query,
            "headers": logged_headers,
            "auth_user": auth_user,
            "auth_ok": auth_ok,
            "form": form,
            "raw_body": raw_body[:MAX_LOGGED_BODY_CHARS],
            "raw_body_truncated": len(raw_body) > MAX_LOGGED_BODY_CHARS,
            "response_status": None,
            "fault": None,
            "subscription_sid": None,
            "message_sid": None,
            "time": time.time(),
        }
        self.request_log.append(entry)

        if account_in_path is not None:
            if 0 < self.max_concurrent <= self.account_in_flight[account_in_path]:
                self._throttle(call, account_in_path)
                return
            call.account = account_in_path
            self.account_in_flight[account_in_path] += 1
            self.max_account_in_flight = max(self.max_account_in_flight,
                                             self.account_in_flight[account_in_path])

        call.key_stats = None
        if call.op in ("create", "send") and req.method == "POST" and key is not None:
            stats_key = "%s/%s/%s" % (account_in_path, call_in_path, key)
            table = self.by_key if call.op == "create" else self.messages_by_key
            key_stats = table.get(stats_key)
            if key_stats is None:
                key_stats = table[stats_key] = [0, 0, None, 0.0]
            key_stats[0] += 1
            call.key_stats = key_stats

        rule = call.rule = self._pick_fault(call.op, call_in_path, key)
        if rule is not None:
            entry["fault"] = rule.description
        delay_ms = self.delay_ms + (rule.delay_ms if rule is not None else 0.0)
        if delay_ms > 0:
            self.loop.call_later(delay_ms / 1000.0, self._finish_api, call)
        else:
            self._finish_api(call)

    def _finish_api(self, call):
        try:
            data, keep_alive = self._api_response(call)
        except Exception as e:  # Never let one bad request take the server down.
            self.log("internal error: %s: %s" % (type(e).__name__, e))
            data, keep_alive = self.http_error_bytes(500, "internal simulator error"), False
        self.in_flight -= 1
        if call.account is not None:
            self.account_in_flight[call.account] -= 1
            if self.account_in_flight[call.account] <= 0:
                del self.account_in_flight[call.account]
        call.conn.send(data, keep_alive)

    def _throttle(self, call, account):
        """Twilio's answer past the account's concurrency limit, at once and before anything else:
        429 with code 20429, which is never processed and always safe to retry."""
        req = call.req
        self.in_flight -= 1
        self.concurrency_throttled += 1
        call.entry["response_status"] = 429
        call.entry["fault"] = "concurrency limit %d" % self.max_concurrent
        self._log_api(call)
        body = _json_bytes(_twilio_error(429, 20429, "Too many concurrent requests"))
        call.conn.send(self.response_bytes(429, body, req.keep_alive, req.version,
                                           req.method == "HEAD",
                                           concurrent=self.account_in_flight[account]),
                       req.keep_alive)

    def _api_response(self, call):
        """Returns (response bytes, or None to close without answering; keep-alive)."""
        req, rule, entry = call.req, call.rule, call.entry
        # Faults that act before the request is processed.
        if rule is not None and rule.drop == "before":
            self._log_api(call)
            return None, False
        if rule is not None and rule.status is not None and not rule.after_record:
            return self._fault_status_response(call), req.keep_alive

        status, payload, extra = self._process(call)

        # Faults that act after the request was processed (and possibly recorded).
        if rule is not None and rule.drop == "after":
            self._log_api(call)
            return None, False
        if rule is not None and rule.status is not None:
            return self._fault_status_response(call), req.keep_alive
        if rule is not None and rule.malformed:
            payload = payload[:max(1, min(20, len(payload) // 2))]
        entry["response_status"] = status
        self._log_api(call)
        return self.response_bytes(status, payload, req.keep_alive, req.version,
                                   req.method == "HEAD", extra,
                                   self._concurrent(call)), req.keep_alive

    def _concurrent(self, call):
        """Twilio-Concurrent-Requests: the account's requests in flight, this one included."""
        return None if call.account is None else self.account_in_flight[call.account]

    def _check_credentials(self, user, password):
        if user is None or password is None:
            return False
        secret = password.encode("utf-8")
        if user == self.account_sid:
            return hmac.compare_digest(secret, self.auth_token)
        expected = self.api_keys.get(user)
        if expected is not None:
            return hmac.compare_digest(secret, expected)
        return False

    def _pick_fault(self, operation, call_sid, idempotency_key):
        for rule in self.rules:
            if rule.matches(operation, call_sid, idempotency_key, self.rng):
                if rule.remaining is not None:
                    rule.remaining -= 1
                rule.applied += 1
                self.faults_applied += 1
                return rule
        return None

    def _fault_status_response(self, call):
        req, rule = call.req, call.rule
        status = rule.status
        code = rule.code if rule.code is not None else DEFAULT_FAULT_CODES.get(status, status)
        message = rule.message if rule.message is not None else _reason(status)
        extra = [("Retry-After", rule.retry_after)] if rule.retry_after is not None else []
        call.entry["response_status"] = status
        self._log_api(call)
        return self.response_bytes(status, _json_bytes(_twilio_error(status, code, message)),
                                   req.keep_alive, req.version, req.method == "HEAD", extra,
                                   self._concurrent(call))

    def _process(self, call):
        """Twilio's checks in order; returns (status, body bytes, extra headers)."""
        req, route, form = call.req, call.route, call.form
        not_found = "The requested resource %s was not found" % req.path
        if route is None:
            return _error(404, 20404, not_found)
        allowed = ROUTES[call.op][1]
        if req.method != allowed:
            return _error(405, 20004, "Method not allowed", [("Allow", allowed)])
        if not call.auth_ok:
            return _error(401, 20003, "Authenticate",
                          [("WWW-Authenticate", 'Basic realm="Twilio API"')])
        account_sid, call_sid = route.groups()[:2]
        if not ACCOUNT_SID_RE.fullmatch(account_sid) or not CALL_SID_RE.fullmatch(call_sid):
            return _error(404, 20404, not_found)
        if call.op == "delete" and not SUBSCRIPTION_SID_RE.fullmatch(route.group(3)):
            return _error(404, 20404, not_found)
        if account_sid != self.account_sid:
            return _error(401, 20003, "Authenticate",
                          [("WWW-Authenticate", 'Basic realm="Twilio API"')])
        if call.op == "delete":
            return self._delete_subscription(call, account_sid, call_sid, route.group(3))
        if not call.is_form:
            return _error(400, 20001, "Invalid Content-Type")
        if call.form_error is not None:
            return _error(400, 20001, "Invalid form body")
        if call.op == "send":
            return self._send_message(call, account_sid, call_sid)
        return self._create_subscription(call, account_sid, call_sid)

    def _call_not_found(self, account_sid, call_sid):
        return _error(404, 20404, "The requested resource /2010-04-01/Accounts/%s/Calls/%s.json"
                      " was not found" % (account_sid, call_sid))

    def _replayable(self, key_stats):
        """What the request's IdempotencyKey created earlier, if Twilio still remembers it."""
        if (key_stats is not None and key_stats[2] is not None
                and self.idempotency_window_s is not None
                and time.monotonic() - key_stats[3] > self.idempotency_window_s):
            # Like any real API, the key is honoured for a limited time only: after the window
            # the same key creates another resource.
            key_stats[2] = None
        return None if key_stats is None else key_stats[2]

    def _create_subscription(self, call, account_sid, call_sid):
        form = call.form
        callback = form.get("Callback")
        if not callback:
            return _error(400, 20001, "Missing required parameter Callback in the post body")
        if not is_valid_callback(callback):
            return _error(400, 20001, "Invalid Callback URL")
        method = form.get("Method")
        if method is not None and method not in ("GET", "POST"):
            return _error(400, 20001, "Method must be GET or POST")

        state = self.call_states.get(call_sid, self.default_call_state)
        if state == MISSING_CALL_STATE:
            return self._call_not_found(account_sid, call_sid)
        if state not in ACTIVE_CALL_STATES:
            return _error(400, 21220, "Call is not in-progress. Cannot create subscription.")

        key_stats = call.key_stats
        subscription = self._replayable(key_stats)
        if subscription is not None:
            self.idempotent_replays += 1
            call.entry["idempotent_replay"] = True
        else:
            sid = _new_sid("ZY")
            public = {
                "account_sid": account_sid,
                "call_sid": call_sid,
                "sid": sid,
                "date_created": _rfc2822_now(),
                "uri": "/2010-04-01/Accounts/%s/Calls/%s/UserDefinedMessageSubscriptions/%s.json"
                       % (account_sid, call_sid, sid),
            }
            subscription = {
                "public": public,
                "body": _json_bytes(public),
                "callback": callback,
                "method": method or "POST",
                "idempotency_key": call.key,
                "deleted": False,
            }
            self.subscriptions_total += 1
            if key_stats is not None:
                key_stats[1] += 1
                key_stats[2] = subscription
                key_stats[3] = time.monotonic()
            else:
                self.without_key += 1
            self.subscription_log.append(subscription)
            if len(self.live_subscriptions) >= LIVE_SUBSCRIPTIONS_MAX:
                del self.live_subscriptions[next(iter(self.live_subscriptions))]
            self.live_subscriptions[sid] = subscription
        call.entry["subscription_sid"] = subscription["public"]["sid"]
        return 201, subscription["body"], []

    def _delete_subscription(self, call, account_sid, call_sid, sid):
        # Only the subscription's existence decides: Twilio documents nothing about deleting on an
        # ended call, and a call that no longer exists has no subscriptions to find either.
        call.entry["subscription_sid"] = sid
        subscription = self.live_subscriptions.get(sid)
        if (subscription is None or subscription["public"]["account_sid"] != account_sid
                or subscription["public"]["call_sid"] != call_sid):
            return _error(404, 20404, "The requested resource %s was not found" % call.req.path)
        del self.live_subscriptions[sid]
        subscription["deleted"] = True
        self.subscriptions_deleted += 1
        return 204, b"", []

    def _send_message(self, call, account_sid, call_sid):
        content = call.form.get("Content")
        if content is None or content == "":
            return _error(400, 20001, "Missing required parameter Content in the post body")
        if not is_json_document(content):
            return _error(400, 20001, "Content must be a valid JSON string")
        if len(content.encode("utf-8")) > self.max_content_bytes:
            return _error(400, 31212, "User defined message payload size exceeds the limit")

        state = self.call_states.get(call_sid, self.default_call_state)
        if state == MISSING_CALL_STATE:
            return self._call_not_found(account_sid, call_sid)
        if state not in ACTIVE_CALL_STATES:
            return _error(400, 31211, "Call is not ringing or in-progress. Cannot send a user "
                          "defined message.")

        key_stats = call.key_stats
        message = self._replayable(key_stats)
        if message is not None:
            self.idempotent_replays += 1
            call.entry["idempotent_replay"] = True
        else:
            public = {
                "account_sid": account_sid,
                "call_sid": call_sid,
                "sid": _new_sid("KX"),
                "date_created": _rfc2822_now(),
            }
            message = {"public": public, "body": _json_bytes(public), "content": content,
                       "idempotency_key": call.key}
            self.messages_total += 1
            if key_stats is not None:
                key_stats[1] += 1
                key_stats[2] = message
                key_stats[3] = time.monotonic()
            else:
                self.messages_without_key += 1
            self.message_log.append(message)
        call.entry["message_sid"] = message["public"]["sid"]
        return 201, message["body"], []

    def _log_api(self, call):
        if not self.log.enabled:
            return
        entry = call.entry
        status = entry["response_status"]
        self.log("%s %s -> %s%s (%.1f ms)" % (
            call.req.method, call.req.path, "dropped" if status is None else status,
            " [%s]" % entry["fault"] if entry["fault"] else "",
            (time.monotonic() - call.started) * 1000.0))

    # ------------------------------------------------------------------------ the admin API

    def _handle_admin(self, conn, req, body):
        try:
            if req.path.rstrip("/") == "/_sim/deliver":
                if req.method != "POST":
                    raise HttpError(405, "method not allowed; use POST")
                plan = self._plan_delivery(self._json_body(body))
                # Answered when every callback has answered or failed; the connection waits.
                task = self.loop.create_task(self._deliver(conn, req, plan))
                self.delivery_tasks.add(task)
                task.add_done_callback(self.delivery_tasks.discard)
                return
            status, obj = self._admin(req, body)
        except HttpError as e:
            status, obj = e.status, {"error": e.message}
        self._answer_admin(conn, req, status, obj)

    def _answer_admin(self, conn, req, status, obj):
        if self.log.enabled:
            self.log("admin %s %s -> %d" % (req.method, req.path, status))
        conn.send(self.response_bytes(status, _json_bytes(obj), req.keep_alive, req.version,
                                      req.method == "HEAD"), req.keep_alive)

    def _plan_delivery(self, spec):
        """Validates a /_sim/deliver body and makes its messages; raises HttpError."""
        if not isinstance(spec, dict):
            raise HttpError(400, "body must be a JSON object")
        unknown = set(spec) - DELIVER_KEYS
        if unknown:
            raise HttpError(400, "unknown keys %s" % sorted(unknown))

        def number(key, default, kinds, low, high):
            value = spec.get(key)
            if value is None:
                return default
            if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
                raise HttpError(400, "%s must be a number in [%g, %g]" % (key, low, high))
            return value

        subscription_sid, call_sid = spec.get("subscription_sid"), spec.get("call_sid")
        if (subscription_sid is None) == (call_sid is None):
            raise HttpError(400, "give exactly one of subscription_sid and call_sid")
        if subscription_sid is not None:
            if not isinstance(subscription_sid, str) or \
                    not SUBSCRIPTION_SID_RE.fullmatch(subscription_sid):
                raise HttpError(400, "subscription_sid must match ^ZY[0-9a-fA-F]{32}$")
            subscription = self.live_subscriptions.get(subscription_sid)
            if subscription is None:
                raise HttpError(404, "no live subscription %s" % subscription_sid)
            subscriptions = [subscription]
            call_sid = subscription["public"]["call_sid"]
        else:
            if not isinstance(call_sid, str) or not CALL_SID_RE.fullmatch(call_sid):
                raise HttpError(400, "call_sid must match ^CA[0-9a-fA-F]{32}$")
            subscriptions = [s for s in self.live_subscriptions.values()
                             if s["public"]["call_sid"] == call_sid]
            if not subscriptions:
                raise HttpError(404, "call %s has no live subscription" % call_sid)
        state = self.call_states.get(call_sid, self.default_call_state)
        if state not in ACTIVE_CALL_STATES:
            # The SDK can only send during an active call, so Twilio has nothing to deliver.
            raise HttpError(409, "call %s is %s; messages flow only while it is ringing or "
                            "in-progress" % (call_sid, state))

        content, contents = spec.get("content"), spec.get("contents")
        if content is not None and contents is not None:
            raise HttpError(400, "give content or contents, not both")
        if content is not None and not isinstance(content, str):
            raise HttpError(400, "content must be a string (the SDK's JSON text)")
        if contents is not None and (not isinstance(contents, list) or not contents or not all(
                isinstance(c, str) for c in contents)):
            raise HttpError(400, "contents must be a non-empty list of strings")
        count = number("count", len(contents) if contents is not None else 1, (int,), 1,
                       MAX_DELIVERIES)
        if contents is not None and count != len(contents):
            raise HttpError(400, "count must equal the number of contents")
        content_type = spec.get("content_type", "application/json")
        if not isinstance(content_type, str):
            raise HttpError(400, "content_type must be a string")
        duplicate = spec.get("duplicate")
        duplicate = int(duplicate) if isinstance(duplicate, bool) else \
            number("duplicate", 0, (int,), 0, MAX_DELIVERIES)
        forge = spec.get("forge")
        forge = "signature" if forge is True else (None if forge is False else forge)
        if forge is not None and forge not in FORGE_KINDS:
            raise HttpError(400, 'forge must be true, false, "signature", "missing" or "body"')
        body_form = spec.get("body_form") or "json"
        if body_form not in ("json", "form"):
            raise HttpError(400, 'body_form must be "json" or "form"')
        order = spec.get("order") or "sequence"
        if order not in ("sequence", "reverse", "shuffle"):
            raise HttpError(400, 'order must be "sequence", "reverse" or "shuffle"')
        concurrency = number("concurrency", 1, (int,), 1, MAX_DELIVERIES)
        timeout_s = float(number("timeout_s", DEFAULT_DELIVERY_TIMEOUT_S, (int, float), 0.001,
                                 MAX_DELIVERY_TIMEOUT_S))
        if count * len(subscriptions) * (1 + duplicate) > MAX_DELIVERIES:
            raise HttpError(400, "at most %d deliveries per request" % MAX_DELIVERIES)

        messages, deliveries = [], []
        for i in range(count):
            sequence_number = self.sequence_numbers.get(call_sid, 0)
            self.sequence_numbers[call_sid] = sequence_number + 1
            text = (contents[i] if contents is not None else content if content is not None
                    else _json_bytes({"n": sequence_number}).decode("utf-8"))
            fields = {
                "ContentType": content_type,
                "Content": text,
                "SequenceNumber": sequence_number,
                "CallSid": call_sid,
                "AccountSid": subscriptions[0]["public"]["account_sid"],
                "Sid": _new_sid("KX"),
                "Timestamp": _rfc2822_now(),
            }
            messages.append({"sid": fields["Sid"], "sequence_number": sequence_number,
                             "content": text, "timestamp": fields["Timestamp"]})
            for subscription in subscriptions:
                for copy in range(1 + duplicate):
                    deliveries.append((subscription, fields, copy))
        if order == "reverse":
            deliveries.reverse()
        elif order == "shuffle":
            self.rng.shuffle(deliveries)
        return {"deliveries": deliveries, "messages": messages, "body_form": body_form,
                "forge": forge, "concurrency": concurrency, "timeout_s": timeout_s}

    async def _deliver(self, conn, req, plan):
        try:
            deliveries = plan["deliveries"]
            results = [None] * len(deliveries)
            pending = iter(range(len(deliveries)))

            async def worker():
                # Workers take deliveries in order, so one worker sends them strictly one after
                # another: each starts once the previous callback answered.
                for index in pending:
                    results[index] = await self._deliver_one(index, deliveries[index], plan)

            await asyncio.gather(*(worker() for _ in range(min(plan["concurrency"],
                                                               len(deliveries)))))
            ok = sum(1 for r in results if r["status"] is not None and 200 <= r["status"] < 300)
            status, obj = 200, {"messages": plan["messages"], "deliveries": results,
                                "succeeded": ok, "failed": len(results) - ok}
        except Exception as e:  # The admin caller must get an answer, whatever went wrong.
            self.log("internal error in /_sim/deliver: %s: %s" % (type(e).__name__, e))
            status, obj = 500, {"error": "internal simulator error: %s" % e}
        self._answer_admin(conn, req, status, obj)

    async def _deliver_one(self, index, delivery, plan):
        subscription, fields, copy = delivery
        method = subscription["method"]
        url, headers, body, used = build_callback_request(
            subscription["callback"], method, fields, self.auth_token, plan["body_form"],
            plan["forge"])
        self.callback_requests += 1
        started = time.monotonic()
        status, excerpt, error = await http_exchange(method, url, headers, body,
                                                     plan["timeout_s"])
        elapsed_ms = (time.monotonic() - started) * 1000.0
        if self.log.enabled:
            self.log("deliver %s %s %s -> %s (%.1f ms)" % (
                fields["Sid"], method, url.partition("?")[0],
                error if status is None else status, elapsed_ms))
        return {
            "index": index,
            "subscription_sid": subscription["public"]["sid"],
            "call_sid": fields["CallSid"],
            "sid": fields["Sid"],
            "sequence_number": fields["SequenceNumber"],
            "copy": copy,
            "method": method,
            "body_form": used,
            "url": url,
            "forge": plan["forge"],
            "status": status,
            "error": error,
            "response_body": excerpt,
            "elapsed_ms": round(elapsed_ms, 1),
        }

    @staticmethod
    def _json_body(body, required=True):
        if not body.strip():
            if required:
                raise HttpError(400, "a JSON body is required")
            return None
        try:
            return json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise HttpError(400, "invalid JSON body: %s" % e)

    def _admin(self, req, body):
        path = req.path.rstrip("/") or "/"
        method = req.method
        query = urllib.parse.parse_qs(req.query)

        def allow(*methods):
            if method not in methods:
                raise HttpError(405, "method not allowed; use %s" % ", ".join(methods))

        if path == "/_sim/faults":
            allow("GET", "POST", "PUT", "DELETE")
            if method in ("POST", "PUT"):
                spec = self._json_body(body)
                rules = spec.get("rules") if isinstance(spec, dict) else spec
                if not isinstance(rules, list):
                    raise HttpError(400, 'body must be {"rules": [ ... ]}')
                try:
                    self.rules = [FaultRule(i, r) for i, r in enumerate(rules)]
                except ValueError as e:
                    raise HttpError(400, str(e))
            elif method == "DELETE":
                self.rules = []
            return 200, {"rules": [r.to_json() for r in self.rules]}

        if path == "/_sim/calls":
            allow("GET", "DELETE")
            if method == "DELETE":
                self.call_states = {}
            return 200, {"default_call_state": self.default_call_state, "calls": self.call_states}

        if path.startswith("/_sim/calls/"):
            call_sid = path[len("/_sim/calls/"):]
            if not CALL_SID_RE.fullmatch(call_sid):
                raise HttpError(400, "CallSid must match ^CA[0-9a-fA-F]{32}$")
            allow("GET", "PUT", "POST", "DELETE")
            if method in ("PUT", "POST"):
                spec = self._json_body(body)
                state = spec.get("state") if isinstance(spec, dict) else None
                if not isinstance(state, str) or not state:
                    raise HttpError(400, 'body must be {"state": "<call state>"}')
                self.call_states[call_sid] = state
            elif method == "DELETE":
                self.call_states.pop(call_sid, None)
            return 200, {"call_sid": call_sid,
                         "state": self.call_states.get(call_sid, self.default_call_state)}

        if path == "/_sim/config":
            allow("GET", "POST", "PUT")
            if method in ("POST", "PUT"):
                spec = self._json_body(body)
                if not isinstance(spec, dict):
                    raise HttpError(400, "body must be a JSON object")
                unknown = set(spec) - CONFIG_KEYS
                if unknown:
                    raise HttpError(400, "unknown keys %s" % sorted(unknown))
                if "delay_ms" in spec:
                    delay = spec["delay_ms"]
                    if delay is None:
                        delay = 0
                    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
                        raise HttpError(400, "delay_ms must be a number >= 0")
                    self.delay_ms = float(delay)
                if "default_call_state" in spec:
                    state = spec["default_call_state"]
                    if not isinstance(state, str) or not state:
                        raise HttpError(400, "default_call_state must be a non-empty string")
                    self.default_call_state = state
                if "idempotency_window_s" in spec:
                    window = spec["idempotency_window_s"]
                    if window is not None and (isinstance(window, bool) or
                                               not isinstance(window, (int, float)) or window < 0):
                        raise HttpError(400, "idempotency_window_s must be a number >= 0 or null")
                    self.idempotency_window_s = None if window is None else float(window)
                if "max_content_bytes" in spec:
                    limit = spec["max_content_bytes"]
                    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
                        raise HttpError(400, "max_content_bytes must be an integer >= 0")
                    self.max_content_bytes = limit
                if "max_concurrent_requests" in spec:
                    limit = spec["max_concurrent_requests"]
                    if limit is None:
                        limit = 0
                    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
                        raise HttpError(400, "max_concurrent_requests must be an integer >= 0")
                    self.max_concurrent = limit
                if "api_keys" in spec:
                    keys = spec["api_keys"]
                    if not isinstance(keys, dict) or not all(
                            isinstance(k, str) and isinstance(v, str) for k, v in keys.items()):
                        raise HttpError(400, "api_keys must map API Key SIDs to secrets")
                    self.api_keys = {k: v.encode("utf-8") for k, v in keys.items()}
            return 200, {"delay_ms": self.delay_ms, "default_call_state": self.default_call_state,
                         "idempotency_window_s": self.idempotency_window_s,
                         "max_content_bytes": self.max_content_bytes,
                         "max_concurrent_requests": self.max_concurrent,
                         "api_keys": sorted(self.api_keys)}

        if path == "/_sim/requests":
            allow("GET", "DELETE")
            if method == "DELETE":
                self.request_log.clear()
            entries = list(self.request_log)
            limit = query.get("limit")
            if limit and limit[0].isdigit():
                entries = entries[-int(limit[0]):] if int(limit[0]) else []
            return 200, {"requests": entries}

        if path == "/_sim/subscriptions":
            allow("GET")
            return 200, {"subscriptions": [
                dict(s["public"], callback=s["callback"], method=s["method"],
                     idempotency_key=s["idempotency_key"], deleted=s["deleted"])
                for s in self.subscription_log]}

        if path == "/_sim/messages":
            allow("GET")
            return 200, {"messages": [
                dict(m["public"], content=m["content"], idempotency_key=m["idempotency_key"])
                for m in self.message_log]}

        if path == "/_sim/stats":
            allow("GET")
            stats = {
                "requests": self.requests_total,
                "subscriptions": self.subscriptions_total,
                "without_key": self.without_key,
                "subscriptions_live": len(self.live_subscriptions),
                "subscriptions_deleted": self.subscriptions_deleted,
                "messages": self.messages_total,
                "messages_without_key": self.messages_without_key,
                "idempotent_replays": self.idempotent_replays,
                "faults_applied": self.faults_applied,
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "max_concurrent_requests": self.max_concurrent,
                "max_account_in_flight": self.max_account_in_flight,
                "concurrency_throttled": self.concurrency_throttled,
                "connections": len(self.connections),
                "delay_ms": self.delay_ms,
                "log_lines_dropped": self.log.dropped,
                "callback_requests": self.callback_requests,
            }
            if query.get("by_key", ["1"])[0].lower() not in ("0", "false", "no"):
                stats["by_key"] = {k: {"requests": v[0], "subscriptions": v[1]}
                                   for k, v in self.by_key.items()}
                stats["messages_by_key"] = {k: {"requests": v[0], "messages": v[1]}
                                            for k, v in self.messages_by_key.items()}
            return 200, stats

        if path == "/_sim/reset":
            allow("POST")
            self.reset()
            return 200, {"reset": True}

        if path == "/_sim/health":
            allow("GET")
            return 200, {"ok": True}

        raise HttpError(404, "unknown admin path %s" % req.path)


def _write_port_file(path, port):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".twilio-sim-port-", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _listen_socket(host, port):
    # One socket for the first resolved address: with port 0 and a host name resolving to both
    # IPv4 and IPv6, asyncio would bind two sockets on two different ports.
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, socktype, proto, _, address = infos[0]
    sock = socket.socket(family, socktype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


async def _serve(args, log):
    sim = Simulator(args, log)
    sock = _listen_socket(args.host, args.port)
    loop = asyncio.get_running_loop()
    sim.loop = loop
    server = await loop.create_server(lambda: HttpConnection(sim), sock=sock,
                                      backlog=LISTEN_BACKLOG)
    port = sock.getsockname()[1]
    if args.port_file:
        _write_port_file(args.port_file, port)
    host = "[%s]" % args.host if ":" in args.host else args.host
    sys.stdout.write("twilio-simulator listening on http://%s:%d\n" % (host, port))
    sys.stdout.flush()

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    for conn in list(sim.connections):
        conn.abort()
    await asyncio.sleep(0)
    log("twilio-simulator stopped")


def _parse_args(argv):
    p = argparse.ArgumentParser(description="Local simulator of Twilio's user-defined message "
                                "APIs (create and delete a subscription, send a message), with "
                                "fault injection.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--account-sid", default=DEFAULT_ACCOUNT_SID)
    p.add_argument("--auth-token", default=DEFAULT_AUTH_TOKEN)
    p.add_argument("--api-key", default=DEFAULT_API_KEY, help="empty disables API key auth")
    p.add_argument("--api-secret", default=DEFAULT_API_SECRET)
    p.add_argument("--port-file", help="write the bound port here (atomically)")
    p.add_argument("--delay-ms", type=float, default=0.0,
                   help="fixed delay added to every Twilio API request")
    p.add_argument("--default-call-state", default="in-progress",
                   help="state of calls not set through the admin API")
    p.add_argument("--idempotency-window-s", type=float, default=None,
                   help="seconds an IdempotencyKey is honoured after its subscription was created "
                        "(default: forever); Twilio documents no window")
    p.add_argument("--max-content-bytes", type=int, default=DEFAULT_MAX_CONTENT_BYTES,
                   help="largest message Content in UTF-8 bytes before Twilio's 31212 (default "
                        "%(default)s); Twilio publishes no limit")
    p.add_argument("--max-concurrent-requests", type=int, default=0,
                   help="API requests an account may have in flight; past it, 429 with code "
                        "20429 (0: no limit)")
    p.add_argument("--seed", type=int, default=None, help="seed for fault share sampling")
    p.add_argument("--quiet", action="store_true", help="no per-request log lines on stderr")
    args = p.parse_args(argv)
    if not ACCOUNT_SID_RE.fullmatch(args.account_sid):
        p.error("--account-sid must match ^AC[0-9a-fA-F]{32}$")
    if args.idempotency_window_s is not None and args.idempotency_window_s < 0:
        p.error("--idempotency-window-s must be >= 0")
    if args.delay_ms < 0:
        p.error("--delay-ms must be >= 0")
    if args.max_content_bytes < 0:
        p.error("--max-content-bytes must be >= 0")
    if args.max_concurrent_requests < 0:
        p.error("--max-concurrent-requests must be >= 0")
    if not 0 <= args.port <= 65535:
        p.error("--port must be in [0, 65535]")
    return args


def main(argv=None):
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    log = StderrLog(enabled=not args.quiet)
    try:
        asyncio.run(_serve(args, log))
    except KeyboardInterrupt:  # SIGINT before the signal handlers were installed.
        pass
    except OSError as e:
        sys.stderr.write("twilio-simulator: cannot listen on %s:%d: %s\n"
                         % (args.host, args.port, e))
        return 1
    finally:
        log.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
