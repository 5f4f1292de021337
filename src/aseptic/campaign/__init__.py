"""Continuous threat simulation on the twin: attack primitives (first slice).

``Bias``, ``Ramp``, ``Surge``, ``Geometric``, ``Replay`` and ``Freeze`` falsify one tag's value
inside a window of batch time (ATT&CK for ICS T0856 Spoofed Reporting Message / T0832 Manipulation
of View; T0815 Denial of View for a freeze); ``SetpointChange`` moves a controller setpoint (T0836).
On the reporting path apply them to published samples; in the loop use ``InLoopPlant``::

    attacks = [Bias("temperature_k", start_h=60, duration_h=20, offset=0.5)]
    reported = apply_attacks(attacks, sample["batch_time_h"], sample)

Scenario files, the runner and scoring come next (docs/detect.md).
"""

from aseptic.campaign._loop import InLoopPlant
from aseptic.campaign._primitives import REPORTING_TECHNIQUES, Attack, Bias, Ramp, Replay, apply_attacks
from aseptic.campaign._shapes import Freeze, Geometric, SetpointChange, Surge
from aseptic.campaign._view import TamperedView

__all__ = [
    "REPORTING_TECHNIQUES",
    "Attack",
    "Bias",
    "Freeze",
    "Geometric",
    "InLoopPlant",
    "Ramp",
    "Replay",
    "SetpointChange",
    "Surge",
    "TamperedView",
    "apply_attacks",
]
