from __future__ import annotations

import math

import mteb
import numpy as np
import torch
from conftest import save_tiny_decoder
from sentence_transformers import SentenceTransformer

from evaluation.evaluation_helpers import FRAMING_TEXTS, write_framing_folder
from st_drama import build_model
from st_drama.evaluation.beir_task import BeirRetrievalTask
from st_drama.evaluation.encoders import (
    STDramaEncoder,
    autocast_bf16,
    default_bf16,
    model_fingerprint,
    parameter_counts,
)
from st_drama.evaluation.model_meta import build_model_meta
from st_drama.precision import cpu_has_native_bf16


def ndcg_at_10(model, task) -> float:
    encoder = STDramaEncoder(model, build_model_meta(model, "tests/tiny"))
    result = mteb.evaluate(encoder, task, cache=None, co2_tracker=False, show_progress_bar=False)
    return result.task_results[0].scores["test"][0]["ndcg_at_10"]


def test_mteb_encodes_queries_as_queries_and_documents_as_documents(tiny_llama_dir, tmp_path):
    task = BeirRetrievalTask(write_framing_folder(tmp_path / "framing"))
    # Query i framed as a query ("Query: " + text) is token for token the document "framed-i": a perfect score.
    assert math.isclose(ndcg_at_10(build_model(str(tiny_llama_dir)), task), 1.0)
    # The same folder with queries framed like documents: each query matches "plain-i" instead.
    assert ndcg_at_10(build_model(str(tiny_llama_dir), query_prefix=""), task) < 0.9


def test_bf16_autocast_stays_close_to_float32(tiny_llama_dir):
    model = build_model(str(tiny_llama_dir))
    full = model.encode_document(FRAMING_TEXTS)
    with autocast_bf16(model.device):
        half = model.encode_document(FRAMING_TEXTS)
    assert half.dtype == np.float32
    cosines = (full * half).sum(axis=1) / (np.linalg.norm(full, axis=1) * np.linalg.norm(half, axis=1))
    assert cosines.min() > 0.99
    assert not np.array_equal(full, half)  # autocast really ran in bf16


def test_bf16_default_only_for_llm_backbones_with_native_bf16(tiny_llama_dir):
    assert default_bf16(build_model(str(tiny_llama_dir))) == cpu_has_native_bf16()


def test_fingerprint_follows_weights_and_settings(tiny_llama_dir, tmp_path):
    model = build_model(str(tiny_llama_dir))
    fingerprint = model_fingerprint(model)
    model.save(str(tmp_path / "saved"))
    assert model_fingerprint(SentenceTransformer(str(tmp_path / "saved"), trust_remote_code=True)) == fingerprint
    other_weights = build_model(str(save_tiny_decoder(tmp_path / "other", seed=1)))
    assert model_fingerprint(other_weights) != fingerprint
    assert model_fingerprint(build_model(str(tiny_llama_dir), max_seq_length=128)) != fingerprint


def test_parameter_counts(tiny_llama_dir):
    model = build_model(str(tiny_llama_dir))
    n_parameters, n_embedding, n_bytes = parameter_counts(model)
    assert n_parameters == sum(p.numel() for p in model[0].auto_model.parameters())
    assert n_embedding == model[0].auto_model.get_input_embeddings().weight.numel()
    assert n_bytes == 4 * n_parameters
    model.to(torch.bfloat16)
    assert parameter_counts(model)[2] == 2 * n_parameters
