"""Settings from one TOML file, validated at the edge.

A site's settings live in one TOML file (``aseptic.toml`` by default). Every key is validated
here; an unknown key, a wrong type or an impossible value is a ``ConfigError`` that names the file,
the key and what was expected. Code past this module receives a frozen ``Settings`` value and never
reads files or environment variables for configuration.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aseptic.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "DEFAULT_DATA_DIR",
    "AccessSettings",
    "ApiSettings",
    "AttestationDevice",
    "AttestationSettings",
    "BackupSettings",
    "CampaignScheduleSettings",
    "CryptoSettings",
    "DetectSettings",
    "GatewaySettings",
    "LedgerSettings",
    "OpcUaSettings",
    "Settings",
    "SiteSettings",
    "TelemetrySettings",
    "TlsSettings",
    "TrustSettings",
    "TwinSettings",
    "load_settings",
    "settings_from_mapping",
]

DEFAULT_CONFIG_FILE = Path("aseptic.toml")
# Keys whose rejected value is not repeated in the error (a URL with a password in it).
_NEVER_ECHOED = {("ledger", "store"), ("gateway", "endpoint")}
DEFAULT_DATA_DIR = Path("aseptic-data")
_READING_RECORD_BYTES = 21  # one reading in an envelope (aseptic.telemetry's RECORD_SIZE; a test pins it)


class _Section(BaseModel):
    # TOML has inf and nan: no setting means "infinite" (inf passed every `ge`/`gt` bound and crashed
    # or silently switched a check off, e.g. round(max_clock_skew_s * 1e6) at ingest).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class SiteSettings(_Section):
    """Who this site is and where it keeps its state."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")] = "site-01"
    name: str = "Aseptic site"
    data_dir: Path = DEFAULT_DATA_DIR


class OpcUaSettings(_Section):
    """The twin's OPC UA server (``aseptic twin serve``) and Aseptic's client to it."""

    # Never empty: "" listens on every interface.
    host: Annotated[str, Field(pattern=r"^\S+$")] = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 4840
    # Simulated seconds per wall-clock second.
    speed: Annotated[float, Field(gt=0, le=1_000_000)] = 3600.0
    # The one client certificate (by its subject common name) allowed to write setpoints.
    writer_identity: str = "aseptic-gateway"
    # Monitored-item queue size on the client side; large enough that accelerated time loses nothing.
    queue_size: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000


class TwinSettings(_Section):
    """The plant digital twin."""

    sample_time_h: Annotated[float, Field(gt=0, le=1.0)] = 0.2
    seed: Annotated[int, Field(ge=0)] = 0
    initial_volume_l: Annotated[float, Field(gt=0, le=100_000)] = 58_000.0
    ph_setpoint: Annotated[float, Field(ge=0, le=14)] = 6.5
    temperature_setpoint_k: Annotated[float, Field(gt=273.15, lt=373.15)] = 298.0
    paa_setpoint_mg_per_l: Annotated[float, Field(ge=0)] = 1200.0


class TelemetrySettings(_Section):
    """Edge collection and verification at ingest."""

    readings_per_envelope: Annotated[int, Field(ge=1, le=100_000)] = 250
    max_envelope_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    max_clock_skew_s: Annotated[float, Field(ge=0)] = 300.0

    @model_validator(mode="after")
    def _full_envelope_fits(self) -> TelemetrySettings:
        # A full envelope's reading records alone take _READING_RECORD_BYTES each (the wire format,
        # docs/telemetry.md): over the size limit, ingest would refuse every full envelope.
        least = self.readings_per_envelope * _READING_RECORD_BYTES
        if least > self.max_envelope_bytes:
            raise ValueError(
                f"readings_per_envelope {self.readings_per_envelope} makes envelopes of at least {least} "
                f"bytes, over max_envelope_bytes {self.max_envelope_bytes}: ingest would refuse every "
                "full envelope"
            )
        return self


class DetectSettings(_Section):
    """Process-anomaly detection."""

    false_alarm_rate: Annotated[float, Field(gt=0, lt=0.5)] = 0.01
    training_batches: Annotated[int, Field(ge=3, le=1000)] = 20
    # Cumulative explained variance the MSPC model keeps (number of principal components).
    explained_variance: Annotated[float, Field(gt=0, lt=1)] = 0.9
    # Consecutive samples over a limit before an alarm episode opens (one Finding per episode).
    persistence_samples: Annotated[int, Field(ge=1, le=100)] = 3
    # CUSUM reference value k, in innovation standard deviations (half the shift detected fastest).
    cusum_k: Annotated[float, Field(gt=0, le=5)] = 0.5
    # CUSUM in-control average run length, in clean batch-hours between false alarms (all tags).
    cusum_arl0_h: Annotated[float, Field(gt=0)] = 1000.0


class ApiSettings(_Section):
    """The HTTP API (``aseptic serve``)."""

    # Largest request body accepted; anything longer is refused with 413 before it is parsed.
    max_body_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 64 * 1024
    # Lifetime of a session token issued by POST /api/login (at most 8 h, as for the CLI).
    token_lifetime_s: Annotated[int, Field(ge=60, le=8 * 3600)] = 900
    # IEC 62443 zone the API's clients connect from (the policies read it as context.source_zone).
    source_zone: Annotated[str, Field(pattern=r"^(enterprise|dmz|operations|control|safety)$")] = "operations"
    # Most readings one historian query returns (a longer answer is cut and says so).
    max_readings: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000
    # The decision log appends through a child process (ADR 0360): hashing, rows and the commit off
    # the request process's GIL. Off: a writer thread in the server process (ADR 0070, 0260). With
    # inline analytics off, request threads write entries straight to the child (ADR 0361).
    decision_log_process: bool = True


class AccessSettings(_Section):
    """Access analytics while ``aseptic serve`` runs (docs/trust.md, "Access analytics")."""

    # Feed every decision and login to the analytics as it is logged (off: only `aseptic access analyse`).
    inline_analytics: bool = True
    # Baseline: the decision log's first hours (from its first decision).
    training_h: Annotated[float, Field(gt=0, le=24 * 365)] = 24.0
    window_s: Annotated[float, Field(gt=0, le=86_400)] = 300.0
    # A bulk read: more reads in one window than bulk_factor x the identity's busiest training window
    # (and more than min_bulk_reads).
    bulk_factor: Annotated[float, Field(ge=1)] = 5.0
    min_bulk_reads: Annotated[int, Field(ge=1)] = 50
    # An unusual read: this many resources in one window that the identity never read in training.
    novel_limit: Annotated[int, Field(ge=1)] = 10
    # Repeated denials: this many denied requests or refused logins of one identity in one window.
    denial_limit: Annotated[int, Field(ge=2)] = 5


class LedgerSettings(_Section):
    """Where the ledger's tables live (docs/ledger.md, "Stores")."""

    # postgresql://USER@HOST:PORT/DB of a PostgreSQL store; unset: D/ledger.db (SQLite). Never a
    # password: libpq reads it from password_file, PGPASSFILE, PGPASSWORD or ~/.pgpass.
    store: str | None = None
    # A libpq password file (HOST:PORT:DB:USER:PASSWORD lines, mode 0600) for the store.
    password_file: Path | None = None

    @field_validator("store")
    @classmethod
    def _no_password_in_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError("must be a postgresql:// URL")
        if parts.password is not None or "password=" in parts.query:
            raise ValueError("must not hold a password (use password_file or PGPASSFILE)")
        return url

    def store_url(self) -> str | None:
        """The store URL with ``passfile`` added when ``password_file`` is set."""
        if self.store is None or self.password_file is None:
            return self.store
        joiner = "&" if urlsplit(self.store).query else "?"
        return f"{self.store}{joiner}passfile={quote(str(self.password_file), safe='/')}"


class BackupSettings(_Section):
    """``aseptic backup`` / ``aseptic restore`` (docs/backup.md)."""

    # Where backups go when --to is not given (unset: --to is required).
    directory: Path | None = None
    # Complete backups kept in that directory; older ones are deleted after each new backup.
    keep: Annotated[int, Field(ge=1, le=10_000)] = 14
    # Copy every checkpoint note into DIR/checkpoints/ (never pruned: the signed tree heads of
    # every period outlive the backups they came with).
    archive_checkpoints: bool = True


class GatewaySettings(_Section):
    """The write gateway: the one path from Aseptic to the plant's OPC UA server (docs/gateway.md)."""

    # opc.tcp URL of the twin's (or plant's) OPC UA server; unset: the gateway is off (writes 503).
    endpoint: Annotated[str, Field(pattern=r"^opc\.tcp://[^\s]+$")] | None = None
    # The plant's one writer: the client identity D/pki/own/<writer>.der + .pem (certificate, key);
    # the server must be in D/pki/trusted-servers. Files only: no secret on the command line.
    writer: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")] = "client-aseptic-gateway"
    # The plant hierarchy in the server's address space (ISA-95) and in the Cedar entity graph.
    area: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")] = "fermentation"
    unit: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")] = "fermenter-01"
    # Every OPC UA request (connect, read, write) fails with a 503 after this long.
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    # What the audit trail says about the host clock's synchronisation (Annex 11 §12.4: time
    # stamps must be trustworthy); "unknown" until a site states its time source.
    clock_sync: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@/ -]{0,63}$")] = "unknown"

    @field_validator("endpoint")
    @classmethod
    def _no_user_in_url(cls, url: str | None) -> str | None:
        # asyncua turns opc.tcp://USER:PASSWORD@host into a user-name login: a password in argv
        # (--twin-endpoint) and in serve's banner, where the writer's certificate should be.
        if url is not None and urlsplit(url).netloc.rpartition("@")[1]:
            raise ValueError(
                "must not hold a user or password (the writer's X.509 certificate is its identity)"
            )
        return url


class AttestationDevice(_Section):
    """One device whose firmware ``aseptic serve`` attests (docs/provenance.md, "Device attestation")."""

    # The signed firmware manifest (aseptic firmware sign) of the image the device must run; a
    # relative path is in the data directory. Verified with the site key when serve starts.
    manifest: Path
    # A controller runs system firmware (ATT&CK for ICS T0857); false: a field module (T0839).
    controller: bool = True
    # The device's identity (aseptic device enrol NAME) whose requests carry this posture;
    # unset: the device id in lower case.
    principal: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.-]{0,62}$")] | None = None


class AttestationSettings(_Section):
    """Device attestation in ``aseptic serve``: firmware digests read over the gateway's OPC UA session."""

    # Seconds between attestation rounds (the first one runs when serve connects to the plant).
    interval_s: Annotated[float, Field(gt=0, le=86_400)] = 60.0
    # A device whose last report is older than this fails its posture (at least interval_s).
    max_report_age_s: Annotated[float, Field(gt=0, le=7 * 86_400)] = 300.0
    # Device id (as the plant reports it, e.g. "TIC-101") -> what it must run. Empty: attestation
    # is off (the gateway then checks targets against the twin's catalogue firmware only).
    devices: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")], AttestationDevice] = {}

    @model_validator(mode="after")
    def _age_covers_an_interval(self) -> AttestationSettings:
        if self.max_report_age_s < self.interval_s:
            raise ValueError(
                f"max_report_age_s ({self.max_report_age_s:g}) must be at least interval_s "
                f"({self.interval_s:g}), or every device goes stale between rounds"
            )
        return self


class TlsSettings(_Section):
    """HTTPS and mutual TLS for ``aseptic serve`` (docs/api.md)."""

    # Plain HTTP instead of HTTPS: for a TLS-terminating proxy on the same host, or tests. Unsafe.
    insecure_http: bool = False
    # Lifetime of the server certificate the site CA issues on first start (D/tls/server.pem).
    server_cert_days: Annotated[int, Field(ge=1, le=825)] = 365


class CryptoSettings(_Section):
    """Where the site's private keys live (docs/crypto.md): sealed on disk, or in a PKCS#11 token."""

    # The PKCS#11 module (shared library) of the token; unset: keys sealed under the passphrase.
    pkcs11_module: Path | None = None
    token_label: Annotated[str, Field(pattern=r"^[\x20-\x7e]{1,32}$")] = "aseptic"  # noqa: S105 - a label, not a secret
    # A file (mode 0600) holding the token's user PIN; $ASEPTIC_PKCS11_PIN_FILE overrides it.
    pkcs11_pin_file: Path | None = None


class TrustSettings(_Section):
    """Identities (docs/access.md): how a burst of failed logins or signings locks an identity."""

    # Failed password/TOTP attempts (login or e-signature) that lock the identity and raise a Finding.
    lockout_failures: Annotated[int, Field(ge=1, le=100)] = 5
    # The window those failures are counted in, in seconds (21 CFR 11.300(d): detect and report).
    lockout_window_s: Annotated[int, Field(ge=60, le=7 * 24 * 3600)] = 15 * 60


class CampaignScheduleSettings(_Section):
    """``aseptic campaign schedule``: continuous threat simulation on a shadow twin (docs/operations.md).

    Off unless ``enabled``: a cycle costs CPU on the server (workers run at a lower priority), and a
    site turns it on knowingly. Every scenario runs on fresh in-process twins, never the plant's.
    """

    enabled: bool = False
    # Seconds between the start of two cycles inside `aseptic serve` (the first starts after one).
    interval_s: Annotated[float, Field(ge=60, le=7 * 24 * 3600)] = 3600.0
    # Scenarios per cycle, taken in turn from the library (rotating over every executable one).
    scenarios_per_cycle: Annotated[int, Field(ge=1, le=100)] = 3
    batches: Annotated[int, Field(ge=1, le=100)] = 2
    train_batches: Annotated[int, Field(ge=3, le=100)] = 5
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    # Clean-batch length the detectors are trained on (unset: the full recipe).
    train_duration_h: Annotated[float, Field(gt=0, le=1000)] | None = None
    # A cycle whose resilience score (0-100) falls this many points below the previous one: a Finding.
    score_drop: Annotated[float, Field(gt=0, le=100)] = 5.0
    # Scenario ids to rotate over (empty: the whole library) and directories of a site's own.
    scenarios: list[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]] = []
    scenario_dirs: list[Path] = []


class Settings(_Section):
    """Everything a site can configure. Built only by ``load_settings`` or ``settings_from_mapping``."""

    site: SiteSettings = SiteSettings()
    opcua: OpcUaSettings = OpcUaSettings()
    twin: TwinSettings = TwinSettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    detect: DetectSettings = DetectSettings()
    api: ApiSettings = ApiSettings()
    ledger: LedgerSettings = LedgerSettings()
    backup: BackupSettings = BackupSettings()
    gateway: GatewaySettings = GatewaySettings()
    tls: TlsSettings = TlsSettings()
    crypto: CryptoSettings = CryptoSettings()
    trust: TrustSettings = TrustSettings()
    attestation: AttestationSettings = AttestationSettings()
    campaign_schedule: CampaignScheduleSettings = CampaignScheduleSettings()
    access: AccessSettings = AccessSettings()


def settings_from_mapping(data: dict[str, Any], *, source: str = "<settings>") -> Settings:
    """Validate a parsed mapping into ``Settings``.

    Raises:
        ConfigError: a key is unknown, has the wrong type or an impossible value; the message names
            ``source``, the key path (``[opcua].port``) and what is expected.
    """
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(part) for part in first["loc"]]
        key = f"[{loc[0]}].{'.'.join(loc[1:])}" if len(loc) > 1 else loc[0] if loc else "?"
        value = first.get("input")
        # May hold a password by mistake: never in a message. An unknown key is one too: a guessed
        # `password = "..."` or `pin = "..."` must not reach a terminal or a log.
        secret = tuple(loc) in _NEVER_ECHOED or first["type"] == "extra_forbidden"
        shown = "" if isinstance(value, dict) or secret else f" (got {value!r})"
        more = f"; and {exc.error_count() - 1} more problem(s)" if exc.error_count() > 1 else ""
        raise ConfigError(
            f"{source}: {key}: {first['msg']}{shown}{more}",
            hint="see docs/configuration.md for every key, its type and its range",
        ) from None


def load_settings(path: Path | None = None) -> Settings:
    """Load settings from ``path``; with ``None``, from ``aseptic.toml`` if present, else defaults.

    Raises:
        ConfigError: the named file is missing, is not valid TOML, or fails validation.
    """
    if path is None:
        if not DEFAULT_CONFIG_FILE.is_file():
            return Settings()
        path = DEFAULT_CONFIG_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist", hint="pass --config FILE") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    return settings_from_mapping(data, source=str(path))
