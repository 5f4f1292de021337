"""The twin's OPC UA address space: ISA-95 hierarchy, analog items with units and ranges.

Every tag of the catalogue (``aseptic.twin.tags``) is an ``AnalogItemType`` variable (Double) with
the standard properties ``EngineeringUnits`` (UNECE code where one exists, else UnitId -1) and
``EURange`` (the instrument's calibrated span), plus ``Device`` (the reporting device's id). Only
setpoint tags are writable, and only by the writer identity (``_server_access.SetpointGuard``).

``BatchState/State`` is the ISA-88 state of the current batch: ``idle`` (created, not started),
``running``, ``complete`` (harvested; the next batch starts with the next sample). ``Recipe/<tag>``
holds the control recipe's setpoint parameters: the value each setpoint starts a batch with
(writable by the writer identity only, like the setpoints).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from asyncua import ua as _ua

from aseptic.twin.tags import DEVICES, TAGS, TagKind, TagSpec

# asyncua re-exports its protocol types implicitly; they stay Any inside this adapter.
ua: Any = _ua

NAMESPACE_URI = "urn:aseptic:twin"
_UNECE_NAMESPACE = "http://www.opcfoundation.org/UA/units/un/cefact"
# UN/CEFACT Recommendation 20 common codes for the catalogue's units; others get UnitId -1.
_UNECE_CODES = {
    "K": "KEL",
    "%": "P1",
    "L": "LTR",
    "kg": "KGM",
    "bar": "BAR",
    "kW": "KWT",
    "L/h": "E32",
    "kg/h": "E93",
    "h": "HUR",
    "g/L": "GL",
    "mg/L": "M1",
    "cP": "C7",
}
_VALUE = ua.AttributeIds.Value
_DOUBLE = ua.VariantType.Double
_READ = ua.AccessLevel.CurrentRead.mask
_READ_WRITE = ua.AccessLevel.CurrentRead.mask | ua.AccessLevel.CurrentWrite.mask


class _Published(_ua.DataValue):
    """A value as this server publishes it: never mutated afterwards, so never worth copying.

    asyncua deep-copies each value once per monitored item before comparing it with the last one;
    profiled, that copy was 55% of the server's CPU at a few thousand values per second.
    """

    __slots__ = ()

    def __deepcopy__(self, memo: dict[int, Any]) -> _Published:
        return self


class _Stateful(Protocol):
    @property
    def sample_time_h(self) -> float: ...


def engineering_units(unit: str) -> ua.EUInformation:
    """The OPC UA ``EUInformation`` for a catalogue unit string."""
    code = _UNECE_CODES.get(unit)
    unit_id = -1
    if code is not None:
        unit_id = 0
        for char in code:
            unit_id = (unit_id << 8) | ord(char)
    return ua.EUInformation(
        NamespaceUri=_UNECE_NAMESPACE,
        UnitId=unit_id,
        DisplayName=ua.LocalizedText(unit),
        Description=ua.LocalizedText(unit),
    )


class AddressSpace:
    """Node ids of the tags and batch/device state, and the writes that publish them."""

    def __init__(self, server: Any, idx: int, prefix: str) -> None:
        self._server = server
        self._idx = idx
        self._prefix = prefix
        self.tags: dict[str, ua.NodeId] = {spec.name: self.node_id(spec.name) for spec in TAGS}
        self.setpoints: dict[ua.NodeId, str] = {
            self.tags[spec.name]: spec.name for spec in TAGS if spec.kind is TagKind.SETPOINT
        }
        # Recipe parameters, keyed "recipe.<setpoint tag>" for the writer guard.
        self.recipe: dict[ua.NodeId, str] = {
            self.node_id(f"Recipe.{spec.name}"): f"recipe.{spec.name}"
            for spec in TAGS
            if spec.kind is TagKind.SETPOINT
        }
        self._state: str | None = None
        self._phase: str | None = None
        self._firmware: dict[str, str] = {}
        self._write_attribute = server.iserver.aspace.write_attribute_value  # the hot path: bind once

    def node_id(self, path: str) -> ua.NodeId:
        return ua.NodeId(f"{self._prefix}.{path}", self._idx)

    async def _write(self, node: ua.NodeId, value: ua.DataValue) -> None:
        await self._write_attribute(node, _VALUE, value)

    async def write_value(self, tag: str, value: float, source_time: Any, server_time: Any) -> None:
        if math.isnan(value):
            status = ua.StatusCode(ua.StatusCodes.BadSensorFailure)
            dv = _Published(StatusCode=status, SourceTimestamp=source_time, ServerTimestamp=server_time)
        else:
            variant = ua.Variant(float(value), _DOUBLE)
            dv = _Published(Value=variant, SourceTimestamp=source_time, ServerTimestamp=server_time)
        await self._write_attribute(self.tags[tag], _VALUE, dv)

    async def _write_text(self, path: str, text: str) -> None:
        await self._write(self.node_id(path), ua.DataValue(Value=ua.Variant(text, ua.VariantType.String)))

    async def write_batch_state(self, batch_id: str, plant: _Stateful, start: datetime) -> None:
        await self._write_text("BatchState.BatchId", batch_id)
        await self._write(self.node_id("BatchState.BatchStart"), ua.DataValue(Value=ua.Variant(start)))
        sample = ua.Variant(float(plant.sample_time_h), ua.VariantType.Double)
        await self._write(self.node_id("BatchState.SampleTimeH"), ua.DataValue(Value=sample))

    async def write_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            await self._write_text("BatchState.State", state)

    async def write_recipe(self, tag: str, value: float) -> None:
        variant = ua.Variant(float(value), _DOUBLE)
        await self._write(self.node_id(f"Recipe.{tag}"), ua.DataValue(Value=variant))

    async def write_phase(self, phase: str) -> None:
        if phase != self._phase:
            self._phase = phase
            await self._write_text("BatchState.Phase", phase)

    async def write_firmware(self, digests: Mapping[str, str]) -> None:
        for device, digest in digests.items():
            if self._firmware.get(device) != digest and device in _DEVICE_IDS:
                self._firmware[device] = digest
                await self._write_text(f"Devices.{device}.FirmwareDigest", digest)


_DEVICE_IDS = frozenset(d.id for d in DEVICES)


async def build_address_space(server: Any, site: str, area: str, unit: str) -> AddressSpace:
    """Create Objects/<site>/<area>/<unit> with every tag, BatchState and Devices."""
    idx = await server.register_namespace(NAMESPACE_URI)
    space = AddressSpace(server, idx, f"{site}.{area}.{unit}")
    site_node = await server.nodes.objects.add_object(ua.NodeId(site, idx), ua.QualifiedName(site, idx))
    area_node = await site_node.add_object(ua.NodeId(f"{site}.{area}", idx), ua.QualifiedName(area, idx))
    unit_node = await area_node.add_object(
        ua.NodeId(f"{site}.{area}.{unit}", idx), ua.QualifiedName(unit, idx)
    )
    for spec in TAGS:
        await _add_analog_item(server, unit_node, space, spec, idx)
    state = await unit_node.add_object(space.node_id("BatchState"), ua.QualifiedName("BatchState", idx))
    initial: tuple[tuple[str, Any], ...] = (
        ("BatchId", ""),
        ("Phase", ""),
        ("State", "idle"),
        ("BatchStart", ua.Variant(datetime(1601, 1, 1, tzinfo=UTC), ua.VariantType.DateTime)),
        ("SampleTimeH", 0.0),
    )
    for name, value in initial:
        await state.add_variable(space.node_id(f"BatchState.{name}"), ua.QualifiedName(name, idx), value)
    recipe = await unit_node.add_object(space.node_id("Recipe"), ua.QualifiedName("Recipe", idx))
    for spec in TAGS:
        if spec.kind is TagKind.SETPOINT:
            node = await recipe.add_variable(
                space.node_id(f"Recipe.{spec.name}"), ua.QualifiedName(spec.name, idx), 0.0
            )
            await node.set_writable(True)
    devices = await unit_node.add_object(space.node_id("Devices"), ua.QualifiedName("Devices", idx))
    for device in DEVICES:
        node = await devices.add_object(
            space.node_id(f"Devices.{device.id}"), ua.QualifiedName(device.id, idx)
        )
        for name, text in (("FirmwareVersion", device.firmware_version), ("FirmwareDigest", "")):
            await node.add_variable(
                space.node_id(f"Devices.{device.id}.{name}"), ua.QualifiedName(name, idx), text
            )
    return space


async def _add_analog_item(server: Any, parent: Any, space: AddressSpace, spec: TagSpec, idx: int) -> None:
    node_id = space.tags[spec.name]
    access = _READ_WRITE if spec.kind is TagKind.SETPOINT else _READ
    attrs = ua.VariableAttributes(
        DisplayName=ua.LocalizedText(spec.name),
        Description=ua.LocalizedText(spec.description),
        Value=ua.Variant(0.0, ua.VariantType.Double),
        DataType=ua.NodeId(ua.ObjectIds.Double),
        ValueRank=ua.ValueRank.Scalar,
        AccessLevel=access,
        UserAccessLevel=access,
        Historizing=False,
    )
    item = ua.AddNodesItem(
        ParentNodeId=parent.nodeid,
        ReferenceTypeId=ua.NodeId(ua.ObjectIds.HasComponent),
        RequestedNewNodeId=node_id,
        BrowseName=ua.QualifiedName(spec.name, idx),
        NodeClass=ua.NodeClass.Variable,
        NodeAttributes=attrs,
        TypeDefinition=ua.NodeId(ua.ObjectIds.AnalogItemType),
    )
    results = await server.iserver.isession.add_nodes([item])
    results[0].StatusCode.check()
    node = server.get_node(node_id)
    eu_range = ua.Range(Low=float(spec.low), High=float(spec.high))
    await node.add_property(
        space.node_id(f"{spec.name}.EURange"),
        ua.QualifiedName("EURange", 0),
        eu_range,
        datatype=ua.ObjectIds.Range,
    )
    units = engineering_units(spec.unit)
    await node.add_property(
        space.node_id(f"{spec.name}.EngineeringUnits"),
        ua.QualifiedName("EngineeringUnits", 0),
        units,
        datatype=ua.ObjectIds.EUInformation,
    )
    await node.add_property(
        space.node_id(f"{spec.name}.Device"), ua.QualifiedName("Device", idx), spec.device
    )
    waiting = ua.DataValue(StatusCode=ua.StatusCode(ua.StatusCodes.BadWaitingForInitialData))
    await server.iserver.aspace.write_attribute_value(node_id, ua.AttributeIds.Value, waiting)
