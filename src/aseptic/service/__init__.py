"""The composition root: builds the running system (chain of custody, detection) from settings."""

from aseptic.service._assemble import SampleAssembler
from aseptic.service._attestation import DeviceAttestation, ExpectedFirmware, load_expected_firmware
from aseptic.service._batch_record import ModelRef
from aseptic.service._ca_migration import CaMigration, migrate_site_ca
from aseptic.service._custody import CustodyPipeline
from aseptic.service._demo import DemoPlan, run_demo
from aseptic.service._init import (
    CA_FILE,
    CA_KEY,
    RETIRED_CA_FILE,
    SESSION_KEY,
    SITE_PUB,
    TLS_CA_KEY,
    SiteInit,
    initialise_site,
    load_client_anchors,
    open_site_ca,
    token_from_settings,
)
from aseptic.service._report import BatchSeries, render_report_html
from aseptic.service._schedule import schedule_plan, scheduled_scenarios, start_scheduler
from aseptic.service._training import batch_samples, train_detector
from aseptic.service._verification import (
    VERIFICATION_FILE,
    LastVerification,
    read_last_verification,
    record_verification,
)

__all__ = [
    "CA_FILE",
    "CA_KEY",
    "RETIRED_CA_FILE",
    "SESSION_KEY",
    "SITE_PUB",
    "TLS_CA_KEY",
    "VERIFICATION_FILE",
    "BatchSeries",
    "CaMigration",
    "CustodyPipeline",
    "DemoPlan",
    "DeviceAttestation",
    "ExpectedFirmware",
    "LastVerification",
    "ModelRef",
    "SampleAssembler",
    "SiteInit",
    "batch_samples",
    "initialise_site",
    "load_client_anchors",
    "load_expected_firmware",
    "migrate_site_ca",
    "open_site_ca",
    "read_last_verification",
    "record_verification",
    "render_report_html",
    "run_demo",
    "schedule_plan",
    "scheduled_scenarios",
    "start_scheduler",
    "token_from_settings",
    "train_detector",
]
