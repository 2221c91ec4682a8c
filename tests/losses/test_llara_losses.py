from __future__ import annotations

import pytest
import torch
from conftest import save_tiny_decoder

from st_drama import build_model
from st_drama.losses import EBAEEBARLoss, EBAELoss, EBARLoss
from st_drama.losses.prompt_framing import join_framings, reframe

TEXTS = ["a wing in a propeller slipstream gains lift", "heat transfer in a laminar boundary layer"]
NEXTS = ["the lift increase depends on the velocity ratio", ""]


@pytest.fixture(scope="module")
def llara_model(tiny_llama_dir):
    torch.manual_seed(0)
    return build_model(str(tiny_llama_dir), style="llara")


def features(model, texts, task="document"):
    return model[0].preprocess(texts, task=task)


def manual_prediction_loss(model, texts, targets_texts, task):
    """The LLaRA bag-of-words loss written out directly: mean prompt-token state -> tied LM head -> log-softmax ->
    minus the mean log-probability of the distinct non-special tokens of each target text."""
    backbone = model[0]
    framed = backbone.preprocess(texts, task=task)
    states = backbone(dict(framed))["token_embeddings"]
    losses = []
    for row, target_text in enumerate(targets_texts):
        target_ids = set(backbone.tokenizer(target_text, add_special_tokens=False)["input_ids"])
        target_ids -= set(backbone.tokenizer.all_special_ids)
        if not target_ids:
            continue
        embedding = states[row][framed["prompt_token_mask"][row]].mean(dim=0)
        log_probs = torch.log_softmax(embedding @ backbone.auto_model.embed_tokens.weight.t(), dim=-1)
        losses.append(-log_probs[sorted(target_ids)].mean())
    return torch.stack(losses).mean()


def test_ebae_loss_is_the_mean_negative_log_probability_of_the_texts_own_tokens(llara_model):
    loss = EBAELoss(llara_model)
    value = loss([features(llara_model, TEXTS)], None)
    expected = manual_prediction_loss(llara_model, TEXTS, TEXTS, task="document")
    torch.testing.assert_close(value, expected, rtol=1e-4, atol=1e-5)


def test_ebar_loss_predicts_the_next_passage_and_skips_rows_without_one(llara_model):
    loss = EBARLoss(llara_model)
    value = loss([features(llara_model, TEXTS), features(llara_model, NEXTS)], None)
    # Only the first row has a next passage; the second row is left out of the mean.
    expected = manual_prediction_loss(llara_model, TEXTS[:1], NEXTS[:1], task="query")
    torch.testing.assert_close(value, expected, rtol=1e-4, atol=1e-5)


def test_a_batch_with_nothing_to_predict_gives_zero_with_a_graph(llara_model):
    value = EBARLoss(llara_model)([features(llara_model, TEXTS), features(llara_model, ["", ""])], None)
    assert value.item() == 0.0 and value.requires_grad


def test_combined_loss_averages_ebae_and_ebar(llara_model):
    text_features, next_features = features(llara_model, TEXTS), features(llara_model, NEXTS)
    combined = EBAEEBARLoss(llara_model)([text_features, next_features], None)
    ebae = EBAELoss(llara_model)([text_features], None)
    ebar = EBARLoss(llara_model)([text_features, next_features], None)
    torch.testing.assert_close(combined, (ebae + ebar) / 2, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_one_pass_gives_the_embeddings_of_two_separate_passes(tiny_llama_dir, implementation, padding_side):
    model = build_model(
        str(tiny_llama_dir),
        style="llara",
        padding_side=padding_side,
        model_kwargs={"attn_implementation": implementation},
    )
    backbone = model[0]
    texts = [*TEXTS, "a much longer text about supersonic flow over a cone at an angle of attack"]
    joint, ebae_mask, ebar_mask = join_framings(backbone, features(model, texts), "document", "query")
    assert int(ebae_mask.sum()) == int(ebar_mask.sum()) == 8 * len(texts)
    with torch.no_grad():
        joint_states = backbone(joint)["token_embeddings"]
        for mask, task in ((ebae_mask, "document"), (ebar_mask, "query")):
            separate = backbone.preprocess(texts, task=task)
            separate_states = backbone(dict(separate))["token_embeddings"]
            torch.testing.assert_close(
                joint_states[mask], separate_states[separate["prompt_token_mask"]], rtol=1e-4, atol=1e-5
            )


def test_one_pass_and_two_pass_losses_agree(llara_model):
    batch = [features(llara_model, TEXTS), features(llara_model, NEXTS)]
    one_pass = EBAEEBARLoss(llara_model, single_pass=True)(batch, None)
    two_pass = EBAEEBARLoss(llara_model, single_pass=False)(batch, None)
    torch.testing.assert_close(one_pass, two_pass, rtol=1e-4, atol=1e-5)


def test_single_pass_is_refused_with_bidirectional_attention(tiny_llama_dir):
    model = build_model(str(tiny_llama_dir), style="llara", attention="bidirectional")
    with pytest.raises(ValueError, match="needs causal attention"):
        EBAEEBARLoss(model, single_pass=True)
    assert EBAEEBARLoss(model).single_pass is False


def test_reframe_swaps_the_prompt_and_keeps_the_text(llara_model):
    backbone = llara_model[0]
    as_document = features(llara_model, TEXTS)
    as_query = features(llara_model, TEXTS, task="query")
    reframed = reframe(backbone, as_document, "query")
    assert torch.equal(reframed["input_ids"], as_query["input_ids"])


def unseen_rows(model, texts):
    """Embedding rows of tokens that appear in no input: only the LM head path can give them a gradient."""
    seen = set(features(model, texts)["input_ids"].flatten().tolist())
    return [i for i in range(model[0].auto_model.embed_tokens.weight.shape[0]) if i not in seen]


@pytest.mark.parametrize("trainable", [True, False])
def test_tied_head_trains_or_stays_frozen_as_asked(tiny_llama_dir, trainable):
    model = build_model(str(tiny_llama_dir), style="llara")
    loss = EBAELoss(model, lm_head="tied", train_lm_head=trainable)
    loss([features(model, TEXTS)], None).backward()
    grad = model[0].auto_model.embed_tokens.weight.grad[unseen_rows(model, TEXTS)]
    assert bool(grad.abs().sum() > 0) == trainable


def test_untied_checkpoint_head_is_loaded_and_owned_by_the_loss(tmp_path):
    from safetensors.torch import load_file

    model_dir = save_tiny_decoder(tmp_path / "untied", tie_word_embeddings=False, seed=3)
    model = build_model(str(model_dir), style="llara")
    loss = EBAELoss(model, lm_head="auto", train_lm_head=False)
    assert loss.head.source == "checkpoint"
    saved_head = load_file(model_dir / "model.safetensors")["lm_head.weight"]
    torch.testing.assert_close(loss.head.weight[: saved_head.shape[0]], saved_head)
    assert loss.head.weight.shape[0] == model[0].auto_model.embed_tokens.weight.shape[0]  # rows for new tokens
    assert not loss.head.weight.requires_grad
    assert any(parameter is loss.head.weight for parameter in loss.parameters())


def test_checkpoint_head_missing_is_a_clear_error(llara_model, tmp_path):
    llara_model.save(str(tmp_path))
    reloaded = build_model(str(tmp_path))
    with pytest.raises(ValueError, match=r"holds no 'lm_head\.weight'"):
        EBAELoss(reloaded, lm_head="checkpoint")


def test_stop_words_and_punctuation_can_be_removed_from_targets(llara_model):
    backbone = llara_model[0]
    text_features = features(llara_model, ["the wing , of the aircraft ."])
    plain = EBAELoss(llara_model).text_targets(text_features)
    filtered = EBAELoss(llara_model, remove_stop_words=True, remove_punctuation=True).text_targets(text_features)
    removed = {backbone.tokenizer.decode([i]).strip() for i in (plain - filtered).nonzero()[:, 1].tolist()}
    assert {"the", "of", ",", "."} <= removed
    assert filtered.sum() > 0


def test_max_logits_prediction_is_a_different_finite_loss(llara_model):
    batch = [features(llara_model, TEXTS)]
    mean_loss = EBAELoss(llara_model, prediction="mean_embedding")(batch, None)
    max_loss = EBAELoss(llara_model, prediction="max_logits")(batch, None)
    assert torch.isfinite(max_loss) and not torch.isclose(mean_loss, max_loss)


def test_drama_style_model_is_refused(tiny_llama_dir):
    with pytest.raises(ValueError, match="style='llara'"):
        EBAELoss(build_model(str(tiny_llama_dir), style="drama"))


def test_config_and_citation(llara_model):
    loss = EBAEEBARLoss(llara_model, remove_stop_words=True)
    assert loss.get_config_dict()["single_pass"] is True
    assert loss.get_config_dict()["remove_stop_words"] is True
    assert "2312.15503" in loss.citation


@pytest.mark.real_model
def test_real_model_one_pass_matches_two_passes_and_trains(smollm2_dir):
    model = build_model("smollm2-135m", style="llara", max_seq_length=64)
    batch = [features(model, TEXTS), features(model, NEXTS)]
    one_pass = EBAEEBARLoss(model, single_pass=True)
    with torch.no_grad():
        two_pass_value = EBAEEBARLoss(model, single_pass=False)(batch, None)
    value = one_pass(batch, None)
    torch.testing.assert_close(value.detach(), two_pass_value, rtol=1e-3, atol=1e-3)
    assert 0 < value.item() < torch.log(torch.tensor(49152.0)).item()
    value.backward()
    assert model[0].auto_model.layers[0].self_attn.q_proj.weight.grad.abs().sum() > 0
