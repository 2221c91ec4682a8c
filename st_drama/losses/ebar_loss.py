"""EBAR: Embedding-Based Auto-Regression (LLaRA)."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from .llara_base import LLaRALossBase
from .prompt_framing import reframe


class EBARLoss(LLaRALossBase):
    """LLaRA's EBAR pretext task: the embedding of a text must predict the tokens of the passage that follows it.

    The text is framed with the EBAR prompt (``"<text>", predict the following passage within eight words:``
    followed by the k special tokens); its embedding ``e`` (mean of the last hidden states at the special tokens)
    goes through the LM head ``W``. With ``T(y)`` the distinct tokens of the next passage ``y`` (special tokens,
    and optionally stop words and punctuation, removed):

    .. math::

        \\mathcal{L}_{EBAR}(x, y) = -\\frac{1}{|T(y)|} \\sum_{t \\in T(y)} \\log \\operatorname{softmax}(W e)_t

    averaged over the batch. Rows whose next passage is empty (documents too short to split) are left out.

    Args:
        model: A SentenceTransformer built with ``st_drama.build_model(..., style="llara")``.
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

    Example:
        ::

            from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
            from st_drama import build_model
            from st_drama.llara import build_pretraining_dataset
            from st_drama.losses import EBARLoss

            model = build_model("smollm2-135m", style="llara", max_seq_length=96)
            train_dataset = build_pretraining_dataset("cranfield", model.tokenizer, chunk_tokens=32, max_documents=8)
            args = SentenceTransformerTrainingArguments("ebar-run", max_steps=1, per_device_train_batch_size=2)
            trainer = SentenceTransformerTrainer(model, args, train_dataset=train_dataset, loss=EBARLoss(model))
            trainer.train()

    """

    def forward(self, sentence_features: Iterable[dict[str, torch.Tensor]], labels: torch.Tensor | None = None):
        text_features, next_features = list(sentence_features)[:2]
        framed = reframe(self.backbone, text_features, self.ebar_task)
        log_probs = self.log_probs(self.encode_tokens(framed), framed["prompt_token_mask"])
        return self.prediction_loss(log_probs, self.text_targets(next_features))
