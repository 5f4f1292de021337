"""Send syslog messages to a collector: TCP with RFC 6587 octet counting, or UDP (RFC 5426).

Plain TCP/UDP only: point it at a local relay (rsyslog, syslog-ng) that forwards over TLS to the
SOC, or at a collector on the same network segment. Failures are BackendError, never silent.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Literal

from aseptic.errors import BackendError, ConfigError, InputError

__all__ = ["SyslogForwarder"]

_MAX_UDP = 2048  # RFC 5426 recommends receivers accept 2048 octets; longer messages would be cut


class SyslogForwarder:
    """Forward messages to ``host:port`` over ``transport``."""

    def __init__(
        self, host: str, port: int, *, transport: Literal["tcp", "udp"] = "tcp", timeout_s: float = 5.0
    ) -> None:
        if not 0 < port < 65536:
            raise ConfigError(f"syslog port {port} is outside 1..65535")
        if transport not in ("tcp", "udp"):
            raise ConfigError(f"syslog transport {transport!r} is not tcp or udp")
        self.host, self.port, self.transport, self.timeout_s = host, port, transport, timeout_s

    def send(self, messages: Iterable[str]) -> int:
        """Send every message; return how many were sent.

        Raises:
            BackendError: the collector cannot be reached or the connection fails.
            InputError: a message is too long for UDP.
        """
        encoded = [message.encode("utf-8") for message in messages]
        where = f"syslog collector {self.host}:{self.port}/{self.transport}"
        try:
            if self.transport == "tcp":
                with socket.create_connection((self.host, self.port), timeout=self.timeout_s) as conn:
                    for data in encoded:
                        conn.sendall(f"{len(data)} ".encode("ascii") + data)
            else:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                    sock.settimeout(self.timeout_s)
                    for data in encoded:
                        if len(data) > _MAX_UDP:
                            raise InputError(
                                f"{where}: a message of {len(data)} bytes is longer than {_MAX_UDP} for UDP",
                                hint="use --transport tcp",
                            )
                        sock.sendto(data, (self.host, self.port))
        except OSError as exc:
            raise BackendError(f"{where}: {exc.strerror or exc}") from None
        return len(encoded)
