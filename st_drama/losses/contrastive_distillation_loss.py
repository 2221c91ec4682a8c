"""InfoNCE and a teacher's scores together, from one forward pass."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from sentence_transformers.base.losses.merged_forward import embed_columns
from sentence_transformers.sentence_transformer.losses import DistillKLDivLoss, MultipleNegativesRankingLoss
from sentence_transformers.util import pairwise_cos_sim
from torch import nn


class ContrastiveDistillationLoss(nn.Module):
    """InfoNCE over in-batch and hard negatives plus a KL-divergence term that pulls the student's distribution
    over each row's own candidates (positive, hard negatives) towards a teacher's, both computed from the same
    embeddings: ``L = L_InfoNCE + distill_weight * KL(teacher || student)``.

    The student's distribution uses the InfoNCE loss's own scale (cosine similarity divided by its temperature), so
    both terms judge the same scores. The teacher's scores are read as logits divided by ``teacher_temperature``:
    for log-likelihoods such as the LLM's log p(query | passage), a temperature of 1 makes the target the passages'
    posterior under a uniform prior. sentence-transformers' ``DistillKLDivLoss`` multiplies its loss by the student
    temperature squared; this loss undoes that factor, so ``distill_weight`` weighs the plain KL divergence.

    Wrap it in ``MatryoshkaLoss`` like any InfoNCE loss (both terms are computed at every dimension).

    Args:
        model: The SentenceTransformer being trained.
        contrastive_loss: The InfoNCE term (``MultipleNegativesRankingLoss``); default: one with scale 20.
        distill_weight: Weight of the KL-divergence term (0 trains InfoNCE alone).
        teacher_temperature: Divides the teacher's scores before their softmax.

    References:
        - Lin et al., Distilling Dense Representations for Ranking using Tightly-Coupled Teachers,
          https://arxiv.org/abs/2010.11386
        - Sachan et al., Improving Passage Retrieval with Zero-Shot Question Generation (UPR, the likelihood
          teacher), https://arxiv.org/abs/2204.07496

    Requirements:
        1. (query, positive, negative_1, ..., negative_n) rows with n >= 1
        2. A label per row: the teacher's scores for (query, positive), (query, negative_1), ...

    Inputs:
        +------------------------------------------------+--------------------------------------------------------+
        | Texts                                          | Labels                                                 |
        +================================================+========================================================+
        | (query, positive, negative_1, ..., negative_n) | [teacher(query, positive), teacher(query, negative_i)] |
        +------------------------------------------------+--------------------------------------------------------+

    Example:
        ::

            from datasets import Dataset
            from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
            from st_drama import build_model
            from st_drama.losses import ContrastiveDistillationLoss

            model = build_model("smollm2-135m", style="drama", max_seq_length=64)
            train_dataset = Dataset.from_dict({
                "query": ["flutter of wings", "heat transfer in a boundary layer"],
                "positive": ["Wing flutter at high speed ...", "The boundary layer's heat transfer ..."],
                "negative": ["A history of jet engines ...", "Noise of propellers ..."],
                "scores": [[-12.3, -30.1], [-9.8, -25.4]],  # e.g. the LLM's log p(query | passage)
            })
            # Queries framed as queries (DRAMA's "Query: " prefix), the other texts as documents.
            framing = {"query": "query", "positive": "document", "negative": "document"}
            args = SentenceTransformerTrainingArguments(
                "distill-run", max_steps=1, per_device_train_batch_size=2, router_mapping=framing
            )
            trainer = SentenceTransformerTrainer(
                model, args, train_dataset=train_dataset, loss=ContrastiveDistillationLoss(model, distill_weight=1.0)
            )
            trainer.train()
    """

    def __init__(
        self,
        model: Any,
        contrastive_loss: MultipleNegativesRankingLoss | None = None,
        distill_weight: float = 1.0,
        teacher_temperature: float = 1.0,
    ) -> None:
        super().__init__()
        if distill_weight < 0:
            raise ValueError(f"distill_weight must be >= 0, got {distill_weight}.")
        self.model = model
        self.contrastive_loss = contrastive_loss or MultipleNegativesRankingLoss(model)
        if not isinstance(self.contrastive_loss, MultipleNegativesRankingLoss):
            # The cached variant embeds in its own mini-batches, so the two terms could not share one pass.
            raise TypeError(
                f"contrastive_loss must be a MultipleNegativesRankingLoss, got {type(self.contrastive_loss).__name__}."
            )
        self.distill_weight = distill_weight
        self.distill_loss = DistillKLDivLoss(
            model,
            similarity_fct=pairwise_cos_sim,
            student_temperature=self.contrastive_loss.temperature,
            teacher_temperature=teacher_temperature,
        )

    def forward(self, sentence_features: Iterable[dict[str, torch.Tensor]], labels: torch.Tensor) -> torch.Tensor:
        embeddings = embed_columns(self.model, sentence_features)
        contrastive = self.contrastive_loss.compute_loss_from_embeddings(embeddings, labels)
        if self.distill_weight == 0:
            return contrastive
        # DistillKLDivLoss scales its KL by the student temperature squared; divided out to weigh the KL itself.
        kl = self.distill_loss.compute_loss_from_embeddings(embeddings, labels.float())
        return contrastive + self.distill_weight * kl / self.distill_loss.student_temperature**2

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "contrastive_loss": self.contrastive_loss.get_config_dict(),
            "distill_weight": self.distill_weight,
            "teacher_temperature": self.distill_loss.teacher_temperature,
        }

    @property
    def citation(self) -> str:
        return """
@misc{lin2020distillingdenserepresentationsranking,
      title={Distilling Dense Representations for Ranking using Tightly-Coupled Teachers},
      author={Sheng-Chieh Lin and Jheng-Hong Yang and Jimmy Lin},
      year={2020},
      eprint={2010.11386},
      archivePrefix={arXiv},
      primaryClass={cs.IR},
      url={https://arxiv.org/abs/2010.11386},
}
"""
