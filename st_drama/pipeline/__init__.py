"""The main job (``st-drama pipeline``): presets, stage adapters and the runner that skips finished stages.

Importing this package loads only the stage configs; each stage's code loads when the stage runs.
"""

from __future__ import annotations

from .presets import OPTIONAL_STAGES, PRESETS, STAGES, PipelineConfig
from .runner import run_pipeline

__all__ = ["OPTIONAL_STAGES", "PRESETS", "STAGES", "PipelineConfig", "run_pipeline"]
