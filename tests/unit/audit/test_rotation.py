"""Site key rotation: retirement logged, old checkpoints verify, the retired key signs nothing new."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aseptic.audit import AuditFilter, fixed_clock_sync, read_audit_trail, rotate_site_key
from aseptic.clock import SimClock
from aseptic.crypto import ED25519, ED25519_ML_DSA_65, KeyStore, SigningKey, read_public_key
from aseptic.errors import ConfigError, InputError, SignatureError
from aseptic.ledger import Checkpoint, Ledger, LedgerTampered, SiteKeys, verify_ledger

pytestmark = pytest.mark.requirement("ASE-PQC", "P11-11.10e")

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
SYNC = fixed_clock_sync("synchronized")


def _site(tmp_path: Path) -> tuple[Path, KeyStore, SimClock]:
    data_dir = tmp_path / "data"
    keys = KeyStore.open(data_dir)
    clock = SimClock(START)
    with Ledger.open(data_dir, site_key=keys.load_or_create("site"), clock=clock) as ledger:
        ledger.append_finding({"n": 1})
        ledger.checkpoint()
        ledger.append_finding({"n": 2})
    return data_dir, keys, clock


def _rotate(data_dir: Path, keys: KeyStore, clock: SimClock, algorithm: str | None = None) -> object:
    clock.advance(60)
    return rotate_site_key(
        keys,
        data_dir,
        clock=clock,
        origin="site-01",
        who="admin",
        why="annual rotation",
        algorithm=algorithm,
        clock_sync=SYNC,
    )


def test_rotation_is_logged_and_both_keys_verify_the_whole_log(tmp_path: Path) -> None:
    data_dir, keys, clock = _site(tmp_path)
    old = read_public_key(data_dir / "site.pub")
    rotation = _rotate(data_dir, keys, clock)
    new = read_public_key(data_dir / "site.pub")
    assert new != old and new == keys.public("site")
    assert rotation.retired == old.key_id and rotation.successor == new.key_id  # type: ignore[attr-defined]
    with Ledger.open(data_dir, site_key=keys.load("site"), clock=clock) as ledger:
        events = read_audit_trail(ledger, AuditFilter(record="key:site"))
        ledger.append_finding({"n": 3})
        clock.advance(1)
        ledger.checkpoint()
    assert [(e.change, e.old, e.new, e.why) for e in events] == [
        ("modify", old.key_id, new.key_id, "annual rotation")
    ]
    assert events[0].payload["new_public_key"] == f"{new.algorithm} {new.raw.hex()}"
    for anchor in (old, new):  # the auditor's first site.pub and the current one both work
        report = verify_ledger(data_dir, anchor)
        assert report.checkpoints == 3


def test_rotation_to_hybrid_signs_new_checkpoints_with_both_halves(tmp_path: Path) -> None:
    data_dir, keys, clock = _site(tmp_path)
    _rotate(data_dir, keys, clock, ED25519_ML_DSA_65)
    with Ledger.open(data_dir, site_key=keys.load("site"), clock=clock) as ledger:
        clock.advance(1)
        ledger.append_finding({"n": 3})
        assert ledger.checkpoint().algorithm == ED25519_ML_DSA_65
    verify_ledger(data_dir, read_public_key(data_dir / "site.pub"))


def test_the_retired_key_cannot_open_the_ledger(tmp_path: Path) -> None:
    data_dir, keys, clock = _site(tmp_path)
    old = keys.load("site")
    _rotate(data_dir, keys, clock)
    with pytest.raises(ConfigError):
        Ledger.open(data_dir, site_key=old, clock=clock)


def test_checkpoint_by_the_retired_key_past_its_retirement_is_refused(tmp_path: Path) -> None:
    data_dir, keys, clock = _site(tmp_path)
    old = keys.load("site")
    rotation = _rotate(data_dir, keys, clock)
    with Ledger.open(data_dir, site_key=keys.load("site"), clock=clock) as ledger:
        ledger.append_finding({"n": 3})
        size, root = ledger.size, ledger.root
    clock.advance(1)
    forged = Checkpoint.sign(origin="site-01", size=size, root=root, time=clock.now(), key=old)
    with pytest.raises(SignatureError, match="retired at size"):
        SiteKeys.from_conn(sqlite3.connect(data_dir / "ledger.db"), old.public).verify_checkpoint(forged)
    with sqlite3.connect(data_dir / "ledger.db") as conn:
        conn.execute(
            "INSERT INTO checkpoints (origin, size, root, time, key_id, algorithm, body, signature)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (forged.origin, forged.size, bytes(forged.root), forged.time.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
             forged.key_id, forged.algorithm, forged.body, forged.signature),
        )  # fmt: skip
    with pytest.raises(LedgerTampered, match="retired at size"):
        verify_ledger(data_dir, old.public)
    assert rotation.retired_at_size == rotation.leaf + 1  # type: ignore[attr-defined]


def test_a_key_outside_the_chain_is_refused(tmp_path: Path) -> None:
    data_dir, keys, clock = _site(tmp_path)
    _rotate(data_dir, keys, clock)
    with pytest.raises(SignatureError, match="not in the log's key chain"):
        verify_ledger(data_dir, SigningKey.generate(ED25519).public)


def test_rotation_without_a_reason_changes_nothing(tmp_path: Path) -> None:
    data_dir, keys, clock = _site(tmp_path)
    before = keys.public("site")
    with pytest.raises(InputError, match="no reason"):
        rotate_site_key(keys, data_dir, clock=clock, origin="site-01", who="admin", why=" ", clock_sync=SYNC)
    assert keys.public("site") == before and keys.retired("site") == ()


def test_rotation_interrupted_after_the_key_files_resumes(tmp_path: Path) -> None:
    data_dir, keys, clock = _site(tmp_path)
    old = keys.public("site")
    keys.rotate("site")  # the crash: key files rotated, nothing logged
    with pytest.raises(ConfigError):
        Ledger.open(data_dir, site_key=keys.load("site"), clock=clock)
    rotation = _rotate(data_dir, keys, clock)
    assert rotation.retired == old.key_id  # type: ignore[attr-defined]
    with Ledger.open(data_dir, site_key=keys.load("site"), clock=clock):
        pass
    verify_ledger(data_dir, old)


def test_bundle_across_a_rotation_verifies_with_old_or_new_key_and_refuses_a_retired_signer(
    tmp_path: Path,
) -> None:
    import json

    from aseptic.audit import export_audit_trail, sign_record, verify_audit_bundle
    from aseptic.ledger import LeafKind

    data_dir, keys, clock = _site(tmp_path)
    old_key = keys.load("site")
    _rotate(data_dir, keys, clock)
    new_key = keys.load("site")

    def signature(key: SigningKey) -> dict[str, object]:
        return sign_record(
            record="batch-record:B-1", content={"b": 1}, signer="qa.anna", printed_name="Anna",
            meaning="approved", when=clock.now(), clock_sync="synchronized", factors=("password",),
            session=None, system="site-01", site_key=key,
        ).to_payload()  # fmt: skip

    with Ledger.open(data_dir, site_key=new_key, clock=clock) as ledger:
        ledger.append_entry(LeafKind.SIGNATURE, signature(new_key))
        clock.advance(1)
        export_audit_trail(ledger, tmp_path / "ok", AuditFilter(kind="electronic_signature"))
        ledger.append_entry(LeafKind.SIGNATURE, signature(old_key))  # made with the retired key
        clock.advance(1)
        export_audit_trail(ledger, tmp_path / "bad", AuditFilter(kind="electronic_signature"))
    data = (tmp_path / "ok" / "audit-bundle.json").read_bytes()
    assert len(json.loads(data)["keys"]) == 1
    for anchor in (old_key.public, new_key.public):
        assert verify_audit_bundle(data, [anchor]).signatures == 1
    with pytest.raises(SignatureError, match="retired at size"):
        verify_audit_bundle((tmp_path / "bad" / "audit-bundle.json").read_bytes(), [old_key.public])
