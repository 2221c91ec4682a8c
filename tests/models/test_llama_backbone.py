from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import save_tiny_decoder

from st_drama.models import LlamaBackbone

IMPLEMENTATIONS = ["sdpa", "eager"]


@pytest.fixture(scope="module")
def tiny_families(tmp_path_factory):
    return {
        model_type: save_tiny_decoder(tmp_path_factory.mktemp(model_type), model_type=model_type)
        for model_type in ("mistral", "qwen2")
    }


def make_backbone(model_dir, attention="bidirectional", implementation="sdpa", padding_side="right", **kwargs):
    backbone = LlamaBackbone(
        str(model_dir),
        attention=attention,
        padding_side=padding_side,
        model_kwargs={"attn_implementation": implementation},
        **kwargs,
    )
    return backbone.eval()


def token_states(backbone, sequences):
    """Last hidden states for raw token id sequences, padded the backbone's way."""
    features = backbone._pad(sequences)
    with torch.no_grad():
        return backbone(features)["token_embeddings"], features["attention_mask"]


def real_states(states, attention_mask, row):
    return states[row][attention_mask[row].bool()]


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_bidirectional_lets_an_early_token_see_a_later_one_and_causal_does_not(
    tiny_llama_dir, implementation, padding_side
):
    base = [11, 12, 13, 14]
    changed = [11, 12, 13, 15]  # only the last token differs
    longer = [20, 21, 22, 23, 24, 25, 26]  # forces padding of the other rows
    for attention, should_differ in (("bidirectional", True), ("causal", False)):
        backbone = make_backbone(tiny_llama_dir, attention, implementation, padding_side)
        states, mask = token_states(backbone, [base, changed, longer])
        first_of_base = real_states(states, mask, 0)[0]
        first_of_changed = real_states(states, mask, 1)[0]
        differs = not torch.allclose(first_of_base, first_of_changed, atol=1e-6)
        assert differs == should_differ, f"{attention}: first-token state changed={differs}"


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("padding_side", ["left", "right"])
@pytest.mark.parametrize("attention", ["bidirectional", "causal"])
def test_padding_never_changes_real_token_states(tiny_llama_dir, implementation, padding_side, attention):
    backbone = make_backbone(tiny_llama_dir, attention, implementation, padding_side)
    short = [30, 31, 32]
    alone, alone_mask = token_states(backbone, [short])
    batched, batched_mask = token_states(backbone, [short, list(range(40, 50))])
    torch.testing.assert_close(real_states(batched, batched_mask, 0), real_states(alone, alone_mask, 0))

    # Whatever ids sit in the padding positions, real tokens are unaffected.
    features = backbone._pad([short, list(range(40, 50))])
    features["input_ids"][~features["attention_mask"].bool()] = 77
    with torch.no_grad():
        other_padding = backbone(features)["token_embeddings"]
    torch.testing.assert_close(real_states(other_padding, batched_mask, 0), real_states(alone, alone_mask, 0))


@pytest.mark.parametrize("model_type", ["mistral", "qwen2"])
def test_other_llama_family_decoders_run_bidirectionally(tiny_families, model_type):
    backbone = make_backbone(tiny_families[model_type], "bidirectional", "sdpa", "left")
    states, mask = token_states(backbone, [[11, 12, 13, 14], [11, 12, 13, 15], [1, 2, 3, 4, 5, 6]])
    assert not torch.allclose(real_states(states, mask, 0)[0], real_states(states, mask, 1)[0], atol=1e-6)
    alone, alone_mask = token_states(backbone, [[11, 12, 13, 14]])
    torch.testing.assert_close(real_states(states, mask, 0), real_states(alone, alone_mask, 0))


def test_mask_is_what_the_attention_layers_receive(tiny_llama_dir):
    """The decoder's own causal mask must not replace ours (DRAMA's silent fallback on new transformers)."""
    backbone = make_backbone(tiny_llama_dir, "bidirectional", "eager")
    seen = []
    layer = backbone.auto_model.layers[0].self_attn
    hook = layer.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["attention_mask"]), with_kwargs=True
    )
    try:
        token_states(backbone, [[11, 12, 13]])
    finally:
        hook.remove()
    assert torch.count_nonzero(seen[0]) == 0  # additive mask of zeros: every token sees every token
    assert all(not module.is_causal for module in backbone.auto_model.modules() if hasattr(module, "is_causal"))


def test_drama_framing_prefixes_queries_and_appends_eos(tiny_llama_dir):
    backbone = make_backbone(tiny_llama_dir)
    tokenizer = backbone.tokenizer
    query = backbone.preprocess(["lift of a wing"], task="query")["input_ids"][0].tolist()
    document = backbone.preprocess(["lift of a wing"], task="document")["input_ids"][0].tolist()
    assert tokenizer.decode(query[:-1]) == "Query: lift of a wing"
    assert tokenizer.decode(document[:-1]) == "lift of a wing"
    assert query[-1] == document[-1] == tokenizer.eos_token_id
    # No task: the default task (document) framing.
    assert backbone.preprocess(["lift of a wing"])["input_ids"][0].tolist() == document


def test_truncation_keeps_framing_and_eos_and_is_counted(tiny_llama_dir):
    backbone = make_backbone(tiny_llama_dir, max_seq_length=12)
    long_text = "the boundary layer of a wing at supersonic speed " * 20
    features = backbone.preprocess([long_text, "short"], task="query")
    ids = features["input_ids"][0].tolist()
    assert len(ids) == 12 and features["attention_mask"][0].sum() == 12
    assert backbone.tokenizer.decode(ids[:-1]).startswith("Query: the")
    assert ids[-1] == backbone.tokenizer.eos_token_id
    assert (backbone.num_texts_truncated, backbone.num_texts_seen) == (1, 2)


def test_max_length_too_small_for_the_framing_is_refused(tiny_llama_dir):
    backbone = make_backbone(tiny_llama_dir, max_seq_length=3)
    with pytest.raises(ValueError, match="no room for text"):
        backbone.preprocess(["x"], task="query")


def test_llara_prompt_tokens_are_added_once_and_marked(tiny_llama_dir, tmp_path):
    backbone = make_backbone(tiny_llama_dir, "causal", prompt_style="llara")
    tokenizer = backbone.tokenizer
    vocab_after_first = len(tokenizer)
    assert vocab_after_first == 400 + 16
    assert backbone.auto_model.get_input_embeddings().weight.shape[0] == vocab_after_first
    features = backbone.preprocess(["a wing"], task="query")
    ids = features["input_ids"][0]
    marked = tokenizer.convert_ids_to_tokens(ids[features["prompt_token_mask"][0]].tolist())
    assert marked == [f"<|ebar_{i}|>" for i in range(1, 9)]
    assert ids[-1].item() == tokenizer.convert_tokens_to_ids("<|ebar_8|>")  # no EOS after the prompt tokens
    document_ids = backbone.preprocess(["a wing"], task="document")["input_ids"][0]
    assert "<|ebae_1|>" in tokenizer.convert_ids_to_tokens(document_ids.tolist())

    backbone.save(str(tmp_path))
    reloaded = LlamaBackbone.load(str(tmp_path))
    assert len(reloaded.tokenizer) == vocab_after_first
    torch.testing.assert_close(
        reloaded.auto_model.get_input_embeddings().weight, backbone.auto_model.get_input_embeddings().weight
    )


def test_llara_truncation_never_cuts_the_prompt(tiny_llama_dir):
    backbone = make_backbone(tiny_llama_dir, "causal", prompt_style="llara", max_seq_length=60)
    features = backbone.preprocess(["flow over a flat plate " * 30], task="document")
    assert features["input_ids"].shape[1] == 60
    assert features["prompt_token_mask"][0].sum() == 8
    assert features["prompt_token_mask"][0, -8:].all()


LONG_TEXT = "the boundary layer of a wing at supersonic speed " * 20


def test_long_text_is_cut_into_windows_that_each_carry_the_framing(tiny_llama_dir):
    backbone = make_backbone(tiny_llama_dir, max_seq_length=12, max_chunks=3)
    tokenizer = backbone.tokenizer
    features = backbone.preprocess([LONG_TEXT, "short"], task="query")
    assert features["chunk_owner"].tolist() == [0, 0, 0, 1]
    rows = [
        ids[mask.bool()].tolist() for ids, mask in zip(features["input_ids"], features["attention_mask"], strict=True)
    ]
    assert [len(row) for row in rows[:3]] == [12, 12, 12]
    assert all(row[-1] == tokenizer.eos_token_id for row in rows)
    assert all(tokenizer.decode(row[:-1]).startswith("Query: ") for row in rows)
    # Windows follow each other: the text's tokens, in order, with the prefix repeated.
    prefix_length = len(tokenizer("Query: ", add_special_tokens=False)["input_ids"])
    text_ids = tokenizer("Query: " + LONG_TEXT, add_special_tokens=False)["input_ids"]
    joined = rows[0][:-1] + rows[1][prefix_length:-1] + rows[2][prefix_length:-1]
    assert joined == text_ids[: len(joined)]
    assert features["chunk_length"].tolist() == [11, 11, 11, len(rows[3]) - 1]
    assert (backbone.num_texts_truncated, backbone.num_texts_seen) == (1, 2)  # longer than three windows


def test_training_mode_truncates_to_one_window_per_text(tiny_llama_dir):
    backbone = make_backbone(tiny_llama_dir, max_seq_length=12, max_chunks=3).train()
    features = backbone.preprocess([LONG_TEXT, "short"], task="query")
    assert features["input_ids"].shape[0] == 2 and "chunk_owner" not in features


def test_llara_windows_each_end_in_the_prompt_tokens(tiny_llama_dir):
    backbone = make_backbone(tiny_llama_dir, "causal", prompt_style="llara", max_seq_length=60, max_chunks=2)
    features = backbone.preprocess([LONG_TEXT], task="document")
    assert features["chunk_owner"].tolist() == [0, 0]
    assert features["prompt_token_mask"].sum(dim=-1).tolist() == [8, 8]
    assert features["prompt_token_mask"][:, -8:].all()


def test_max_chunks_below_one_is_refused(tiny_llama_dir):
    with pytest.raises(ValueError, match="max_chunks must be at least 1"):
        make_backbone(tiny_llama_dir, max_chunks=0)


@pytest.mark.parametrize("text", ["", "   \n\t ", "caf\udce9 au lait", "x"])
def test_degenerate_texts_embed_to_finite_states(tiny_llama_dir, text):
    backbone = make_backbone(tiny_llama_dir)
    features = backbone.preprocess([text], task="query")
    with torch.no_grad():
        states = backbone(features)["token_embeddings"]
    assert features["attention_mask"].sum() >= 1
    assert torch.isfinite(states).all()


def test_non_text_input_names_its_position(tiny_llama_dir):
    backbone = make_backbone(tiny_llama_dir)
    with pytest.raises(TypeError, match="input 1 is a NoneType"):
        backbone.preprocess(["fine", None])


def test_unknown_task_is_refused(tiny_llama_dir):
    backbone = make_backbone(tiny_llama_dir)
    with pytest.raises(ValueError, match="Unknown task 'passage'"):
        backbone.preprocess(["x"], task="passage")


def test_non_llama_model_is_refused_with_its_architecture(tmp_path):
    from transformers import BertConfig, BertModel

    BertModel(
        BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    ).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"BertModel model \(model_type 'bert'\)"):
        LlamaBackbone(str(tmp_path))


def test_unsupported_attention_implementation_is_refused(tiny_llama_dir):
    with pytest.raises(ValueError, match="flex_attention"):
        LlamaBackbone(str(tiny_llama_dir), model_kwargs={"attn_implementation": "flex_attention"})


def perturbed_lora_model(model_dir):
    from st_drama import build_model
    from st_drama.training.runtime import add_lora

    model = build_model(str(model_dir), style="llara")
    add_lora(model, rank=4, train_token_ids=model[0].prompt_token_ids.tolist())
    torch.manual_seed(1)
    with torch.no_grad():
        for name, parameter in model[0].auto_model.named_parameters():
            if "lora_B" in name or "trainable_tokens_delta" in name:
                parameter.add_(torch.randn_like(parameter) * 0.2)
    return model


def test_lora_folder_reloads_and_merging_keeps_the_embeddings(tiny_llama_dir, tmp_path):
    from sentence_transformers import SentenceTransformer

    model = perturbed_lora_model(tiny_llama_dir)
    texts = ["a wing in a slipstream", "heat transfer"]
    with_adapters = model.encode_query(texts)

    model.save(str(tmp_path / "adapters"))
    assert (tmp_path / "adapters" / "adapter_config.json").is_file()
    reloaded = SentenceTransformer(str(tmp_path / "adapters"), trust_remote_code=True)
    assert reloaded[0].has_adapters
    np.testing.assert_allclose(reloaded.encode_query(texts), with_adapters, atol=1e-6)

    model[0].merge_adapters()
    assert not model[0].has_adapters
    assert not any("lora" in name or "token_adapter" in name for name, _ in model[0].auto_model.named_parameters())
    np.testing.assert_allclose(model.encode_query(texts), with_adapters, atol=1e-5)
    model.save(str(tmp_path / "merged"))
    assert not (tmp_path / "merged" / "adapter_config.json").exists()
    merged = SentenceTransformer(str(tmp_path / "merged"), trust_remote_code=True)
    np.testing.assert_allclose(merged.encode_query(texts), with_adapters, atol=1e-5)
