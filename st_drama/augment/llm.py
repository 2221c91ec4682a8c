"""The causal LM behind query generation and LLM reranking: a chat-template model with batched, left-padded
``generate``, next-token probabilities and the likelihood of a given reply, under bf16 autocast where the device
supports it.

:func:`load_chat_lm` picks the backend: the transformers one here (default, tested), or vLLM when it is installed and
asked for (see :mod:`st_drama.augment.vllm_backend`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from .chat import ChatLM, Conversation, Reply
from .config import BACKENDS, PRECISIONS, SamplingConfig

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


class TransformersChatLM:
    """A local ``AutoModelForCausalLM`` with its tokenizer's chat template.

    Args:
        model_path: A transformers model folder (or ``"smollm2-135m"``, resolved by the caller).
        precision: ``"auto"`` (bf16 autocast on GPUs with bf16 and CPUs with native bf16
            instructions, else fp32), ``"bf16"`` or ``"fp32"``.
        batch_size: Conversations per ``generate`` call.
        max_prompt_tokens: Prompts longer than this are cut from the left (the instruction is at the end).
        device: Torch device; default CUDA when available, else CPU.
    """

    def __init__(
        self,
        model_path: str,
        precision: str = "auto",
        batch_size: int = 8,
        max_prompt_tokens: int = 2048,
        device: str | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.model_path = model_path
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.batch_size = batch_size
        self.max_prompt_tokens = max_prompt_tokens
        # Left padding so every row's last token is its own (generation appends there); left truncation because
        # the instruction sits at the end of the prompt.
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, padding_side="left", truncation_side="left")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if not getattr(self.tokenizer, "chat_template", None):
            raise ValueError(f"The tokenizer of {model_path} has no chat template; use an instruction-tuned model.")
        self.model = AutoModelForCausalLM.from_pretrained(model_path).to(self.device).eval()
        self.autocast_dtype = _autocast_dtype(precision, self.device)

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on this device when enabled, else a no-op."""
        import torch

        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def render(self, conversation: Conversation) -> str:
        """The conversation as prompt text, ending with the assistant turn's opening."""
        return self.tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)

    def encode(self, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Left-padded, left-truncated batch on the model's device."""
        batch = self.tokenizer(
            list(prompts),
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=self.max_prompt_tokens,
            add_special_tokens=False,
        )
        return {name: tensor.to(self.device) for name, tensor in batch.items()}

    def generate(
        self,
        conversations: Sequence[Conversation],
        sampling: SamplingConfig,
        seed: int,
        stop_when: Callable[[str], bool] | None = None,
    ) -> list[Reply]:
        """Replies to the conversations, ``batch_size`` at a time; the torch RNG is seeded once per call, so the
        same conversations in the same order give the same replies."""
        import torch

        torch.manual_seed(seed)
        replies: list[Reply] = []
        for batch in _batches(conversations, self.batch_size):
            prompts = [self.render(conversation) for conversation in batch]
            replies.extend(self._generate_batch(prompts, sampling, stop_when))
        return replies

    def _generate_batch(
        self, prompts: list[str], sampling: SamplingConfig, stop_when: Callable[[str], bool] | None
    ) -> list[Reply]:
        import torch

        inputs = self.encode(prompts)
        prompt_length = inputs["input_ids"].shape[1]
        options: dict = {"max_new_tokens": sampling.max_new_tokens, "pad_token_id": self.tokenizer.pad_token_id}
        if sampling.greedy:
            options["do_sample"] = False
        else:
            options.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        if stop_when is not None:
            options["stopping_criteria"] = [_ReplyStop(self.tokenizer, prompt_length, stop_when)]
        with torch.inference_mode(), self.autocast():
            output = self.model.generate(**inputs, **options)
        generated = output[:, prompt_length:]
        texts = self.tokenizer.batch_decode(generated, skip_special_tokens=True)
        ended = torch.isin(generated, torch.tensor(self._eos_token_ids(), device=generated.device)).any(dim=1)
        return [
            Reply(text=text, finished=bool(has_eos) or (stop_when is not None and stop_when(text)))
            for text, has_eos in zip(texts, ended.tolist(), strict=True)
        ]

    def _eos_token_ids(self) -> list[int]:
        configured = self.model.generation_config.eos_token_id
        ids = configured if isinstance(configured, list) else [configured]
        ids = [*ids, self.tokenizer.eos_token_id]
        return sorted({token_id for token_id in ids if token_id is not None})

    def next_token_probabilities(self, conversations: Sequence[Conversation]) -> torch.Tensor:
        """Probability distribution of the assistant's first token for each conversation, shape (n, vocab)."""
        import torch

        prompts = [self.render(conversation) for conversation in conversations]
        order = _longest_first([len(prompt) for prompt in prompts])
        rows = []
        for batch in _batches(order, self.batch_size):
            inputs = self.encode([prompts[position] for position in batch])
            with torch.inference_mode(), self.autocast():
                logits = self.model(**inputs, logits_to_keep=1).logits[:, -1, :]
            rows.append(torch.softmax(logits.float(), dim=-1).cpu())
        probabilities = torch.empty_like(torch.cat(rows))
        probabilities[torch.tensor(order)] = torch.cat(rows)
        return probabilities

    def reply_log_likelihoods(self, conversations: Sequence[Conversation], replies: Sequence[str]) -> list[float]:
        """log p(reply | conversation) for each pair: the summed log-probabilities of the reply's tokens as the
        assistant's answer (one forward pass each, no generation)."""
        import torch

        if len(conversations) != len(replies):
            raise ValueError(f"{len(conversations)} conversations but {len(replies)} replies.")
        sequences = [
            self._prompt_and_reply_ids(conversation, reply)
            for conversation, reply in zip(conversations, replies, strict=True)
        ]
        order = _longest_first([len(ids) for ids, _ in sequences])
        log_likelihoods = [0.0] * len(sequences)
        for batch in _batches(order, self.batch_size):
            inputs, reply_mask = self._left_padded([sequences[position] for position in batch])
            # The reply tokens end every row (left padding), so the logits that predict them are the last ones.
            kept = int(reply_mask.sum(dim=1).max()) + 1
            with torch.inference_mode(), self.autocast():
                logits = self.model(**inputs, logits_to_keep=kept).logits[:, :-1, :].float()
            targets = inputs["input_ids"][:, -kept + 1 :]
            token_log_probs = torch.log_softmax(logits, dim=-1).gather(2, targets.unsqueeze(-1)).squeeze(-1)
            sums = (token_log_probs * reply_mask[:, -kept + 1 :]).sum(dim=1).tolist()
            for position, total in zip(batch, sums, strict=True):
                log_likelihoods[position] = total
        return log_likelihoods

    def _prompt_and_reply_ids(self, conversation: Conversation, reply: str) -> tuple[list[int], int]:
        """The rendered prompt followed by the reply, as token ids (the prompt cut from the left to fit
        ``max_prompt_tokens``), and how many of them are the reply's."""
        reply_ids = self.tokenizer.encode(reply, add_special_tokens=False)
        if not reply_ids:
            raise ValueError("An empty reply has no likelihood to score.")
        prompt_ids = self.tokenizer.encode(self.render(conversation), add_special_tokens=False)
        room = max(self.max_prompt_tokens - len(reply_ids), 1)
        return prompt_ids[-room:] + reply_ids, len(reply_ids)

    def _left_padded(self, sequences: Sequence[tuple[list[int], int]]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """A left-padded batch of token ids with its attention mask, and a mask of the reply tokens."""
        import torch

        width = max(len(ids) for ids, _ in sequences)
        input_ids = torch.full((len(sequences), width), self.tokenizer.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros_like(input_ids)
        reply_mask = torch.zeros(len(sequences), width)
        for row, (ids, reply_length) in enumerate(sequences):
            input_ids[row, width - len(ids) :] = torch.tensor(ids)
            attention_mask[row, width - len(ids) :] = 1
            reply_mask[row, width - reply_length :] = 1
        # Positions count from each row's first real token, as if it were unpadded.
        position_ids = (attention_mask.cumsum(dim=1) - 1).clamp_min(0)
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids}
        return {name: tensor.to(self.device) for name, tensor in inputs.items()}, reply_mask.to(self.device)


def load_chat_lm(
    model_path: str,
    backend: str = "auto",
    precision: str = "auto",
    batch_size: int = 8,
    device: str | None = None,
) -> ChatLM:
    """The LLM backend: ``"transformers"``, ``"vllm"`` (GPU fleets; needs vLLM installed), or ``"auto"``
    (vLLM when it is importable and a GPU is present, else transformers)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    from .vllm_backend import vllm_available

    if backend == "vllm" or (backend == "auto" and vllm_available() and _cuda_available()):
        from .vllm_backend import VLLMChatLM

        return VLLMChatLM(model_path, precision=precision)
    return TransformersChatLM(model_path, precision=precision, batch_size=batch_size, device=device)


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    import torch

    from st_drama.precision import bf16_is_fast

    if precision == "fp32":
        return None
    if precision == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError(f"bf16 autocast is not supported on {device}; use precision='fp32'.")
        return torch.bfloat16
    return torch.bfloat16 if bf16_is_fast(device) else None


def _longest_first(lengths: Sequence[int]) -> list[int]:
    """Positions by decreasing length: batches taken in this order hold items of similar length (less padding);
    callers put the results back in the original order."""
    return sorted(range(len(lengths)), key=lambda position: -lengths[position])


def _batches(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _ReplyStop:
    """Stopping criterion: a row is done once ``stop_when`` accepts its decoded reply so far."""

    def __init__(self, tokenizer, prompt_length: int, stop_when: Callable[[str], bool]) -> None:
        self.tokenizer = tokenizer
        self.prompt_length = prompt_length
        self.stop_when = stop_when

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        import torch

        replies = self.tokenizer.batch_decode(input_ids[:, self.prompt_length :], skip_special_tokens=True)
        return torch.tensor([self.stop_when(reply) for reply in replies], dtype=torch.bool, device=input_ids.device)
