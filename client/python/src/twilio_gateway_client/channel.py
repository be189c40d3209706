"""Channels to the gateway: plaintext to a loopback gateway, TLS to any other.

The gateway serves plaintext only on loopback. Elsewhere it has TLS, usually from a private CA
(cert-manager), and may name its callers by client certificate (mutual TLS). The rules are the
C++ client's (`ChannelCredentialsFromFiles`): the CA is always given, because an empty one would
make gRPC quietly trust the system's roots instead, and a client certificate goes with its key.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import grpc


@dataclasses.dataclass(frozen=True)
class Tls:
    """PEM bytes for a TLS channel: the CA bundle the gateway's certificate must chain to and, for
    mutual TLS, the client's certificate chain and private key (both or neither)."""

    ca: bytes
    cert: Optional[bytes] = None
    # Not in repr(): a logged Tls must not carry the private key.
    key: Optional[bytes] = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.ca:
            raise ValueError("the CA bundle is empty (gRPC would trust the system's roots instead)")
        if (self.cert is None) != (self.key is None):
            raise ValueError("a client certificate and its key go together")
        if self.cert is not None and not (self.cert and self.key):
            raise ValueError("the client certificate or its key is empty")

    @classmethod
    def from_files(cls, ca: str, cert: Optional[str] = None, key: Optional[str] = None) -> Tls:
        """Reads the PEM files now, so a missing one fails here (OSError naming it) rather than as
        a failed handshake on the first call; an empty one raises ValueError naming it."""
        return cls(ca=_read_pem(ca),
                   cert=None if cert is None else _read_pem(cert),
                   key=None if key is None else _read_pem(key))


def _read_pem(path: str) -> bytes:
    with open(path, "rb") as f:
        data = f.read()
    if not data:
        raise ValueError(f"{path} is empty")
    return data


def open_channel(target: str, tls: Optional[Tls] = None) -> grpc.Channel:
    """A channel to the gateway at `target` (HOST:PORT): TLS when `tls` is given, else plaintext.

    Close it when done (it is a context manager). gRPC's default settings suffice: the gateway
    keeps an error's trailers under 4 KiB, within the 8 KiB a default channel accepts.
    """
    if tls is None:
        return grpc.insecure_channel(target)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=tls.ca, private_key=tls.key, certificate_chain=tls.cert)
    return grpc.secure_channel(target, credentials)
