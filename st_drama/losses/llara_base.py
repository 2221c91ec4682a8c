"""What the three LLaRA losses share: checking the model, the LM head, targets and the prediction step."""

from __future__ import annotations

from typing import Any

import torch
from sentence_transformers import SentenceTransformer
from torch import nn

from st_drama.models import LlamaBackbone

from .bag_of_words import BagOfWordsTargets, LMHead, bag_of_words_loss, predict_log_probs
from .prompt_framing import detect_task, rows_of

LLARA_CITATION = """
@article{li2023llara,
    title = {Making Large Language Models A Better Foundation For Dense Retrieval},
    author = {Li, Chaofan and Liu, Zheng and Xiao, Shitao and Shao, Yingxia},
    journal = {arXiv preprint arXiv:2312.15503},
    year = {2023}
}
"""


class LLaRALossBase(nn.Module):
    """Base of :class:`EBAELoss`, :class:`EBARLoss` and :class:`EBAEEBARLoss` (not a loss on its own)."""

    def __init__(
        self,
        model: SentenceTransformer,
        lm_head: str = "auto",
        train_lm_head: bool = True,
        prediction: str = "mean_embedding",
        remove_stop_words: bool = False,
        remove_punctuation: bool = False,
        ebae_task: str = "document",
        ebar_task: str = "query",
    ) -> None:
        super().__init__()
        self.model = model
        self.backbone = _llara_backbone(model, (ebae_task, ebar_task))
        self.head = LMHead(self.backbone, source=lm_head, trainable=train_lm_head)
        self.targets = BagOfWordsTargets(self.backbone, remove_stop_words, remove_punctuation)
        self.prediction = prediction
        self.remove_stop_words = remove_stop_words
        self.remove_punctuation = remove_punctuation
        self.ebae_task = ebae_task
        self.ebar_task = ebar_task

    def encode_tokens(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Last hidden states of features built on the CPU by the framing helpers."""
        device = self.backbone.auto_model.device
        on_device = {key: value.to(device) for key, value in features.items()}
        return self.backbone(on_device)["token_embeddings"]

    def log_probs(self, token_states: torch.Tensor, prompt_mask: torch.Tensor) -> torch.Tensor:
        return predict_log_probs(token_states, prompt_mask.to(token_states.device), self.head, self.prediction)

    def text_targets(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Multi-hot targets of the texts in ``features`` (a tokenized column, any LLaRA framing)."""
        rows = rows_of(features)
        task = detect_task(self.backbone, rows[0]) if rows and rows[0] else self.ebae_task
        text_mask = self.backbone.text_token_mask(features, task)
        return self.targets.multi_hot(features["input_ids"], text_mask.to(features["input_ids"].device))

    def prediction_loss(self, log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return bag_of_words_loss(log_probs, targets.to(log_probs.device))

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "lm_head": self.head.source,
            "train_lm_head": self.head.trainable,
            "prediction": self.prediction,
            "remove_stop_words": self.remove_stop_words,
            "remove_punctuation": self.remove_punctuation,
            "ebae_task": self.ebae_task,
            "ebar_task": self.ebar_task,
        }

    @property
    def citation(self) -> str:
        return LLARA_CITATION


def _llara_backbone(model: SentenceTransformer, tasks: tuple[str, ...]) -> LlamaBackbone:
    backbone = model[0]
    if not isinstance(backbone, LlamaBackbone):
        raise ValueError(
            "LLaRA losses need a LLaRA-style model (st_drama.build_model(..., style='llara')), whose first module "
            f"is st-drama's LlamaBackbone; this model's is {type(backbone).__name__}."
        )
    for task in tasks:
        if task not in backbone.task_formats or not backbone.task_formats[task]["special_tokens"]:
            raise ValueError(
                f"The backbone's {task!r} framing has no special prompt tokens; build the model with "
                "st_drama.build_model(..., style='llara')."
            )
    return backbone
