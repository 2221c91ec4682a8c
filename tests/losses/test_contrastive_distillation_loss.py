from __future__ import annotations

import pytest
import torch
from datasets import Dataset
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.losses import MatryoshkaLoss, MultipleNegativesRankingLoss

from st_drama import build_model
from st_drama.losses import ContrastiveDistillationLoss
from st_drama.training.contrastive import train

TOPICS = ["lift of swept wings", "heat transfer in boundary layers", "shock waves on cones", "flutter of panels",
          "jet noise", "buckling of cylinders", "hypersonic flow", "propeller slipstream"]  # fmt: skip
CANDIDATE_COLUMNS = ("positive", "negative_1", "negative_2")


def batch(count: int = 4) -> dict[str, list]:
    return {
        "query": [f"what is known about {TOPICS[i % 8]} case {i}" for i in range(count)],
        "positive": [f"a study of {TOPICS[i % 8]} in case {i}" for i in range(count)],
        "negative_1": [f"a study of {TOPICS[(i + 3) % 8]} in case {i + 100}" for i in range(count)],
        "negative_2": [f"notes on {TOPICS[(i + 5) % 8]} number {i}" for i in range(count)],
        "scores": [[-10.0 - i, -12.0, -11.0 + i] for i in range(count)],
    }


def features(model, rows):
    framed = [model[0].preprocess(rows["query"], prompt=model.prompts["query"], task="query")]
    return framed + [model[0].preprocess(rows[column], task="document") for column in CANDIDATE_COLUMNS]


def test_loss_is_infonce_plus_the_weighted_kl_towards_the_teacher(tiny_llama_dir):
    model = build_model(str(tiny_llama_dir)).eval()
    rows = batch()
    labels = torch.tensor(rows["scores"])
    infonce = MultipleNegativesRankingLoss(model, scale=1 / 0.05)
    loss = ContrastiveDistillationLoss(model, infonce, distill_weight=0.5, teacher_temperature=2.0)
    with torch.no_grad():
        combined = loss(features(model, rows), labels).item()
        alone = ContrastiveDistillationLoss(model, infonce, distill_weight=0.0)(features(model, rows), labels).item()
        queries = model.encode_query(rows["query"], convert_to_tensor=True, normalize_embeddings=True)
        candidates = [
            model.encode_document(rows[column], convert_to_tensor=True, normalize_embeddings=True)
            for column in CANDIDATE_COLUMNS
        ]
    # Written out: InfoNCE over all candidates of the batch; the KL over each row's own candidates.
    all_scores = queries @ torch.cat(candidates).T / 0.05
    expected_infonce = torch.nn.functional.cross_entropy(all_scores, torch.arange(4)).item()
    own_scores = torch.stack([(queries * documents).sum(dim=1) for documents in candidates], dim=1) / 0.05
    teacher = torch.softmax(labels / 2.0, dim=1)
    kl = (teacher * (teacher.log() - torch.log_softmax(own_scores, dim=1))).sum(dim=1).mean().item()
    assert alone == pytest.approx(expected_infonce, rel=1e-4)
    assert combined == pytest.approx(expected_infonce + 0.5 * kl, rel=1e-4)


def test_matryoshka_wraps_the_distillation_loss(tiny_llama_dir):
    model = build_model(str(tiny_llama_dir)).eval()
    rows = batch()
    inner = ContrastiveDistillationLoss(model, MultipleNegativesRankingLoss(model), distill_weight=1.0)
    wrapped = MatryoshkaLoss(model, inner, matryoshka_dims=[64, 32])
    with torch.no_grad():
        total = wrapped(features(model, rows), torch.tensor(rows["scores"])).item()
        full_size = inner(features(model, rows), torch.tensor(rows["scores"])).item()
    assert total > full_size > 0  # the 32-dimensional term adds its own positive loss


def test_the_cached_infonce_loss_is_refused(tiny_llama_dir):
    from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss

    model = build_model(str(tiny_llama_dir))
    with pytest.raises(TypeError, match="must be a MultipleNegativesRankingLoss"):
        ContrastiveDistillationLoss(model, CachedMultipleNegativesRankingLoss(model))


def student_probability_of_negative_1(model_dir, rows) -> float:
    model = SentenceTransformer(model_dir, trust_remote_code=True)
    queries = model.encode_query(rows["query"], convert_to_tensor=True, normalize_embeddings=True)
    own = [
        (queries * model.encode_document(rows[column], convert_to_tensor=True, normalize_embeddings=True)).sum(dim=1)
        for column in ("positive", "negative_1")
    ]
    return torch.softmax(torch.stack(own, dim=1) / 0.05, dim=1)[:, 1].mean().item()


def test_a_teacher_that_prefers_the_negative_moves_the_student_towards_it(tiny_llama_dir, tmp_path):
    rows = {column: values for column, values in batch(16).items() if column != "negative_2"}
    rows["scores"] = [[-20.0, -10.0]] * 16  # the teacher prefers negative_1 by 10 nats on every row
    run = dict(steps=8, batch_size=4, learning_rate=1e-3, bf16=False, matryoshka_dims=None, show_progress=False)
    contrastive = train(str(tiny_llama_dir), Dataset.from_dict(rows), tmp_path / "infonce", **run)
    distilled = train(str(tiny_llama_dir), Dataset.from_dict(rows), tmp_path / "distilled", distill_weight=4.0, **run)
    assert student_probability_of_negative_1(distilled, rows) > student_probability_of_negative_1(contrastive, rows)


@pytest.mark.real_model
def test_real_model_trains_with_teacher_scores(smollm2_dir, tmp_path):
    model_dir = train("smollm2-135m", Dataset.from_dict(batch(4)), tmp_path, steps=1, batch_size=2, max_seq_length=32,
                      distill_weight=1.0, matryoshka_dims=[256], show_progress=False)  # fmt: skip
    card = (tmp_path / "model" / "README.md").read_text()
    embeddings = SentenceTransformer(model_dir, trust_remote_code=True).encode_query(["jet noise"])
    assert "ContrastiveDistillationLoss" in card and torch.isfinite(torch.from_numpy(embeddings)).all()
