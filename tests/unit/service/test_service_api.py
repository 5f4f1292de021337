"""The public API of aseptic.service is pinned: changing it is a decision, not an accident."""

from __future__ import annotations

import pytest

import aseptic.service

pytestmark = pytest.mark.requirement("ASE-CUSTODY")


def test_public_api_is_pinned() -> None:
    assert aseptic.service.__all__ == [
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
