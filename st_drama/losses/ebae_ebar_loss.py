"""EBAE and EBAR together, from one forward pass (LLaRA)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from .llara_base import LLaRALossBase
from .prompt_framing import join_framings, reframe


class EBAEEBARLoss(LLaRALossBase):
    """LLaRA's two pretext tasks at once: ``(L_EBAE + L_EBAR) / 2`` (see :class:`EBAELoss` and :class:`EBARLoss`).

    In one forward pass the text is followed by the EBAE prompt block and then the EBAR prompt block. The EBAR block
    reuses the position ids of the EBAE block and neither block attends to the other, so with causal attention both
    embeddings equal those of two separate passes while the text is encoded once. With bidirectional attention the
    text would see both prompts, so the loss runs two passes instead (``single_pass=None`` picks automatically).

    Args:
        model: A SentenceTransformer built with ``st_drama.build_model(..., style="llara")``.
        single_pass: True for the joint pass (needs causal attention), False for two passes, None to choose by the
            backbone's attention.
        lm_head: ``"tied"``, ``"checkpoint"`` or ``"auto"`` (see :class:`EBAELoss`).
        train_lm_head: Train the projection (True) or keep it frozen (False).
        prediction: ``"mean_embedding"`` or ``"max_logits"`` (see :class:`EBAELoss`).
        remove_stop_words: Drop English stop words from the targets.
        remove_punctuation: Drop punctuation-only tokens from the targets.
        ebae_task: The backbone task whose framing is the EBAE prompt.
        ebar_task: The backbone task whose framing is the EBAR prompt.

    References:
        - Li et al., Making Large Language Models A Better Foundation For Dense Retrieval (LLaRA),
          https://arxiv.org/abs/2312.15503

    Requirements:
        1. A LLaRA-style model (its backbone frames texts with special prompt tokens).

    Inputs:
        +----------------------+--------+
        | Texts                | Labels |
        +======================+========+
        | (text, next passage) | none   |
        +----------------------+--------+

        An empty next passage (a document too short to split) gives that row the EBAE task only.

    Example:
        ::

            from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
            from st_drama import build_model
            from st_drama.llara import build_pretraining_dataset
            from st_drama.losses import EBAEEBARLoss

            model = build_model("smollm2-135m", style="llara", max_seq_length=96)
            train_dataset = build_pretraining_dataset("cranfield", model.tokenizer, chunk_tokens=32, max_documents=8)
            args = SentenceTransformerTrainingArguments("llara-run", max_steps=1, per_device_train_batch_size=2)
            trainer = SentenceTransformerTrainer(model, args, train_dataset=train_dataset, loss=EBAEEBARLoss(model))
            trainer.train()

    """

    def __init__(self, model, single_pass: bool | None = None, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        causal = self.backbone.attention == "causal"
        if single_pass and not causal:
            raise ValueError(
                "single_pass=True needs causal attention; with bidirectional attention the text would see both prompts"
            )
        self.single_pass = causal if single_pass is None else single_pass

    def forward(self, sentence_features: Iterable[dict[str, torch.Tensor]], labels: torch.Tensor | None = None):
        text_features, next_features = list(sentence_features)[:2]
        ebae_log_probs, ebar_log_probs = self.predict_both(text_features)
        ebae = self.prediction_loss(ebae_log_probs, self.text_targets(text_features))
        ebar = self.prediction_loss(ebar_log_probs, self.text_targets(next_features))
        return (ebae + ebar) / 2

    def predict_both(self, text_features: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probabilities predicted from the EBAE and the EBAR embedding of each text."""
        ebae_states, ebae_mask, ebar_states, ebar_mask = self.prompt_states(text_features)
        return self.log_probs(ebae_states, ebae_mask), self.log_probs(ebar_states, ebar_mask)

    def prompt_states(self, text_features: dict[str, torch.Tensor]):
        """Token states and prompt-token masks of the EBAE and the EBAR framing (one pass or two)."""
        if self.single_pass:
            joint, ebae_mask, ebar_mask = join_framings(self.backbone, text_features, self.ebae_task, self.ebar_task)
            states = self.encode_tokens(joint)
            return states, ebae_mask, states, ebar_mask
        ebae = reframe(self.backbone, text_features, self.ebae_task)
        ebar = reframe(self.backbone, text_features, self.ebar_task)
        ebae_states, ebar_states = self.encode_tokens(ebae), self.encode_tokens(ebar)
        return ebae_states, ebae["prompt_token_mask"], ebar_states, ebar["prompt_token_mask"]

    def get_config_dict(self) -> dict[str, Any]:
        return {"single_pass": self.single_pass, **super().get_config_dict()}
