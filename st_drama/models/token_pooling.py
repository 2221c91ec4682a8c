"""Pooling of token states into one text embedding: mean, last token, or mean over the LLaRA prompt tokens.

Portable: imports only torch, sentence-transformers and its sibling portable files.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from .portable_code import write_portable_code

try:
    from sentence_transformers.sentence_transformer.modules import Module
except ImportError:  # an older sentence-transformers loading a shipped model folder
    from sentence_transformers.models import Module

POOLING_MODES = ("mean", "last_token", "prompt_tokens")


class TokenPooling(Module):
    """Pool ``token_embeddings`` into ``sentence_embedding``; correct under left and right padding.

    Modes:
        - ``"mean"``: average over all real tokens, prompt and EOS included (DRAMA, bidirectional).
        - ``"last_token"``: the last real token's state (causal decoders without prompt tokens).
        - ``"prompt_tokens"``: average over the special prompt tokens LLaRA appends (``prompt_token_mask`` from
          :class:`~st_drama.models.LlamaBackbone`).

    Averages accumulate in float32 whatever the model's dtype; the result has the token states' dtype.

    When the backbone cut long texts into windows (``LlamaBackbone(max_chunks=...)``, features ``chunk_owner`` and
    ``chunk_length``), each window is pooled on its own and a text's embedding is the average of its windows' unit
    vectors, weighted by their token counts: one row per text again.

    Args:
        embedding_dimension: Size of the token states (the backbone's hidden size).
        mode: One of ``"mean"``, ``"last_token"``, ``"prompt_tokens"``.
    """

    __module__ = "st_drama_modules"  # the name saved in modules.json: importable with or without st_drama

    config_keys = ["embedding_dimension", "mode"]

    def __init__(self, embedding_dimension: int, mode: str = "mean") -> None:
        super().__init__()
        if mode not in POOLING_MODES:
            raise ValueError(f"mode must be one of {POOLING_MODES}, got {mode!r}.")
        self.embedding_dimension = int(embedding_dimension)
        self.mode = mode

    def forward(self, features: dict[str, torch.Tensor], **kwargs: Any) -> dict[str, torch.Tensor]:
        token_states = features["token_embeddings"]
        if self.mode == "mean":
            pooled = masked_mean(token_states, features["attention_mask"])
        elif self.mode == "last_token":
            pooled = last_token(token_states, features["attention_mask"])
        else:
            pooled = masked_mean(token_states, self._prompt_token_mask(features))
        if "chunk_owner" in features:
            pooled = merge_windows(pooled, features["chunk_owner"], features["chunk_length"])
        features["sentence_embedding"] = pooled.to(token_states.dtype)
        return features

    @staticmethod
    def _prompt_token_mask(features: dict[str, torch.Tensor]) -> torch.Tensor:
        prompt_mask = features.get("prompt_token_mask")
        if prompt_mask is None:
            raise ValueError(
                "prompt_tokens pooling needs 'prompt_token_mask' from a backbone whose task formats end in special "
                "prompt tokens (prompt_style='llara')."
            )
        if not bool(prompt_mask.any(dim=-1).all()):
            raise ValueError("prompt_tokens pooling: some texts carry no prompt token (was the prompt truncated?).")
        return prompt_mask

    def get_embedding_dimension(self) -> int:
        return self.embedding_dimension

    get_sentence_embedding_dimension = get_embedding_dimension  # sentence-transformers 5.x name

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        self.save_config(output_path)
        # Module code must sit in the model's root folder, one level above this module's own folder.
        write_portable_code(_model_root(output_path))


def masked_mean(token_states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.to(torch.float32).unsqueeze(-1)
    summed = (token_states.to(torch.float32) * weights).sum(dim=1)
    return summed / weights.sum(dim=1).clamp(min=1.0)


def merge_windows(pooled: torch.Tensor, owner: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """One row per text: the token-count-weighted average of its windows' unit-length embeddings; a text that
    fitted in one window keeps its pooled vector as it is.

    Unit vectors first, so that a window's say depends on its length and not on the norm of its states."""
    pooled = pooled.to(torch.float32)
    owner = owner.to(pooled.device)
    weights = length.to(device=pooled.device, dtype=torch.float32).unsqueeze(-1)
    text_count = int(owner.max()) + 1
    unit = torch.nn.functional.normalize(pooled, dim=-1)
    summed = torch.zeros(text_count, pooled.shape[-1], device=pooled.device).index_add_(0, owner, unit * weights)
    total = torch.zeros(text_count, 1, device=pooled.device).index_add_(0, owner, weights)
    merged = summed / total.clamp(min=1.0)
    windows_per_text = torch.bincount(owner, minlength=text_count)
    single_rows = (windows_per_text[owner] == 1).nonzero().flatten()
    merged[owner[single_rows]] = pooled[single_rows]
    return merged


def last_token(token_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    seq_len = attention_mask.shape[-1]
    # Index of the last 1 in each row, whichever side the padding is on.
    last_index = seq_len - 1 - attention_mask.flip(dims=[-1]).long().argmax(dim=-1)
    rows = torch.arange(token_states.shape[0], device=token_states.device)
    return token_states[rows, last_index].to(torch.float32)


def _model_root(output_path: str) -> str:
    return os.path.dirname(os.path.normpath(output_path))
