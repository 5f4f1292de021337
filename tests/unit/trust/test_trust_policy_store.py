"""Site policy sets: signed versions; tampered, foreign-signed or untested sets never become active."""

from __future__ import annotations

from pathlib import Path

import pytest
from trust_support import AuditList

from aseptic.clock import SimClock
from aseptic.crypto import SigningKey
from aseptic.errors import BackendError, ConfigError, IntegrityError, SignatureError
from aseptic.trust import PolicyBundle, install_policy_set, load_active_policy_set

KEY = SigningKey.generate()
FREEZE = '@id("freeze-recipes")\nforbid (principal, action == Action::"change_recipe", resource);\n'


def _bundle(extra: str | None = None) -> PolicyBundle:
    default = PolicyBundle.default()
    sources = [*default.sources, ("site.cedar", extra)] if extra else list(default.sources)
    return PolicyBundle.load(sources, default.schema_text, cases_text=default.cases_text)


def _install(data_dir: Path, bundle: PolicyBundle, clock: SimClock, audit: AuditList) -> int:
    return install_policy_set(data_dir, bundle, key=KEY, actor="root", now=clock.now(), audit=audit)


def test_without_a_site_set_the_default_is_active(tmp_path: Path) -> None:
    bundle, version = load_active_policy_set(tmp_path, KEY.public)
    assert version == 0 and bundle.digest == PolicyBundle.default().digest


def test_installed_versions_are_signed_audited_and_the_latest_is_active(
    tmp_path: Path, clock: SimClock, audit: AuditList
) -> None:
    assert _install(tmp_path, _bundle(), clock, audit) == 1
    new = _bundle(FREEZE)
    assert _install(tmp_path, new, clock, audit) == 2
    active, version = load_active_policy_set(tmp_path, KEY.public)
    assert version == 2 and active.digest == new.digest and "freeze-recipes" in active.policy_ids
    assert [(e["entry"], e["version"]) for e in audit.entries] == [("policy_change", 1), ("policy_change", 2)]


def test_tampered_policy_file_is_refused_not_replaced_by_the_default(
    tmp_path: Path, clock: SimClock, audit: AuditList
) -> None:
    _install(tmp_path, _bundle(FREEZE), clock, audit)
    site = tmp_path / "policies" / "0001" / "site.cedar"
    site.write_text(site.read_text().replace("forbid", "permit"))
    with pytest.raises(IntegrityError, match=r"site.cedar sha256"):
        load_active_policy_set(tmp_path, KEY.public)


def test_added_policy_file_is_refused(tmp_path: Path, clock: SimClock, audit: AuditList) -> None:
    _install(tmp_path, _bundle(), clock, audit)
    (tmp_path / "policies" / "0001" / "backdoor.cedar").write_text(
        '@id("b")\npermit (principal, action, resource);\n'
    )
    with pytest.raises(IntegrityError, match="differ from the manifest"):
        load_active_policy_set(tmp_path, KEY.public)


def test_set_signed_by_another_key_is_refused(tmp_path: Path, clock: SimClock, audit: AuditList) -> None:
    install_policy_set(
        tmp_path, _bundle(), key=SigningKey.generate(), actor="x", now=clock.now(), audit=audit
    )
    with pytest.raises(SignatureError):
        load_active_policy_set(tmp_path, KEY.public)


def test_set_failing_its_own_cases_is_not_installed(
    tmp_path: Path, clock: SimClock, audit: AuditList
) -> None:
    everything = '@id("allow-all")\npermit (principal, action, resource);\n'
    with pytest.raises(ConfigError, match="cases fail"):
        _install(tmp_path, _bundle(everything), clock, audit)
    assert load_active_policy_set(tmp_path, KEY.public)[1] == 0 and audit.entries == []


def test_set_that_cannot_be_audited_is_not_installed(
    tmp_path: Path, clock: SimClock, audit: AuditList
) -> None:
    audit.fail = True
    with pytest.raises(BackendError):
        _install(tmp_path, _bundle(), clock, audit)
    assert load_active_policy_set(tmp_path, KEY.public)[1] == 0
