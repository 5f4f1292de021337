"""Settings: every bad key is a ConfigError naming the file, the key and the expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from aseptic.config import Settings, load_settings, settings_from_mapping
from aseptic.errors import ConfigError


def test_defaults_are_secure() -> None:
    settings = Settings()
    assert settings.opcua.host == "127.0.0.1"
    assert settings.site.data_dir == Path("aseptic-data")


def test_valid_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text('[site]\nid = "plant-7"\n[opcua]\nport = 4841\n', encoding="utf-8")
    settings = load_settings(path)
    assert settings.site.id == "plant-7"
    assert settings.opcua.port == 4841


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does-not-exist.toml does not exist"):
        load_settings(tmp_path / "does-not-exist.toml")


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[site\nid = 1", encoding="utf-8")
    with pytest.raises(ConfigError, match="broken.toml is not valid TOML"):
        load_settings(path)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"opcua": {"port": 70000}}, r"\[opcua\]\.port"),
        ({"twin": {"ph_setpoint": 15}}, r"\[twin\]\.ph_setpoint"),
        ({"twin": {"initial_volume_l": -5}}, r"\[twin\]\.initial_volume_l"),
        ({"telemetry": {"readings_per_envelope": 0}}, r"\[telemetry\]\.readings_per_envelope"),
        ({"site": {"id": "Bad Id!"}}, r"\[site\]\.id"),
        ({"opcua": {"host": ""}}, r"\[opcua\]\.host"),  # "" listens on every interface
    ],
)
def test_impossible_value_names_the_key(data: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as info:
        settings_from_mapping(data, source="site.toml")
    assert str(info.value).startswith("site.toml: ")
    assert info.value.hint


def test_unknown_key_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"\[opcua\]\.prot"):
        settings_from_mapping({"opcua": {"prot": 1}}, source="site.toml")


def test_unknown_section_is_refused() -> None:
    with pytest.raises(ConfigError, match="nonsense"):
        settings_from_mapping({"nonsense": {}}, source="site.toml")


def test_attestation_devices_name_a_manifest_and_their_kind() -> None:
    settings = settings_from_mapping(
        {"attestation": {"interval_s": 5, "devices": {"TIC-101": {"manifest": "firmware/tic.manifest.json"}}}}
    )
    device = settings.attestation.devices["TIC-101"]
    assert (str(device.manifest), device.controller, device.principal) == (
        "firmware/tic.manifest.json",
        True,
        None,
    )


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"interval_s": 600, "max_report_age_s": 60}, "must be at least interval_s"),
        ({"interval_s": 0}, "interval_s"),
        ({"devices": {"TIC-101": {}}}, "manifest"),
        ({"devices": {"TIC 101": {"manifest": "m.json"}}}, "TIC 101"),
        ({"devices": {"TIC-101": {"manifest": "m.json", "principal": "Not Lower"}}}, "principal"),
    ],
)
def test_bad_attestation_settings_are_refused(data: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        settings_from_mapping({"attestation": data}, source="site.toml")


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"ledger": {"password": "hunter2-s3cret"}}, r"\[ledger\]\.password"),
        ({"crypto": {"pkcs11_pin": "hunter2-s3cret"}}, r"\[crypto\]\.pkcs11_pin"),
        ({"ledger": {"stor": "postgresql://aseptic:hunter2-s3cret@db/aseptic"}}, r"\[ledger\]\.stor"),
    ],
)
def test_unknown_key_is_named_but_its_value_never_echoed(data: dict[str, object], key: str) -> None:
    # A guessed secret key (or a typo of `store` holding a URL with a password) is refused without
    # repeating its value: error messages reach terminals and logs.
    with pytest.raises(ConfigError, match=key) as info:
        settings_from_mapping(data, source="site.toml")
    assert "hunter2-s3cret" not in str(info.value)
    assert "hunter2-s3cret" not in (info.value.hint or "")


def test_wrong_type_still_shows_the_value() -> None:
    with pytest.raises(ConfigError, match=r"\[opcua\]\.port: .*\(got 'x'\)"):
        settings_from_mapping({"opcua": {"port": "x"}}, source="site.toml")


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("telemetry", "max_clock_skew_s"),
        ("detect", "cusum_arl0_h"),
        ("access", "bulk_factor"),
        ("twin", "paa_setpoint_mg_per_l"),
    ],
)
def test_infinite_value_from_toml_is_refused(tmp_path: Path, section: str, key: str) -> None:
    # TOML spells infinity `inf`; it passed every lower bound and switched the check off (or crashed it).
    path = tmp_path / "site.toml"
    path.write_text(f"[{section}]\n{key} = inf\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"site.toml: \[{section}\]\.{key}: .*finite"):
        load_settings(path)


@pytest.mark.parametrize(
    "endpoint", ["opc.tcp://writer:hunter2-s3cret@plant:4840", "opc.tcp://writer@plant:4840/hunter2-s3cret"]
)
def test_gateway_endpoint_with_credentials_is_refused_and_not_echoed(endpoint: str) -> None:
    # asyncua logs in with USER:PASSWORD from the URL; the gateway's identity is its certificate.
    with pytest.raises(
        ConfigError, match=r"\[gateway\]\.endpoint: .*must not hold a user or password"
    ) as info:
        settings_from_mapping({"gateway": {"endpoint": endpoint}}, source="site.toml")
    assert "hunter2-s3cret" not in str(info.value)


def test_gateway_endpoint_without_credentials_loads() -> None:
    settings = settings_from_mapping({"gateway": {"endpoint": "opc.tcp://127.0.0.1:4840/aseptic/"}})
    assert settings.gateway.endpoint == "opc.tcp://127.0.0.1:4840/aseptic/"


def test_envelopes_that_could_never_fit_their_size_limit_are_refused() -> None:
    # 60,000 readings of 21 bytes each are over the default 1 MiB: every full envelope would be
    # refused at ingest as oversize (found by review; both settings were accepted).
    with pytest.raises(ConfigError, match="ingest would refuse every full envelope"):
        settings_from_mapping({"telemetry": {"readings_per_envelope": 60_000}})
    ok = settings_from_mapping({"telemetry": {"readings_per_envelope": 60_000, "max_envelope_bytes": 2**21}})
    assert ok.telemetry.readings_per_envelope == 60_000


def test_the_reading_record_size_is_the_wire_formats() -> None:
    from aseptic.config import _READING_RECORD_BYTES
    from aseptic.telemetry._wire import RECORD_SIZE

    assert _READING_RECORD_BYTES == RECORD_SIZE
