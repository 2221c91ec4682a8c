from __future__ import annotations

import pytest
import torch

from st_drama.models.attention_mask import build_attention_mask, position_ids_from_padding


def test_position_ids_start_at_zero_on_the_first_real_token_for_either_padding_side():
    right = torch.tensor([[1, 1, 1, 0, 0]])
    left = torch.tensor([[0, 0, 1, 1, 1]])
    assert position_ids_from_padding(right).tolist() == [[0, 1, 2, 2, 2]]
    assert position_ids_from_padding(left).tolist() == [[0, 0, 0, 1, 2]]


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_bidirectional_mask_lets_real_tokens_see_all_real_tokens_and_no_padding(implementation):
    padding = torch.tensor([[0, 1, 1, 1]])
    mask = build_attention_mask(padding, causal=False, implementation=implementation, dtype=torch.float32)
    allowed = mask if mask.dtype == torch.bool else mask == 0
    assert mask.shape == (1, 1, 4, 4)
    # Rows 1..3 are real tokens: they see keys 1..3 and never the padding key 0.
    assert allowed[0, 0, 1:, 1:].all()
    assert not allowed[0, 0, 1:, 0].any()
    # The padding query's row is never empty (it sees itself), so its softmax is defined.
    assert allowed[0, 0, 0, 0]


def test_causal_mask_is_lower_triangular_over_real_tokens():
    padding = torch.tensor([[1, 1, 1, 0]])
    allowed = build_attention_mask(padding, causal=True, implementation="sdpa", dtype=torch.float32)[0, 0]
    expected = torch.tensor(
        [
            [True, False, False, False],
            [True, True, False, False],
            [True, True, True, False],
            [True, True, True, True],  # padding query: what causality allows, plus itself
        ]
    )
    assert torch.equal(allowed, expected)


def test_every_row_has_a_visible_key_under_causal_left_padding():
    padding = torch.tensor([[0, 0, 1, 1]])
    allowed = build_attention_mask(padding, causal=True, implementation="sdpa", dtype=torch.float32)[0, 0]
    assert allowed.any(dim=-1).all()
    assert not allowed[2:, :2].any()


def test_allowed_pairs_are_intersected_with_the_padding_mask():
    padding = torch.tensor([[1, 1, 1]])
    pairs = torch.ones(1, 3, 3, dtype=torch.bool)
    pairs[0, 2, 1] = False
    allowed = build_attention_mask(
        padding, causal=False, implementation="sdpa", dtype=torch.float32, allowed_pairs=pairs
    )
    assert not allowed[0, 0, 2, 1]
    assert allowed[0, 0, 2, 0] and allowed[0, 0, 1, 2]


def test_eager_mask_is_additive_with_the_dtype_minimum():
    padding = torch.tensor([[1, 0]])
    mask = build_attention_mask(padding, causal=False, implementation="eager", dtype=torch.bfloat16)
    assert mask.dtype == torch.bfloat16
    assert mask[0, 0, 0, 0] == 0
    assert mask[0, 0, 0, 1] == torch.finfo(torch.bfloat16).min


def test_unsupported_implementation_is_named():
    with pytest.raises(ValueError, match="flash_attention_2"):
        build_attention_mask(torch.ones(1, 2), causal=False, implementation="flash_attention_2", dtype=torch.float32)
