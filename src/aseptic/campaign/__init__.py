"""Continuous threat simulation on the twin: attack primitives (first slice).

``Bias``, ``Ramp`` and ``Replay`` falsify one tag's reported value inside a window of batch time
(ATT&CK for ICS T0856 Spoofed Reporting Message / T0832 Manipulation of View)::

    attacks = [Bias("temperature_k", start_h=60, duration_h=20, offset=0.5)]
    reported = apply_attacks(attacks, sample["batch_time_h"], sample)

Scenario files, the runner and scoring come next (docs/detect.md).
"""

from aseptic.campaign._primitives import REPORTING_TECHNIQUES, Attack, Bias, Ramp, Replay, apply_attacks
from aseptic.campaign._view import TamperedView

__all__ = ["REPORTING_TECHNIQUES", "Attack", "Bias", "Ramp", "Replay", "TamperedView", "apply_attacks"]
