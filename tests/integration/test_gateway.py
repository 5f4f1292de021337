"""The write gateway against a real twin OPC UA server (SignAndEncrypt, X.509 identities, loopback).

Done-when of issue 4 part 3b: an operator outside their area, or a write without an active batch,
is denied and logged; a permitted write reaches the twin (read back from the twin) and is logged
with the decision and an audit entry; a write to the twin by any identity other than the
gateway's writer fails. Plus: no reason, twin down, tampered controller firmware, no managed
endpoint, out of the validated range, recipe changes.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import (
    Site,
    TwinThread,
    add_engineer,
    build_site,
    copy_site,
    ledger_entries,
    provision_writer,
    twin_pki_template,
)
from asyncua import ua
from opcua_support import new_client_identity, raw_client, tag_node

from aseptic.clock import WallClock
from aseptic.crypto import KeyStore
from aseptic.errors import BackendError, InputError
from aseptic.gateway import TwinLink, UnknownTarget, WriteDenied, WriteGateway, decision_id
from aseptic.ledger import Ledger, verify_ledger
from aseptic.trust import (
    ClientIdentity,
    DecisionLog,
    EnforcementPoint,
    PolicyBundle,
    PolicyDecisionPoint,
    Principal,
    plant_entities,
)
from aseptic.twin import factory_image

pytestmark = pytest.mark.integration

OLGA = Principal("olga", "User", ("operator",), ("fermentation",), True)
OTTO = Principal("otto", "User", ("operator",), ("purification",), True)
ERIN = Principal("erin", "User", ("process_engineer",), (), True)
CONSOLE = ClientIdentity("Device", "console-01", "ab" * 32)  # a managed endpoint (mTLS in the API)
REASON = "raise pH per deviation DEV-0042"


class Rig:
    def __init__(self, site: Site, twin: TwinThread) -> None:
        self.site = site
        self.twin = twin
        site_key = KeyStore.open(site.data_dir).load_or_create("site")
        self.log = DecisionLog(lambda: Ledger.open(site.data_dir, site_key=site_key, clock=site.clock))
        pep = EnforcementPoint(PolicyDecisionPoint(PolicyBundle.default(), plant_entities()), self.log)
        self.link = TwinLink(
            twin.url,
            data_dir=site.data_dir,
            writer="client-aseptic-gateway",
            unit_path="site-01.fermentation.fermenter-01",
            clock=WallClock(),
            timeout_s=3.0,
        )
        self.gateway = WriteGateway(
            pep, self.log, self.link, site.clock, system="site-01", source_zone="operations"
        )
        self._seen = {"access_decision": 0, "record_change": 0}

    def close(self) -> None:
        self.link.close()
        self.log.close()

    def _new(self, entry: str) -> list[dict[str, object]]:
        # Entries since the last mark(): tests share one rig where a twin start costs seconds.
        self.log.flush()
        return ledger_entries(self.site.data_dir, entry)[self._seen[entry] :]

    def mark(self) -> None:
        self.log.flush()
        for entry in self._seen:
            self._seen[entry] = len(ledger_entries(self.site.data_dir, entry))

    def decisions(self) -> list[dict[str, object]]:
        return self._new("access_decision")

    def changes(self) -> list[dict[str, object]]:
        return self._new("record_change")


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Site, Path]:
    root = tmp_path_factory.mktemp("gateway-templates")
    site = build_site(root / "data")
    add_engineer(site)
    return site, twin_pki_template(root / "twin")


def _rig(root: Path, templates: tuple[Site, Path]) -> Iterator[Rig]:
    site = copy_site(templates[0], root / "data")
    shutil.copytree(templates[1], root / "twin")
    with TwinThread(root / "twin") as twin:
        provision_writer(root / "twin", site.data_dir)
        rig = Rig(site, twin)
        try:
            yield rig
        finally:
            rig.close()


@pytest.fixture
def idle(tmp_path: Path, templates: tuple[Site, Path]) -> Iterator[Rig]:
    """A fresh twin whose batch 0 has not started (idle)."""
    yield from _rig(tmp_path, templates)


@pytest.fixture(scope="module")
def running_rig(tmp_path_factory: pytest.TempPathFactory, templates: tuple[Site, Path]) -> Iterator[Rig]:
    for rig in _rig(tmp_path_factory.mktemp("running"), templates):
        rig.twin.publish()  # batch 0 starts: running
        yield rig


@pytest.fixture
def rig(running_rig: Rig) -> Rig:
    """The shared running twin, with ledger marks reset and pH setpoint back at 6.5."""
    if running_rig.twin.plant.setpoints()["ph_sp"] != 6.5:
        running_rig.twin.plant.write_setpoint("ph_sp", 6.5)
    running_rig.mark()
    return running_rig


def test_permitted_write_reaches_the_twin_and_is_logged_with_decision_and_audit_entry(rig: Rig) -> None:
    old = rig.twin.plant.setpoints()["ph_sp"]
    result = rig.gateway.write_setpoint(OLGA, "ph_sp", 6.6, REASON, endpoint=CONSOLE)
    assert (result.old, result.new, result.batch.batch_state) == (old, 6.6, "running")
    assert rig.twin.plant.setpoints()["ph_sp"] == 6.6  # the plant itself
    (decision,) = rig.decisions()
    assert decision["decision"] == "allow"
    assert decision["policy_ids"] == ["operator-write-setpoint"]
    assert decision["context"]["conduit"] == "write-gateway"  # type: ignore[index]
    assert decision["context"]["batch_state"] == "running"  # type: ignore[index]
    (change,) = rig.changes()
    assert set(change) == {
        "entry",
        "record",
        "change",
        "old",
        "new",
        "who",
        "when",
        "clock_sync",
        "why",
        "system",
        "decision",
    }
    assert change["record"] == "setpoint:ph_sp"
    assert (change["change"], change["old"], change["new"]) == ("modify", old, 6.6)
    assert (change["who"], change["why"], change["system"]) == ('User::"olga"', REASON, "site-01")
    assert change["clock_sync"] == "unknown"
    assert change["decision"] == result.decision
    assert str(change["when"]).endswith("Z")
    rig.log.flush()
    verify_ledger(rig.site.data_dir, KeyStore.open(rig.site.data_dir).load_or_create("site").public)


def test_operator_outside_their_area_is_denied_and_logged(rig: Rig) -> None:
    before = rig.twin.plant.setpoints()["ph_sp"]
    with pytest.raises(WriteDenied) as denied:
        rig.gateway.write_setpoint(OTTO, "ph_sp", 6.6, REASON, endpoint=CONSOLE)
    assert rig.twin.plant.setpoints()["ph_sp"] == before
    (decision,) = rig.decisions()
    assert (decision["decision"], decision["principal"]) == ("deny", 'User::"otto"')
    assert decision_id(denied.value.decision) and rig.changes() == []


def test_write_without_an_active_batch_is_denied_and_logged(idle: Rig) -> None:
    rig = idle
    # No sample published yet: batch 0 is idle (not started): batch_state "none".
    assert rig.gateway.active_batch().batch_state == "none"
    with pytest.raises(WriteDenied):
        rig.gateway.write_setpoint(OLGA, "ph_sp", 6.6, REASON, endpoint=CONSOLE)
    (decision,) = rig.decisions()
    assert decision["decision"] == "deny"
    assert decision["context"]["batch_state"] == "none"  # type: ignore[index]
    assert rig.twin.plant.setpoints()["ph_sp"] == 6.5 and rig.changes() == []


@pytest.mark.requirement("P11-11.10g")
def test_direct_write_to_the_twin_by_another_identity_fails(rig: Rig, tmp_path: Path) -> None:
    denied_before = rig.twin.server.stats.denied_writes
    other = new_client_identity(
        tmp_path / "hmi", "operator-hmi", trusted=True, server_data_dir=rig.twin.data_dir
    )

    async def attempt() -> None:
        async with raw_client(rig.twin.url, other, rig.twin.data_dir) as client:
            idx = await client.get_namespace_index("urn:aseptic:twin")
            for node in (tag_node(client, idx, "ph_sp"), tag_node(client, idx, "Recipe.ph_sp")):
                with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                    await node.write_value(ua.DataValue(ua.Variant(4.0, ua.VariantType.Double)))

    rig.twin.run(attempt())
    assert rig.twin.plant.setpoints()["ph_sp"] == 6.5
    assert rig.twin.server.stats.denied_writes == denied_before + 2


def test_write_without_a_reason_is_refused_before_anything(rig: Rig) -> None:
    for reason in ("", "   "):
        with pytest.raises(InputError, match="needs a reason"):
            rig.gateway.write_setpoint(OLGA, "ph_sp", 6.6, reason, endpoint=CONSOLE)
    assert rig.decisions() == [] and rig.twin.plant.setpoints()["ph_sp"] == 6.5


def test_twin_down_is_a_backend_error_and_nothing_is_decided_or_written(idle: Rig) -> None:
    rig = idle
    rig.twin.stop()
    with pytest.raises(BackendError):
        rig.gateway.write_setpoint(OLGA, "ph_sp", 6.6, REASON, endpoint=CONSOLE)
    assert rig.decisions() == [] and rig.changes() == []


def test_tampered_controller_firmware_or_no_managed_endpoint_is_not_attested(rig: Rig) -> None:
    with pytest.raises(WriteDenied):
        rig.gateway.write_setpoint(OLGA, "ph_sp", 6.6, REASON, endpoint=None)
    rig.twin.plant.set_firmware("AIC-102", b"implant")
    rig.twin.publish()
    try:
        with pytest.raises(WriteDenied):
            rig.gateway.write_setpoint(OLGA, "ph_sp", 6.6, REASON, endpoint=CONSOLE)
    finally:
        rig.twin.plant.set_firmware("AIC-102", factory_image("AIC-102", "4.2.1"))
        rig.twin.publish()
    decisions = rig.decisions()
    assert [d["policy_ids"] for d in decisions] == [["forbid-critical-from-unattested-endpoint"]] * 2
    assert rig.twin.plant.setpoints()["ph_sp"] == 6.5


def test_outside_the_validated_range_is_denied_without_elevation(rig: Rig) -> None:
    with pytest.raises(WriteDenied):
        rig.gateway.write_setpoint(OLGA, "ph_sp", 7.2, REASON, endpoint=CONSOLE)  # validated 6.2..6.8
    (decision,) = rig.decisions()
    assert decision["context"]["within_validated_range"] is False  # type: ignore[index]


def test_unknown_tag_is_denied_logged_and_reported_unknown(rig: Rig) -> None:
    with pytest.raises(UnknownTarget):
        rig.gateway.write_setpoint(OLGA, "no_such_tag", 1.0, REASON, endpoint=CONSOLE)
    (decision,) = rig.decisions()
    assert decision["decision"] == "deny"


def test_recipe_change_between_batches_only(idle: Rig) -> None:
    rig = idle
    # Idle batch: a process engineer may change the recipe; it applies to this batch too.
    result = rig.gateway.change_recipe(
        ERIN, "fermenter-01", "temperature_sp_k", 298.5, "campaign 7 recipe", endpoint=CONSOLE
    )
    assert result.record == "recipe:fermenter-01/temperature_sp_k" and result.new == 298.5
    assert rig.twin.plant.setpoints()["temperature_sp_k"] == 298.5
    rig.twin.publish()  # running: recipe changes are refused
    with pytest.raises(WriteDenied):
        rig.gateway.change_recipe(ERIN, "fermenter-01", "temperature_sp_k", 299.0, "again", endpoint=CONSOLE)
    with pytest.raises(UnknownTarget):
        rig.gateway.change_recipe(ERIN, "fermenter-99", "temperature_sp_k", 299.0, "x", endpoint=CONSOLE)
    assert [d["decision"] for d in rig.decisions()] == ["allow", "deny", "deny"]
    assert [c["record"] for c in rig.changes()] == ["recipe:fermenter-01/temperature_sp_k"]
