"""Readings from an OPC UA server (the twin or a plant's own), over a SignAndEncrypt channel.

Trust, both ways: the client presents its application certificate ``DATA_DIR/pki/own/<name>``
(channel and X.509 identity token), and accepts the server only if the certificate the server
announces during discovery is in ``DATA_DIR/pki/trusted-servers/``; that exact certificate is then
pinned for the channel. ``aseptic twin serve`` bootstraps both sides in one data directory.

Nothing is lost silently: monitored items ask for queues of ``OpcUaSettings.queue_size`` values
with DiscardOldest=false and the StatusValueTimestamp trigger (an unchanged value with a new
timestamp is still a sample); a value whose status has the Overflow bit, a missing notification
sequence number, or a tag whose source timestamps jump by more than one sample period is counted
in ``OpcUaSourceStats``. Readings wait in a bounded queue: a slow consumer holds back the publish
loop (the server queues) instead of dropping.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from asyncua import ua as _ua
from asyncua.client.client import Client
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256

from aseptic.clock import Clock, WallClock
from aseptic.config import OpcUaSettings
from aseptic.crypto import ApplicationIdentity, PkiDirectory, TrustList, subject_common_name
from aseptic.errors import AccessDenied, BackendError, InputError
from aseptic.telemetry._opcua_browse import OpcUaTag, PlantNodes, browse_plant, verify_server_certificate
from aseptic.telemetry._reading import Quality, Reading

# asyncua re-exports its protocol types implicitly; they stay Any inside this adapter.
ua: Any = _ua

__all__ = ["OpcUaSource", "OpcUaSourceStats", "OpcUaTag"]

log = logging.getLogger("aseptic.telemetry.opcua")

_OVERFLOW_BIT = 0x0080  # InfoBits "Overflow", meaningful when InfoType (bits 10-11) is DataValue
_INFO_TYPE_MASK, _INFO_TYPE_DATA_VALUE = 0x0C00, 0x0400
_ACCESS_CODES = {
    ua.StatusCodes.BadCertificateUntrusted,
    ua.StatusCodes.BadCertificateInvalid,
    ua.StatusCodes.BadUserAccessDenied,
    ua.StatusCodes.BadIdentityTokenRejected,
    ua.StatusCodes.BadIdentityTokenInvalid,
    ua.StatusCodes.BadSecurityPolicyRejected,
}


@dataclass
class OpcUaSourceStats:
    """What arrived, and every sign that something did not."""

    readings: int = 0
    messages: int = 0
    sequence_gaps: int = 0  # notification messages never received
    overflows: int = 0  # values flagged by the server: older values of that item were discarded
    sample_gaps: int = 0  # samples missing between consecutive source timestamps of a tag
    revised_queue_sizes: dict[str, int] = field(default_factory=dict)  # where the server gave less


def _quality(code: int) -> Quality:
    severity = code >> 30
    return Quality.GOOD if severity == 0 else Quality.UNCERTAIN if severity == 1 else Quality.BAD


class OpcUaSource:
    """A secured subscription to every tag of a plant's unit, yielding ``Reading`` objects.

    Use ``async with OpcUaSource(url, data_dir=D) as source: async for reading in source: ...``.
    """

    def __init__(
        self,
        url: str,
        *,
        data_dir: Path,
        identity: str = "client-aseptic-gateway",
        settings: OpcUaSettings | None = None,
        publishing_interval_ms: float = 100.0,
        clock: Clock | None = None,
        insecure_no_security: bool = False,
    ) -> None:
        self.url = url
        self._pki = PkiDirectory.of(data_dir)
        self._identity_name = identity
        self._settings = settings or OpcUaSettings()
        self._interval_ms = publishing_interval_ms
        self._clock = clock or WallClock()
        # Benchmarks only (the baseline): SecurityPolicy#None, still with the X.509 identity token.
        self._insecure = insecure_no_security
        self._client: Any = None
        self.stats = OpcUaSourceStats()
        self.plant: PlantNodes | None = None
        self._by_handle: dict[int, OpcUaTag] = {}
        self._last_time: dict[int, datetime] = {}
        self._last_seq: int | None = None
        self._queue: asyncio.Queue[list[Reading] | BaseException | None] = asyncio.Queue(maxsize=256)
        self._subscription_id: int | None = None

    @property
    def tags(self) -> tuple[OpcUaTag, ...]:
        return self.plant.tags if self.plant is not None else ()

    async def connect(self) -> None:
        """Open the secured session and browse the plant.

        Raises:
            ConfigError: own certificate/key or the server trust list is missing or corrupt.
            SignatureError: the server's certificate is not in ``pki/trusted-servers``.
            AccessDenied: the server refused this client's certificate or identity.
            BackendError: the server cannot be reached or failed.
        """
        me = ApplicationIdentity.load(self._pki.own, self._identity_name)
        client = Client(self.url, timeout=10, watchdog_intervall=5.0)
        client.application_uri = me.application_uri
        client.name = client.description = f"Aseptic collector {subject_common_name(me.certificate)}"
        try:
            if not self._insecure:
                trust = TrustList.load(self._pki.trusted_servers)
                server_der = await verify_server_certificate(client, trust, self._clock)
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
            raise self._translate(exc, me) from None
        except (OSError, TimeoutError, ua.UaError) as exc:
            raise BackendError(f"cannot connect to {self.url}: {exc or type(exc).__name__}") from None
        self._client = client
        try:
            self.plant = await browse_plant(client)
        except ua.UaStatusCodeError as exc:
            await self.close()
            raise self._translate(exc, me) from None

    def _translate(self, exc: Any, me: ApplicationIdentity) -> Exception:
        name = ua.StatusCode(exc.code).name
        if exc.code in _ACCESS_CODES:
            return AccessDenied(
                f"{self.url} refused client {subject_common_name(me.certificate)!r}: {name}",
                reasons=(name,),
                hint=f"on the server: aseptic twin trust {me.cert_path} --data-dir SERVER_DATA_DIR",
            )
        return BackendError(f"{self.url}: {name}")

    async def close(self) -> None:
        """Delete the subscription, close the session and end the iteration."""
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.disconnect()
            except (TimeoutError, OSError, ua.UaError) as exc:
                log.info("disconnect from %s: %s", self.url, exc)
        dropped = 0
        while self._queue.full():  # nobody is reading any more: make room for the end marker
            item = self._queue.get_nowait()
            dropped += len(item) if isinstance(item, list) else 0
        if dropped:
            log.warning("closed %s with %d readings not consumed", self.url, dropped)
        self._queue.put_nowait(None)

    async def __aenter__(self) -> OpcUaSource:
        await self.connect()
        await self.subscribe()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def read_all(self) -> list[Reading]:
        """One Read of every tag's current value (tags still waiting for data are left out)."""
        ids = [tag.node_id for tag in self.tags]
        values = await self._client.uaclient.read_attributes(ids, ua.AttributeIds.Value)
        readings = (self._reading(tag, dv) for tag, dv in zip(self.tags, values, strict=True))
        return [r for r in readings if r is not None]

    async def write_setpoint(self, tag: str, value: float) -> None:
        """Write a setpoint tag.

        Raises:
            InputError: no such tag, or the plant refused the value.
            AccessDenied: this identity may not write setpoints.
        """
        spec = next((t for t in self.tags if t.name == tag), None)
        if spec is None:
            raise InputError(f"no tag {tag!r} on {self.url}")
        params = ua.WriteParameters(
            NodesToWrite=[
                ua.WriteValue(
                    NodeId=spec.node_id,
                    AttributeId=ua.AttributeIds.Value,
                    Value=ua.DataValue(Value=ua.Variant(float(value), ua.VariantType.Double)),
                )
            ]
        )
        (status,) = await self._client.uaclient.write(params)
        if status.value == ua.StatusCodes.BadUserAccessDenied:
            raise AccessDenied(f"{self.url}: writing {tag} was denied", reasons=(status.name,))
        if not status.is_good():
            raise InputError(f"{self.url}: writing {tag} = {value!r} was refused: {status.name}")

    async def subscribe(self) -> None:
        """Subscribe to every tag (call after ``connect``)."""
        if self._client is None or self.plant is None:
            raise RuntimeError("connect() first")
        uaclient = self._client.uaclient
        params = ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=self._interval_ms,
            RequestedLifetimeCount=10_000,
            RequestedMaxKeepAliveCount=100,
            MaxNotificationsPerPublish=0,
            PublishingEnabled=True,
            Priority=0,
        )
        result = await uaclient.create_subscription(params, callback=self._on_publish)
        self._subscription_id = result.SubscriptionId
        trigger = ua.DataChangeFilter(Trigger=ua.DataChangeTrigger.StatusValueTimestamp)
        requests = []
        for handle, tag in enumerate(self.tags, start=1):
            self._by_handle[handle] = tag
            requests.append(
                ua.MonitoredItemCreateRequest(
                    ItemToMonitor=ua.ReadValueId(NodeId=tag.node_id, AttributeId=ua.AttributeIds.Value),
                    MonitoringMode=ua.MonitoringMode.Reporting,
                    RequestedParameters=ua.MonitoringParameters(
                        ClientHandle=handle,
                        SamplingInterval=0.0,
                        Filter=trigger,
                        QueueSize=self._settings.queue_size,
                        DiscardOldest=False,
                    ),
                )
            )
        created = await uaclient.create_monitored_items(
            ua.CreateMonitoredItemsParameters(
                SubscriptionId=self._subscription_id,
                TimestampsToReturn=ua.TimestampsToReturn.Both,
                ItemsToCreate=requests,
            )
        )
        for tag, item in zip(self.tags, created, strict=True):
            item.StatusCode.check()
            if item.RevisedQueueSize < self._settings.queue_size:
                self.stats.revised_queue_sizes[tag.name] = int(item.RevisedQueueSize)
                log.warning("server revised %s's queue to %d values", tag.name, item.RevisedQueueSize)

    async def _on_publish(self, result: Any) -> None:
        message = result.NotificationMessage
        batch: list[Reading] = []
        for notification in message.NotificationData or ():
            if isinstance(notification, ua.StatusChangeNotification):
                code = notification.Status
                await self._queue.put(BackendError(f"{self.url}: subscription ended: {code.name}"))
                return
            if not isinstance(notification, ua.DataChangeNotification):
                continue
            for item in notification.MonitoredItems:
                tag = self._by_handle.get(item.ClientHandle)
                if tag is not None and (reading := self._reading(tag, item.Value, item.ClientHandle)):
                    batch.append(reading)
        # Every data message uses a sequence number, even one that yields no reading; a keep-alive
        # (no data) only announces the next number.
        if message.NotificationData:
            seq = int(message.SequenceNumber)
            if self._last_seq is not None and seq > self._last_seq + 1:
                self.stats.sequence_gaps += seq - self._last_seq - 1
            self._last_seq = seq
        if not batch:
            return
        self.stats.messages += 1
        self.stats.readings += len(batch)
        await self._queue.put(batch)  # blocks the publish loop while the consumer catches up

    def _reading(self, tag: OpcUaTag, dv: Any, handle: int | None = None) -> Reading | None:
        code = dv.StatusCode.value if dv.StatusCode is not None else 0
        if code == ua.StatusCodes.BadWaitingForInitialData or dv.SourceTimestamp is None:
            return None
        if code & _INFO_TYPE_MASK == _INFO_TYPE_DATA_VALUE and code & _OVERFLOW_BIT:
            self.stats.overflows += 1
        when = dv.SourceTimestamp
        if handle is not None and tag.kind_updates_every_sample and self.plant is not None:
            last = self._last_time.get(handle)
            period_s = self.plant.sample_time_s
            if last is not None and period_s > 0:
                missing = round((when - last).total_seconds() / period_s) - 1
                self.stats.sample_gaps += max(missing, 0)
            self._last_time[handle] = when
        raw = dv.Value.Value if dv.Value is not None else None
        value = float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else math.nan
        quality = _quality(code) if not math.isnan(value) else Quality.BAD
        return Reading(tag.name, when, value, quality, tag.source)

    async def batches(self) -> AsyncIterator[list[Reading]]:
        """The readings of each notification message, in order.

        Raises:
            BackendError: the server ended the subscription or the connection was lost.
        """
        while True:
            item = await self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    async def __aiter__(self) -> AsyncIterator[Reading]:
        async for batch in self.batches():
            for reading in batch:
                yield reading
