from __future__ import annotations

import pytest
import torch
from conftest import cranfield_documents

from st_drama.augment.llm import SamplingConfig, TransformersChatLM, load_chat_lm
from st_drama.augment.synthetic_queries import build_conversation
from st_drama.precision import cpu_has_native_bf16


@pytest.fixture(scope="module")
def conversations():
    # Documents of different lengths, so batches need padding.
    texts = [" ".join(row["text"].split()[: 10 + 15 * number]) for number, row in enumerate(cranfield_documents(4))]
    return [build_conversation(text, "en", few_shot=1) for text in texts]


def test_batched_generation_pads_left_and_matches_one_at_a_time(tiny_chat_llm_dir, conversations):
    batched = TransformersChatLM(str(tiny_chat_llm_dir), precision="fp32", batch_size=4)
    single = TransformersChatLM(str(tiny_chat_llm_dir), precision="fp32", batch_size=1)
    assert batched.tokenizer.padding_side == "left"
    inputs = batched.encode([batched.render(conversation) for conversation in conversations])
    assert bool((inputs["attention_mask"][:, -1] == 1).all())
    assert bool((inputs["attention_mask"][:, 0] == 0).any())
    greedy = SamplingConfig(max_new_tokens=8)
    assert [reply.text for reply in batched.generate(conversations, greedy, seed=0)] == [
        reply.text for reply in single.generate(conversations, greedy, seed=0)
    ]


def test_sampling_is_reproducible_per_seed_and_flags_unfinished_replies(tiny_chat_llm_dir, conversations):
    lm = TransformersChatLM(str(tiny_chat_llm_dir), precision="fp32", batch_size=2)
    sampling = SamplingConfig(max_new_tokens=6, temperature=1.0, top_p=0.95)
    first = lm.generate(conversations, sampling, seed=11)
    assert lm.generate(conversations, sampling, seed=11) == first
    assert [reply.text for reply in lm.generate(conversations, sampling, seed=12)] != [reply.text for reply in first]
    assert not any(reply.finished for reply in first)  # a random model does not end within 6 tokens
    stopped = lm.generate(conversations, sampling, seed=11, stop_when=lambda text: len(text) > 0)
    assert all(reply.finished and reply.text for reply in stopped)
    longer = lm.generate(conversations, SamplingConfig(40, 1.0, 0.95), seed=11)
    assert all(len(short.text) < len(long.text) for short, long in zip(stopped, longer, strict=True))


def test_precision_selects_bf16_autocast_on_cpu(tiny_chat_llm_dir, conversations):
    assert TransformersChatLM(str(tiny_chat_llm_dir), precision="fp32").autocast_dtype is None
    automatic = TransformersChatLM(str(tiny_chat_llm_dir), precision="auto", device="cpu")
    assert automatic.autocast_dtype == (torch.bfloat16 if cpu_has_native_bf16() else None)
    lm = TransformersChatLM(str(tiny_chat_llm_dir), precision="bf16", device="cpu")
    assert lm.autocast_dtype == torch.bfloat16
    with lm.autocast():
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16 and torch.is_autocast_enabled("cpu")
    replies = lm.generate(conversations[:2], SamplingConfig(max_new_tokens=4), seed=0)
    assert len(replies) == 2
    with pytest.raises(ValueError, match="precision"):
        TransformersChatLM(str(tiny_chat_llm_dir), precision="fp16")


def test_next_token_probabilities_do_not_depend_on_batching(tiny_chat_llm_dir, conversations):
    batched = TransformersChatLM(str(tiny_chat_llm_dir), precision="fp32", batch_size=4)
    single = TransformersChatLM(str(tiny_chat_llm_dir), precision="fp32", batch_size=1)
    probabilities = batched.next_token_probabilities(conversations)
    assert probabilities.shape == (4, batched.model.config.vocab_size)
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(4))
    torch.testing.assert_close(probabilities, single.next_token_probabilities(conversations), atol=1e-5, rtol=1e-4)


def test_model_without_chat_template_and_unknown_backend_are_errors(tiny_llama_dir, tiny_chat_llm_dir):
    with pytest.raises(ValueError, match="no chat template"):
        TransformersChatLM(str(tiny_llama_dir))
    with pytest.raises(ValueError, match="backend"):
        load_chat_lm(str(tiny_chat_llm_dir), backend="llama.cpp")
    assert isinstance(load_chat_lm(str(tiny_chat_llm_dir), backend="auto"), TransformersChatLM)


def test_vllm_backend_needs_vllm(tiny_chat_llm_dir):
    from st_drama.augment.vllm_backend import vllm_available

    if vllm_available():
        pytest.skip("vLLM is installed here; this checks the message shown without it")
    with pytest.raises(RuntimeError, match="needs vLLM installed"):
        load_chat_lm(str(tiny_chat_llm_dir), backend="vllm")
