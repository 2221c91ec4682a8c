"""Shared pieces of the LLaRA losses: the LM head, bag-of-words targets and the prediction loss.

LLaRA's pretext tasks ask an embedding to predict a set of tokens: the embedding goes through the LM head, a
log-softmax over the vocabulary gives log-probabilities, and the loss is the negative mean log-probability of the
unique target tokens.
"""

from __future__ import annotations

import logging
import os
import string

import torch
from safetensors import safe_open
from torch import nn

from st_drama.models import LlamaBackbone

logger = logging.getLogger(__name__)

LM_HEAD_SOURCES = ("auto", "tied", "checkpoint")
PREDICTIONS = ("mean_embedding", "max_logits")
# Common English function words; removing them keeps the prediction on content (an option, off by default).
ENGLISH_STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her here
    hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of
    off on once only or other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up very was we were what
    when where which while who whom why will with would you your yours yourself yourselves""".split()
)


class LMHead(nn.Module):
    """The vocabulary projection the LLaRA losses predict through.

    Args:
        backbone: The model's :class:`~st_drama.models.LlamaBackbone`.
        source: ``"tied"`` projects with the input embedding matrix; ``"checkpoint"`` loads the checkpoint's own
            ``lm_head.weight`` into a parameter this head owns; ``"auto"`` picks ``"tied"`` when the model ties its
            embeddings, else ``"checkpoint"``.
        trainable: Whether the projection is trained. A frozen tied head still lets the embeddings train through
            the input side.
    """

    def __init__(self, backbone: LlamaBackbone, source: str = "auto", trainable: bool = True) -> None:
        super().__init__()
        if source not in LM_HEAD_SOURCES:
            raise ValueError(f"lm_head must be one of {LM_HEAD_SOURCES}, got {source!r}.")
        config = backbone.auto_model.config
        if source == "auto":
            source = "tied" if getattr(config, "tie_word_embeddings", True) else "checkpoint"
        self.source = source
        self.trainable = trainable
        self._embeddings = [backbone.auto_model.get_input_embeddings()]  # a list: not registered twice
        self.weight = None
        if source == "checkpoint":
            weight = _load_checkpoint_head(config.name_or_path, self._embeddings[0].weight)
            self.weight = nn.Parameter(weight, requires_grad=trainable)

    def projection(self) -> torch.Tensor:
        if self.weight is not None:
            return self.weight
        tied = self._embeddings[0].weight
        return tied if self.trainable else tied.detach()

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden @ self.projection().t().to(hidden.dtype)


def _load_checkpoint_head(model_path: str, embeddings: torch.Tensor) -> torch.Tensor:
    """The checkpoint's ``lm_head.weight``, with rows added for tokens added since (at the mean row)."""
    weight = None
    for file_name in sorted(os.listdir(model_path)) if os.path.isdir(model_path) else []:
        if not file_name.endswith(".safetensors"):
            continue
        with safe_open(os.path.join(model_path, file_name), framework="pt") as handle:
            if "lm_head.weight" in set(handle.keys()):
                weight = handle.get_tensor("lm_head.weight")
                break
    if weight is None:
        raise ValueError(
            f"{model_path} holds no 'lm_head.weight' (an untied head is not saved with a SentenceTransformer "
            "folder). Use lm_head='tied', or adapt from the original causal-LM checkpoint."
        )
    weight = weight.to(embeddings.dtype)
    missing_rows = embeddings.shape[0] - weight.shape[0]
    if missing_rows > 0:
        weight = torch.cat([weight, weight.mean(dim=0, keepdim=True).expand(missing_rows, -1)])
    return weight.clone()


class BagOfWordsTargets:
    """Turns token ids into multi-hot target rows over the vocabulary, without excluded ids.

    Excluded: the tokenizer's special tokens and the backbone's prompt tokens, and optionally stop words and
    punctuation-only tokens.
    """

    def __init__(self, backbone: LlamaBackbone, remove_stop_words: bool = False, remove_punctuation: bool = False):
        tokenizer = backbone.tokenizer
        excluded = set(tokenizer.all_special_ids) | set(backbone.prompt_token_ids.tolist())
        if remove_stop_words or remove_punctuation:
            excluded |= _function_token_ids(tokenizer, remove_stop_words, remove_punctuation)
        self.vocab_size = backbone.auto_model.get_input_embeddings().weight.shape[0]
        keep = torch.ones(self.vocab_size, dtype=torch.bool)
        keep[[token_id for token_id in excluded if token_id < self.vocab_size]] = False
        self.keep = keep

    def multi_hot(self, input_ids: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """``[batch, vocab]`` float rows with 1 at each distinct kept token of the masked positions."""
        targets = torch.zeros(input_ids.shape[0], self.vocab_size, device=input_ids.device)
        rows = torch.arange(input_ids.shape[0], device=input_ids.device).unsqueeze(1).expand_as(input_ids)
        targets[rows[text_mask], input_ids[text_mask]] = 1.0
        return targets * self.keep.to(input_ids.device)


def _function_token_ids(tokenizer, stop_words: bool, punctuation: bool) -> set[int]:
    punctuation_chars = set(string.punctuation) | set(
        "\u201c\u201d\u2018\u2019\u00ab\u00bb\u2026\u2013\u2014"
    )  # typographic quotes, dashes
    excluded = set()
    for token_id in range(len(tokenizer)):
        word = tokenizer.decode([token_id]).strip().lower()
        if (punctuation and word and all(char in punctuation_chars for char in word)) or (
            stop_words and word in ENGLISH_STOP_WORDS
        ):
            excluded.add(token_id)
    return excluded


def bag_of_words_loss(log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over rows that have targets of ``-mean_{t in targets} log p(t)``; rows without targets are left out."""
    counts = targets.sum(dim=-1)
    has_targets = counts > 0
    if not bool(has_targets.any()):
        return log_probs.sum() * 0.0  # keeps the graph when a batch has nothing to predict
    per_row = -(log_probs * targets).sum(dim=-1)[has_targets] / counts[has_targets]
    return per_row.mean()


def predict_log_probs(
    token_states: torch.Tensor, prompt_mask: torch.Tensor, head: LMHead, prediction: str
) -> torch.Tensor:
    """Log-probabilities over the vocabulary predicted from the states at the prompt tokens.

    ``"mean_embedding"`` projects the mean of those states (the embedding LLaRA retrieves with);
    ``"max_logits"`` projects every prompt token and max-pools the logits (LLaRA's reference code).
    """
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}.")
    # Every row holds the same number of prompt tokens (the task's k), so they stack into [batch, k, hidden].
    prompt_states = token_states[prompt_mask].view(token_states.shape[0], -1, token_states.shape[-1])
    if prediction == "mean_embedding":
        logits = head(prompt_states.float().mean(dim=1))
    else:
        logits = head(prompt_states.float()).amax(dim=1)
    return torch.log_softmax(logits.float(), dim=-1)
