"""What generation and reranking need from an LLM, whatever the backend: a conversation, a reply, and the
:class:`ChatLM` protocol (implemented by :class:`~st_drama.augment.llm.TransformersChatLM` and
:class:`~st_drama.augment.vllm_backend.VLLMChatLM`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .config import SamplingConfig

Conversation = list[dict[str, str]]


@dataclass(frozen=True)
class Reply:
    """A generated reply; ``finished`` is False when the token limit cut it off."""

    text: str
    finished: bool


class ChatLM(Protocol):
    """What generation and listwise reranking need from an LLM backend."""

    def generate(
        self,
        conversations: Sequence[Conversation],
        sampling: SamplingConfig,
        seed: int,
        stop_when: Callable[[str], bool] | None = None,
    ) -> list[Reply]:
        """The assistant's reply to each conversation (batched). ``stop_when(text_so_far)`` may end a reply early."""
        ...
