"""EBAE: Embedding-Based Auto-Encoding (LLaRA)."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from .llara_base import LLaRALossBase
from .prompt_framing import reframe


class EBAELoss(LLaRALossBase):
    """LLaRA's EBAE pretext task: the embedding of a text must predict the text's own tokens.

    The text is framed with the EBAE prompt (``"<text>", summarize the above passage within eight words:`` followed
    by the k special tokens). Its embedding ``e`` is the mean of the last hidden states at the special tokens (the
    positions LLaRA-style pooling uses), projected through the LM head ``W``. With ``T(x)`` the distinct tokens of
    the text (special tokens, and optionally stop words and punctuation, removed):

    .. math::

        \\mathcal{L}_{EBAE}(x) = -\\frac{1}{|T(x)|} \\sum_{t \\in T(x)} \\log \\operatorname{softmax}(W e)_t

    averaged over the batch (texts with no target token are left out).

    Args:
        model: A SentenceTransformer built with ``st_drama.build_model(..., style="llara")``.
        lm_head: ``"tied"`` (project with the input embeddings), ``"checkpoint"`` (the checkpoint's own
            ``lm_head.weight``, owned by this loss) or ``"auto"`` (tied when the model ties its embeddings).
        train_lm_head: Train the projection (True) or keep it frozen (False).
        prediction: ``"mean_embedding"`` (project the pooled embedding) or ``"max_logits"`` (project each prompt
            token and max-pool the logits, as LLaRA's reference code does).
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
        +--------+--------+
        | Texts  | Labels |
        +========+========+
        | (text) | none   |
        +--------+--------+

    Example:
        ::

            from datasets import Dataset
            from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
            from st_drama import build_model
            from st_drama.losses import EBAELoss

            model = build_model("smollm2-135m", style="llara", max_seq_length=64)
            train_dataset = Dataset.from_dict({"text": ["A wing in a slipstream gains lift.", "Heat flows to cold."]})
            args = SentenceTransformerTrainingArguments("ebae-run", max_steps=1, per_device_train_batch_size=2)
            trainer = SentenceTransformerTrainer(model, args, train_dataset=train_dataset, loss=EBAELoss(model))
            trainer.train()

    """

    def forward(self, sentence_features: Iterable[dict[str, torch.Tensor]], labels: torch.Tensor | None = None):
        text_features = next(iter(sentence_features))
        framed = reframe(self.backbone, text_features, self.ebae_task)
        log_probs = self.log_probs(self.encode_tokens(framed), framed["prompt_token_mask"])
        return self.prediction_loss(log_probs, self.text_targets(text_features))
