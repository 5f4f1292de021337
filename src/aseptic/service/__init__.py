"""The composition root: builds the running system (chain of custody, detection) from settings."""

from aseptic.service._assemble import SampleAssembler
from aseptic.service._custody import CustodyPipeline
from aseptic.service._demo import DemoPlan, run_demo
from aseptic.service._report import BatchSeries, render_report_html
from aseptic.service._training import batch_samples, train_detector

__all__ = [
    "BatchSeries",
    "CustodyPipeline",
    "DemoPlan",
    "SampleAssembler",
    "batch_samples",
    "render_report_html",
    "run_demo",
    "train_detector",
]
