"""The gateway that names its callers: TLS verified against its CA, with a bearer token or a
client certificate (mutual TLS)."""

import grpc
import pytest

from conftest import CALL_SID, CALLBACK
from twilio_gateway_client import GatewayError, SubscriptionClient, Tls, open_channel


def test_tls_with_a_token_creates(fixture, tls):
    with open_channel(fixture.tls_target, tls) as channel:
        created = SubscriptionClient(channel, token=fixture.token).create(CALL_SID, CALLBACK)
    assert created.subscription.call_sid == CALL_SID


def test_tls_without_a_token_is_unauthenticated(fixture, tls):
    with open_channel(fixture.tls_target, tls) as channel:
        with pytest.raises(GatewayError) as raised:
            SubscriptionClient(channel).create(CALL_SID, CALLBACK)
    error = raised.value
    assert error.code == grpc.StatusCode.UNAUTHENTICATED
    assert error.reason == "CALLER_UNAUTHENTICATED"
    assert error.next_step == "retrying with it changes nothing until the cause is fixed"


def test_mutual_tls_with_a_client_certificate_creates(fixture):
    tls = Tls.from_files(fixture.ca, fixture.client_cert, fixture.client_key)
    with open_channel(fixture.tls_target, tls) as channel:
        created = SubscriptionClient(channel).create(CALL_SID, CALLBACK)
    assert created.subscription.call_sid == CALL_SID


def test_tls_settings_are_checked_before_any_call(fixture, tmp_path):
    empty = tmp_path / "empty.pem"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="is empty"):
        Tls.from_files(str(empty))
    with pytest.raises(ValueError, match="go together"):
        Tls.from_files(fixture.ca, fixture.client_cert)
    with pytest.raises(FileNotFoundError):
        Tls.from_files(str(tmp_path / "missing.pem"))
    # A Tls may be logged: its repr leaves the private key out.
    tls = Tls.from_files(fixture.ca, fixture.client_cert, fixture.client_key)
    assert tls.key is not None and repr(tls.key) not in repr(tls)
