"""Re-framing tokenized texts for the LLaRA losses: swap the EBAE prompt for the EBAR prompt, or append both so
one forward pass yields both embeddings.

In the joint framing the text is followed by the first prompt block, then the second. The second block reuses the
first block's position ids (it starts where the first starts) and neither block can attend to the other, so under
causal attention each block's states equal those of a separate pass with only that block.
"""

from __future__ import annotations

import torch

from st_drama.models import LlamaBackbone


def rows_of(features: dict[str, torch.Tensor]) -> list[list[int]]:
    """The real (unpadded) token ids of each row, whichever side the padding is on."""
    return [
        ids[mask.bool()].tolist() for ids, mask in zip(features["input_ids"], features["attention_mask"], strict=True)
    ]


def detect_task(backbone: LlamaBackbone, row: list[int]) -> str:
    """The task whose prompt block (suffix and trailing ids) ends ``row``."""
    for task in backbone.task_formats:
        block = backbone.suffix_ids(task) + backbone.trailing_ids
        if block and row[-len(block) :] == block:
            return task
    raise ValueError("A row ends in no known prompt block; was it tokenized by a LLaRA-style backbone?")


def text_part(backbone: LlamaBackbone, row: list[int]) -> list[int]:
    """The row without its prompt block (leading specials and prefix stay)."""
    block_length = len(backbone.suffix_ids(detect_task(backbone, row))) + len(backbone.trailing_ids)
    return row[:-block_length]


def prompt_block(backbone: LlamaBackbone, task: str) -> list[int]:
    return backbone.suffix_ids(task) + backbone.trailing_ids


def reframe(backbone: LlamaBackbone, features: dict[str, torch.Tensor], task: str) -> dict[str, torch.Tensor]:
    """The same texts framed for ``task`` (e.g. EBAE-framed documents re-framed with the EBAR prompt)."""
    block = prompt_block(backbone, task)
    return backbone._pad([text_part(backbone, row) + block for row in rows_of(features)])


def join_framings(
    backbone: LlamaBackbone, features: dict[str, torch.Tensor], first_task: str, second_task: str
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """Texts followed by both tasks' prompt blocks, with the position ids and attention structure that make one
    forward pass equal to two (see the module docstring).

    Returns:
        The joint features (with ``position_ids`` and ``allowed_pairs``), and ``[batch, seq]`` masks of the first
        and of the second task's prompt tokens.
    """
    first_block, second_block = prompt_block(backbone, first_task), prompt_block(backbone, second_task)
    texts = [text_part(backbone, row) for row in rows_of(features)]
    joint = backbone._pad([text + first_block + second_block for text in texts])
    batch, seq_len = joint["input_ids"].shape
    position_ids = torch.zeros(batch, seq_len, dtype=torch.long)
    allowed_pairs = torch.ones(batch, seq_len, seq_len, dtype=torch.bool)
    first_mask = torch.zeros(batch, seq_len, dtype=torch.bool)
    second_mask = torch.zeros(batch, seq_len, dtype=torch.bool)
    first_special = torch.tensor(backbone.suffix_ids(first_task)[-_special_count(backbone, first_task) :])
    second_special = torch.tensor(backbone.suffix_ids(second_task)[-_special_count(backbone, second_task) :])
    for row, text in enumerate(texts):
        offset = seq_len - len(text) - len(first_block) - len(second_block) if backbone.padding_side == "left" else 0
        first_start = offset + len(text)
        second_start = first_start + len(first_block)
        end = second_start + len(second_block)
        position_ids[row, offset:first_start] = torch.arange(len(text))
        position_ids[row, first_start:second_start] = torch.arange(len(first_block)) + len(text)
        position_ids[row, second_start:end] = torch.arange(len(second_block)) + len(text)
        allowed_pairs[row, second_start:end, first_start:second_start] = False
        allowed_pairs[row, first_start:second_start, second_start:end] = False
        first_mask[row, first_start:second_start] = torch.isin(
            joint["input_ids"][row, first_start:second_start], first_special
        )
        second_mask[row, second_start:end] = torch.isin(joint["input_ids"][row, second_start:end], second_special)
    joint["position_ids"] = position_ids
    joint["allowed_pairs"] = allowed_pairs
    return joint, first_mask, second_mask


def _special_count(backbone: LlamaBackbone, task: str) -> int:
    count = len(backbone.task_formats[task]["special_tokens"])
    if count == 0:
        raise ValueError(f"The {task!r} framing has no special prompt tokens to predict from (LLaRA style needed).")
    return count
