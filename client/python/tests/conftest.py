"""What client/python/test.sh sets up for these tests, from the clients' shared fixture
(tests/clients/fixture.sh): the Twilio simulator, a plain gateway, a gateway that wants its
callers to authenticate (TLS, a bearer token or a client certificate from the fixture's CA), and
a gateway that receives Twilio's deliveries on its webhook (for watch()).

The tests need them running and fail, not skip, without them: a test that cannot fail is not a
test.
"""

from __future__ import annotations

import dataclasses
import json
import os
import urllib.request
from typing import Any, Iterator, Optional

import pytest

from twilio_gateway_client import SubscriptionClient, Tls, open_channel

CALL_SID = "CA0123456789abcdef0123456789abcdef"
CALLBACK = "https://example.com/twilio/messages"


@dataclasses.dataclass(frozen=True)
class Fixture:
    target: str  # the plain gateway, HOST:PORT
    tls_target: str  # the gateway that wants callers to authenticate
    ca: str  # the fixture's CA (PEM file), which signed the gateway's and the client's certificates
    client_cert: str  # a client certificate its caller policy allows, and its key
    client_key: str
    token: str = dataclasses.field(repr=False)  # a bearer token its caller policy allows
    simulator: str  # the simulator's base URL (http://127.0.0.1:PORT)
    webhook_target: str  # the gateway with a webhook receiver (plaintext, no caller policy)
    webhook_url: str  # its --public-webhook-url: a Create without a callback subscribes it

    def sim(self, method: str, path: str, body: Optional[dict] = None) -> Any:
        """The simulator's admin API (/_sim/...; tests/twilio_simulator/README.md)."""
        request = urllib.request.Request(
            self.simulator + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def sim_key_stats(self, key: str) -> dict:
        """How many requests the simulator received with this idempotency key, and how many
        subscriptions it created for it (it counts by account/call/key)."""
        counts = {"requests": 0, "subscriptions": 0}
        for stats_key, stats in self.sim("GET", "/_sim/stats")["by_key"].items():
            if stats_key.rpartition("/")[2] == key:
                counts = {name: counts[name] + stats[name] for name in counts}
        return counts


@pytest.fixture(scope="session")
def fixture() -> Fixture:
    names = {field.name: "CLIENT_TEST_" + field.name.upper()
             for field in dataclasses.fields(Fixture)}
    missing = [name for name in names.values() if not os.environ.get(name)]
    if missing:
        pytest.fail(f"{', '.join(missing)} not set: run these tests with "
                    "client/python/test.sh GATEWAY_BINARY", pytrace=False)
    return Fixture(**{field: os.environ[name] for field, name in names.items()})


@pytest.fixture
def client(fixture: Fixture) -> Iterator[SubscriptionClient]:
    """A client of the plain gateway."""
    with open_channel(fixture.target) as channel:
        yield SubscriptionClient(channel)


@pytest.fixture
def receiver(fixture: Fixture) -> Iterator[SubscriptionClient]:
    """A client of the gateway that receives Twilio's deliveries (Watch)."""
    with open_channel(fixture.webhook_target) as channel:
        yield SubscriptionClient(channel)


@pytest.fixture
def tls(fixture: Fixture) -> Tls:
    """TLS that verifies the authenticating gateway, without a client certificate."""
    return Tls.from_files(fixture.ca)
