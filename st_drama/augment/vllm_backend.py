"""Optional vLLM backend for generation and listwise reranking on GPU fleets.

vLLM is imported only here, and only when this backend is chosen. It is not installed in the test environment, so
this file is kept small: it maps our :class:`~st_drama.augment.llm.ChatLM` calls onto ``vllm.LLM.chat``. Each
request gets its own seed (derived from the call's seed and the request's position), so replies do not depend on
how vLLM schedules the batch.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence

from .chat import Conversation, Reply
from .config import SamplingConfig

_VLLM_DTYPES = {"auto": "auto", "bf16": "bfloat16", "fp32": "float32"}


def vllm_available() -> bool:
    """Whether vLLM can be imported (checked without importing it)."""
    return importlib.util.find_spec("vllm") is not None


class VLLMChatLM:
    """A ``vllm.LLM`` over a local model folder.

    Args:
        model_path: A local transformers model folder with a chat template.
        precision: ``"auto"``, ``"bf16"`` or ``"fp32"``.
    """

    def __init__(self, model_path: str, precision: str = "auto") -> None:
        if not vllm_available():
            raise RuntimeError("The vLLM backend needs vLLM installed (pip install vllm); use backend='transformers'.")
        import vllm

        self._vllm = vllm
        self.model_path = model_path
        self.llm = vllm.LLM(model=model_path, dtype=_VLLM_DTYPES[precision])

    def generate(
        self,
        conversations: Sequence[Conversation],
        sampling: SamplingConfig,
        seed: int,
        stop_when: Callable[[str], bool] | None = None,
    ) -> list[Reply]:
        """Replies to all conversations in one vLLM call. ``stop_when`` is applied after generation (vLLM has no
        per-step callback): each reply is cut at the shortest prefix it accepts."""
        parameters = [
            self._vllm.SamplingParams(
                max_tokens=sampling.max_new_tokens,
                temperature=max(sampling.temperature, 0.0),
                top_p=sampling.top_p if not sampling.greedy else 1.0,
                seed=seed + index,
            )
            for index in range(len(conversations))
        ]
        outputs = self.llm.chat(list(conversations), parameters, use_tqdm=False)
        replies = []
        for output in outputs:
            completion = output.outputs[0]
            text, stopped = _cut_at_stop(completion.text, stop_when)
            replies.append(Reply(text=text, finished=stopped or completion.finish_reason != "length"))
        return replies


def _cut_at_stop(reply: str, stop_when: Callable[[str], bool] | None) -> tuple[str, bool]:
    if stop_when is not None:
        for end in range(1, len(reply) + 1):
            if stop_when(reply[:end]):
                return reply[:end], True
    return reply, False
