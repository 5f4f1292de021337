"""The continuous campaign built from the settings: which scenarios, how much per cycle, the scheduler.

``aseptic serve`` starts a ``CampaignScheduler`` when ``[campaign_schedule] enabled = true`` (off by
default); ``aseptic campaign schedule`` runs the same cycles in the foreground or ``--once``. Both
log through the site's decision log (the one ledger writer of the process).
"""

from __future__ import annotations

from pathlib import Path

from aseptic.campaign import CampaignScheduler, Scenario, SchedulePlan, load_library, schedulable
from aseptic.clock import Clock
from aseptic.config import CampaignScheduleSettings, Settings
from aseptic.trust import DecisionLog

__all__ = ["schedule_plan", "scheduled_scenarios", "start_scheduler"]


def schedule_plan(settings: CampaignScheduleSettings) -> SchedulePlan:
    """The per-cycle sizes of ``[campaign_schedule]``."""
    return SchedulePlan(
        scenarios_per_cycle=settings.scenarios_per_cycle,
        batches=settings.batches,
        train_batches=settings.train_batches,
        workers=settings.workers,
        train_duration_h=settings.train_duration_h,
        score_drop=settings.score_drop,
    )


def scheduled_scenarios(settings: CampaignScheduleSettings) -> list[Scenario]:
    """The scenarios the schedule rotates over (checked now, so a bad setting fails at start).

    Raises:
        InputError: a scenario file or directory is invalid.
        ConfigError: an unknown scenario id, or nothing executable on the twin.
    """
    return schedulable(load_library(settings.scenario_dirs), settings.scenarios)


def start_scheduler(
    data_dir: Path, settings: Settings, log: DecisionLog, clock: Clock
) -> CampaignScheduler | None:
    """Start the background scheduler if ``[campaign_schedule] enabled``; None when it is off.

    Raises:
        InputError, ConfigError: as ``scheduled_scenarios``.
    """
    section = settings.campaign_schedule
    if not section.enabled:
        return None
    scheduler = CampaignScheduler(
        data_dir,
        scheduled_scenarios(section),
        schedule_plan(section),
        interval_s=section.interval_s,
        audit=log,
        findings=log.log_finding,
        clock=clock,
    )
    scheduler.start()
    return scheduler
