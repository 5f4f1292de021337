"""``TwinLink``: the gateway's secured OPC UA session to the plant, as the plant's one writer.

The session is Basic256Sha256 SignAndEncrypt with an X.509 identity token, like the collector's
(docs/opcua.md): the client presents ``DATA_DIR/pki/own/<writer>`` and accepts the server only if
the certificate its SignAndEncrypt endpoint announces is in ``DATA_DIR/pki/trusted-servers``; the
channel is then pinned to it. The writer's certificate CN must be the server's configured writer
identity, or the server refuses every write.

asyncua is asynchronous and the API's handlers are not: the link owns one event loop on its own
thread and one session, opened on first use and reopened after a failure. Every call waits at
most ``timeout_s``; an unreachable or failing server is a ``BackendError``, never a silent write.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from asyncua import ua as _ua
from asyncua.client.client import Client
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from cryptography import x509

from aseptic.clock import Clock
from aseptic.crypto import (
    ApplicationIdentity,
    ApplicationRole,
    PkiDirectory,
    TrustList,
    subject_common_name,
    verify_application_certificate,
)
from aseptic.errors import AsepticError, BackendError, ConfigError, InputError, SignatureError
from aseptic.gateway._plant import BatchStatus, PlantSnapshot

# asyncua re-exports its protocol types implicitly; they stay Any inside this adapter.
ua: Any = _ua

__all__ = ["NAMESPACE_URI", "TwinLink"]

log = logging.getLogger("aseptic.gateway.opcua")

NAMESPACE_URI = "urn:aseptic:twin"
T = TypeVar("T")

_REFUSED = {
    ua.StatusCodes.BadUserAccessDenied,
    ua.StatusCodes.BadCertificateUntrusted,
    ua.StatusCodes.BadCertificateInvalid,
    ua.StatusCodes.BadIdentityTokenRejected,
    ua.StatusCodes.BadIdentityTokenInvalid,
    ua.StatusCodes.BadSecurityPolicyRejected,
}
_VALUE_REFUSED = {
    ua.StatusCodes.BadOutOfRange,
    ua.StatusCodes.BadTypeMismatch,
    ua.StatusCodes.BadNotWritable,
}


class TwinLink:
    """A ``PlantPort`` over OPC UA. Thread-safe; ``close()`` it when done."""

    def __init__(
        self,
        url: str,
        *,
        data_dir: Path,
        writer: str,
        unit_path: str,
        clock: Clock,
        timeout_s: float = 5.0,
    ) -> None:
        """``unit_path``: ``<site>.<area>.<unit>``, the prefix of the unit's node ids."""
        self.url = url
        self._pki = PkiDirectory.of(data_dir)
        self._writer = writer
        self._prefix = unit_path
        self._clock = clock
        self._timeout_s = timeout_s
        self._client: Any = None
        self._idx = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="twin-link", daemon=True)
        self._thread.start()
        self._closed = False
        self._connect_listeners: list[Callable[[], None]] = []

    # -- the PlantPort ----------------------------------------------------------------------------

    def read_batch(self) -> BatchStatus:
        return self._call(self._read_batch)

    def snapshot(self, node: str, device: str) -> PlantSnapshot:
        async def read(client: Any) -> PlantSnapshot:
            values = await self._read(
                client,
                [
                    "BatchState.BatchId",
                    "BatchState.Phase",
                    "BatchState.State",
                    node,
                    f"Devices.{device}.FirmwareDigest",
                ],
            )
            batch = BatchStatus(_text(values[0]), _text(values[1]), _text(values[2]))
            return PlantSnapshot(batch, _number(values[3]), _text(values[4]) or None)

        return self._call(read)

    def write(self, node: str, value: float) -> float | None:
        async def write(client: Any) -> float | None:
            params = ua.WriteParameters(
                NodesToWrite=[
                    ua.WriteValue(
                        NodeId=self._node(node),
                        AttributeId=ua.AttributeIds.Value,
                        Value=ua.DataValue(Value=ua.Variant(float(value), ua.VariantType.Double)),
                    )
                ]
            )
            (status,) = await client.uaclient.write(params)
            if status.value in _REFUSED:
                raise BackendError(
                    f"{self.url} refused the write to {node} by writer {self._writer!r}: {status.name}",
                    hint="the server's writer identity must be this gateway's certificate CN",
                )
            if status.value in _VALUE_REFUSED:
                raise InputError(f"the plant refused {node} = {value!r}: {status.name}")
            if not status.is_good():
                raise BackendError(f"{self.url}: writing {node} failed: {status.name}")
            (back,) = await self._read(client, [node])
            return _number(back)

        # Never retried: a write whose answer was lost may have happened.
        return self._call(write, retry=False)

    def read_firmware_digests(self) -> dict[str, str]:
        """Every device's reported firmware SHA-256 (``Devices/<id>/FirmwareDigest``), for attestation.

        Raises:
            BackendError: the plant cannot be reached or has no Devices folder for the unit.
        """

        async def read(client: Any) -> dict[str, str]:
            # Two requests whatever the number of devices: browse the Devices folder, then one Read
            # of every FirmwareDigest (OpcUaFirmwareReader reads two attributes per device).
            prefix = f"{self._prefix}.Devices."
            children = await client.get_node(self._node("Devices")).get_children()
            names = sorted(
                ident.removeprefix(prefix)
                for ident in (child.nodeid.Identifier for child in children)
                if isinstance(ident, str)
                and ident.startswith(prefix)
                and "." not in ident.removeprefix(prefix)
            )
            values = await self._read(client, [f"Devices.{name}.FirmwareDigest" for name in names])
            return {name: _text(value) for name, value in zip(names, values, strict=True)}

        return self._call(read)

    def add_connect_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` (on the link's thread; it must not block) after every new session:
        device attestation re-attests the plant at each (re)connect."""
        self._connect_listeners.append(listener)

    # -- lifecycle --------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the session and stop the link's thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            asyncio.run_coroutine_threadsafe(self._disconnect(), self._loop).result(self._timeout_s + 1)
        except (TimeoutError, AsepticError, OSError) as exc:
            log.info("closing the link to %s: %s", self.url, exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(self._timeout_s + 1)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> TwinLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- inside the loop --------------------------------------------------------------------------

    def _call(self, work: Callable[[Any], Awaitable[T]], *, retry: bool = True) -> T:
        if self._closed:
            raise BackendError("the write gateway's plant link is closed")
        future = asyncio.run_coroutine_threadsafe(self._run(work, retry), self._loop)
        try:
            # The loop bounds each step by timeout_s; connect + retry can take a few of them.
            return future.result(timeout=4 * self._timeout_s + 1)
        except TimeoutError:
            future.cancel()
            raise BackendError(f"{self.url} did not answer within {self._timeout_s:g} s") from None

    async def _run(self, work: Callable[[Any], Awaitable[T]], retry: bool) -> T:
        fresh = self._client is None
        client = await self._connected()
        try:
            return await asyncio.wait_for(work(client), self._timeout_s)
        except AsepticError:
            raise
        except (OSError, TimeoutError, ConnectionError, ua.UaError) as exc:
            await self._disconnect()
            if fresh or not retry:
                raise BackendError(f"{self.url}: {exc or type(exc).__name__}") from None
            # The kept session went stale (server restarted): one more try on a new one.
            log.info("session to %s failed (%s); reconnecting once", self.url, exc)
        client = await self._connected()
        try:
            return await asyncio.wait_for(work(client), self._timeout_s)
        except (OSError, TimeoutError, ConnectionError, ua.UaError) as exc:
            await self._disconnect()
            raise BackendError(f"{self.url}: {exc or type(exc).__name__}") from None

    async def _connected(self) -> Any:
        if self._client is None:
            self._client = await asyncio.wait_for(self._connect(), self._timeout_s * 2)
            for listener in self._connect_listeners:
                try:
                    listener()
                except Exception:  # a listener's bug must not break the plant link
                    log.exception("connect listener of %s failed", self.url)
        return self._client

    async def _connect(self) -> Any:
        try:
            me = ApplicationIdentity.load(self._pki.own, self._writer)
        except AsepticError as exc:
            raise ConfigError(
                f"the gateway's writer identity {self._writer!r} is not usable: {exc.message}",
                hint=f"copy the writer's certificate and key to {self._pki.own} ([gateway] writer)",
            ) from None
        trust = TrustList.load(self._pki.trusted_servers)
        client = Client(self.url, timeout=self._timeout_s)
        client.session_timeout = 600_000  # the twin grants at most 10 min; asking more only logs a warning
        client.application_uri = me.application_uri
        client.name = client.description = f"Aseptic write gateway {subject_common_name(me.certificate)}"
        try:
            server_der = await self._trusted_server_certificate(client, trust)
            await client.set_security(
                SecurityPolicyBasic256Sha256,
                me.certificate_der,
                me.private_key_der,
                server_certificate=server_der,
                mode=ua.MessageSecurityMode.SignAndEncrypt,
            )
            client.user_certificate = me.certificate
            client.user_private_key = me.private_key
            await client.connect()
        except ua.UaStatusCodeError as exc:
            raise BackendError(
                f"{self.url} refused the gateway's writer {self._writer!r}: {ua.StatusCode(exc.code).name}",
                hint=f"on the server: aseptic twin trust {me.cert_path}",
            ) from None
        except (OSError, TimeoutError, ConnectionError, ua.UaError) as exc:
            raise BackendError(f"cannot connect to {self.url}: {exc or type(exc).__name__}") from None
        try:
            self._idx = await client.get_namespace_index(NAMESPACE_URI)
        except (ValueError, ua.UaError) as exc:
            await _quietly_disconnect(client)
            raise BackendError(f"{self.url} has no namespace {NAMESPACE_URI}: {exc}") from None
        return client

    async def _trusted_server_certificate(self, client: Any, trust: TrustList) -> bytes:
        endpoints = await client.connect_and_get_server_endpoints()
        for endpoint in endpoints:
            if (
                endpoint.SecurityPolicyUri == SecurityPolicyBasic256Sha256.URI
                and endpoint.SecurityMode == ua.MessageSecurityMode.SignAndEncrypt
            ):
                break
        else:
            raise BackendError(f"{self.url} offers no Basic256Sha256 SignAndEncrypt endpoint")
        try:
            cert = x509.load_der_x509_certificate(endpoint.ServerCertificate)
            verify_application_certificate(
                cert,
                now=self._clock.now(),
                application_uri=endpoint.Server.ApplicationUri,
                role=ApplicationRole.SERVER,
            )
            trust.verify_trusted(cert)
        except (ValueError, SignatureError) as exc:
            raise BackendError(
                f"{self.url}: the server's certificate is not trusted: {exc}",
                hint="put the server's certificate in pki/trusted-servers (aseptic twin trust --server)",
            ) from None
        return bytes(endpoint.ServerCertificate)

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await _quietly_disconnect(client)

    def _node(self, path: str) -> Any:
        return ua.NodeId(f"{self._prefix}.{path}", self._idx)

    async def _read(self, client: Any, paths: list[str]) -> list[Any]:
        return list(
            await client.uaclient.read_attributes([self._node(p) for p in paths], ua.AttributeIds.Value)
        )

    async def _read_batch(self, client: Any) -> BatchStatus:
        values = await self._read(client, ["BatchState.BatchId", "BatchState.Phase", "BatchState.State"])
        return BatchStatus(_text(values[0]), _text(values[1]), _text(values[2]))


async def _quietly_disconnect(client: Any) -> None:
    try:
        await asyncio.wait_for(client.disconnect(), 2.0)
    except (OSError, TimeoutError, ConnectionError, ua.UaError) as exc:
        log.info("disconnect: %s", exc)


def _good(dv: Any) -> bool:
    return dv.StatusCode is None or dv.StatusCode.is_good()


def _text(dv: Any) -> str:
    value = dv.Value.Value if _good(dv) and dv.Value is not None else None
    return value if isinstance(value, str) else ""


def _number(dv: Any) -> float | None:
    value = dv.Value.Value if _good(dv) and dv.Value is not None else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)
