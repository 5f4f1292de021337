"""Continuous threat simulation on the twin: attack primitives (first slice).

``Bias``, ``Ramp``, ``Surge``, ``Geometric``, ``Replay`` and ``Freeze`` falsify one tag's value
inside a window of batch time (ATT&CK for ICS T0856 Spoofed Reporting Message / T0832 Manipulation
of View; T0815 Denial of View for a freeze); ``SetpointChange`` moves a controller setpoint (T0836).
On the reporting path apply them to published samples; in the loop use ``InLoopPlant``::

    attacks = [Bias("temperature_k", start_h=60, duration_h=20, offset=0.5)]
    reported = apply_attacks(attacks, sample["batch_time_h"], sample)

Scenario files (``load_scenario``, ``load_library``; YAML checked against ``scenario_schema()``,
the shipped ATT&CK for ICS / ATLAS catalogues and the ``PRIMITIVES`` table) describe attacks for the
campaign runner (``run_campaign``, ``write_campaign``); the library ships in ``campaign/scenarios/``
(docs/campaign.md).
"""

from aseptic.campaign._loop import InLoopPlant
from aseptic.campaign._primitive_specs import PRIMITIVES, ParamSpec, PrimitiveSpec
from aseptic.campaign._primitives import REPORTING_TECHNIQUES, Attack, Bias, Ramp, Replay, apply_attacks
from aseptic.campaign._report import render_html, write_campaign
from aseptic.campaign._resilience import (
    DETECTION_WINDOW_H,
    SCORE_WEIGHTS,
    MissedTechnique,
    ResilienceScore,
    newly_missed,
    resilience_findings,
    rotate,
    score_results,
)
from aseptic.campaign._runner import (
    CAMPAIGN_SEED,
    DETECTION_QUORUM,
    FAMILY_STATISTICS,
    not_executable_reason,
    run_campaign,
)
from aseptic.campaign._scenario import (
    DETECTOR_FAMILIES,
    Expectation,
    Preconditions,
    Scenario,
    Step,
    builtin_scenario_dir,
    load_library,
    load_scenario,
    parse_scenario,
    scenario_schema,
)
from aseptic.campaign._schedule import (
    SCHEDULER_IDENTITY,
    CampaignScheduler,
    SchedulePlan,
    run_cycle,
    run_shadow_campaign,
    schedulable,
)
from aseptic.campaign._schedule_store import SCHEDULE_DB, CycleRecord, ScheduleStore, result_digest
from aseptic.campaign._shapes import Freeze, Geometric, SetpointChange, Surge
from aseptic.campaign._steps import build_attack
from aseptic.campaign._techniques import ATLAS_VERSION, ICS_ATTACK_VERSION, Technique, technique, techniques
from aseptic.campaign._view import TamperedView

__all__ = [
    "ATLAS_VERSION",
    "CAMPAIGN_SEED",
    "DETECTION_QUORUM",
    "DETECTION_WINDOW_H",
    "DETECTOR_FAMILIES",
    "FAMILY_STATISTICS",
    "ICS_ATTACK_VERSION",
    "PRIMITIVES",
    "REPORTING_TECHNIQUES",
    "SCHEDULER_IDENTITY",
    "SCHEDULE_DB",
    "SCORE_WEIGHTS",
    "Attack",
    "Bias",
    "CampaignScheduler",
    "CycleRecord",
    "Expectation",
    "Freeze",
    "Geometric",
    "InLoopPlant",
    "MissedTechnique",
    "ParamSpec",
    "Preconditions",
    "PrimitiveSpec",
    "Ramp",
    "Replay",
    "ResilienceScore",
    "Scenario",
    "SchedulePlan",
    "ScheduleStore",
    "SetpointChange",
    "Step",
    "Surge",
    "TamperedView",
    "Technique",
    "apply_attacks",
    "build_attack",
    "builtin_scenario_dir",
    "load_library",
    "load_scenario",
    "newly_missed",
    "not_executable_reason",
    "parse_scenario",
    "render_html",
    "resilience_findings",
    "result_digest",
    "rotate",
    "run_campaign",
    "run_cycle",
    "run_shadow_campaign",
    "scenario_schema",
    "schedulable",
    "score_results",
    "technique",
    "techniques",
    "write_campaign",
]
