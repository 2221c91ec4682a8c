"""llm-blender's PairRM-style pairwise ranker as a reranker backend.

llm-blender 0.0.2 predates transformers 5, which removed two things it uses:

- ``transformers.utils.hub.TRANSFORMERS_CACHE`` (read at import): :func:`import_llm_blender` sets it to the hub cache
  before importing.
- ``PreTrainedTokenizerBase.batch_encode_plus`` (used by its collators): we give the ranker's tokenizer an equivalent
  that calls the tokenizer directly.

Weights come only from a local folder (PairRM's ``config.json`` and ``model.safetensors`` or ``pytorch_model.bin``);
nothing is downloaded. PairRM's config names its backbone (``microsoft/deberta-v3-large``), which must also be local:
pass ``backbone_path`` when the config's ``model_name`` is not a local folder.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from .config import RerankConfig

logger = logging.getLogger(__name__)

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def import_llm_blender() -> ModuleType:
    """Import ``llm_blender`` under transformers 5 (sets the removed ``TRANSFORMERS_CACHE`` first)."""
    import transformers.utils.hub as transformers_hub

    if not hasattr(transformers_hub, "TRANSFORMERS_CACHE"):
        from huggingface_hub import constants

        transformers_hub.TRANSFORMERS_CACHE = constants.HF_HUB_CACHE
    try:
        import llm_blender
    except ImportError as error:
        raise RuntimeError(
            f"The pairrm reranker needs llm-blender (pip install llm-blender): importing it failed with: {error}"
        ) from error
    return llm_blender


def check_pairrm_folder(weights_path: str | Path | None, backbone_path: str | Path | None = None) -> tuple[Path, str]:
    """The ranker folder and its backbone's local folder, or a clear error saying what is missing."""
    if weights_path is None:
        raise FileNotFoundError(
            "The pairrm reranker needs local weights: pass --pairrm-weights PATH (a folder with PairRM's config.json "
            "and model.safetensors or pytorch_model.bin); nothing is downloaded."
        )
    folder = Path(weights_path).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(
            f"PairRM weights folder {folder} does not exist (pass a local copy of llm-blender/PairRM)."
        )
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"PairRM weights folder {folder} has no config.json (the ranker configuration).")
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        raise FileNotFoundError(f"PairRM weights folder {folder} holds neither of {WEIGHT_FILES}.")
    backbone = (
        str(backbone_path) if backbone_path else json.loads(config_path.read_text(encoding="utf-8")).get("model_name")
    )
    if not backbone or not Path(backbone).expanduser().is_dir():
        raise FileNotFoundError(
            f"{config_path} names the backbone {backbone!r}, which is not a local folder; pass --pairrm-backbone PATH "
            "(a local copy of that model, e.g. microsoft/deberta-v3-large)."
        )
    return folder, str(Path(backbone).expanduser())


class PairRMReranker:
    """Rerank passages with llm-blender's pairwise ranker: each pair of candidates is compared given the query, and
    candidates are ordered by their mean comparison logit (llm-blender's ``rank(..., return_scores=True)``).

    Args:
        weights_path: Local ranker folder (e.g. a copy of ``llm-blender/PairRM``).
        backbone_path: Local folder of the ranker's backbone when its config does not name one.
        device: ``"cpu"`` or ``"cuda"``; default CUDA when available.
        settings: Passage truncation (``max_passage_words``).
        source_max_length: Token budget for the query.
        candidate_max_length: Token budget for each passage.
    """

    def __init__(
        self,
        weights_path: str | Path | None,
        backbone_path: str | Path | None = None,
        device: str | None = None,
        settings: RerankConfig | None = None,
        source_max_length: int = 128,
        candidate_max_length: int = 256,
    ) -> None:
        import torch

        folder, backbone = check_pairrm_folder(weights_path, backbone_path)
        llm_blender = import_llm_blender()
        self.settings = settings or RerankConfig()
        self.stats: Counter = Counter()
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        # llm-blender prints progress and warnings to stdout; keep our output clean.
        with contextlib.redirect_stdout(io.StringIO()):
            self.blender = llm_blender.Blender()
            self.blender.loadranker(
                str(folder),
                device=self.device,
                model_name=backbone,
                source_maxlength=source_max_length,
                candidate_maxlength=candidate_max_length,
            )
        _add_batch_encode_plus(self.blender.ranker_tokenizer)

    def scores(self, queries: Sequence[str], candidates: Sequence[Sequence[str]]) -> list[list[float]]:
        """Per query, one score per candidate (higher is better)."""
        results = []
        for query, passages in zip(queries, candidates, strict=True):
            if len(passages) < 2:
                results.append([0.0] * len(passages))
                continue
            texts = [" ".join(passage.split()[: self.settings.max_passage_words]) for passage in passages]
            scores = self.blender.rank([query], [texts], return_scores=True, batch_size=1, disable_tqdm=True)
            results.append([float(score) for score in scores[0]])
            self.stats["pairs compared"] += len(passages) * (len(passages) - 1)
        return results

    def rerank(self, queries: Sequence[str], candidates: Sequence[Sequence[str]]) -> list[list[int]]:
        return [
            sorted(range(len(row)), key=lambda index, row=row: -row[index]) for row in self.scores(queries, candidates)
        ]


def _add_batch_encode_plus(tokenizer) -> None:
    """transformers 5 dropped ``batch_encode_plus``; llm-blender's collators still call it."""
    if not hasattr(type(tokenizer), "batch_encode_plus"):

        def batch_encode_plus(texts, **kwargs):
            return tokenizer(list(texts), **kwargs)

        tokenizer.batch_encode_plus = batch_encode_plus
