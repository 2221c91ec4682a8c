"""Fixtures for the augmentation tests: a fast recipe for the tiny chat LLM and a tiny PairRM ranker."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import train_tiny_tokenizer

from st_drama.augment.augmenter import AugmentConfig
from st_drama.augment.llm import SamplingConfig
from st_drama.augment.mining import MiningConfig
from st_drama.augment.synthetic_queries import GenerationConfig, QueryFilterConfig


@pytest.fixture(scope="package", autouse=True)
def single_torch_thread():
    """The tiny models here run faster on one thread (thread start-up and sharing the CPU cost more than they save);
    the suite-wide setting is restored afterwards."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tiny_config(llm_dir: Path, **overrides) -> AugmentConfig:
    """A fast recipe for the tiny LLM: short prompts and replies, a small negative range for a 40-document corpus.

    The tiny model rarely ends its replies and writes word pieces, so unfinished replies and replies sharing no word
    with the document are accepted (else nearly every synthetic query would be rejected and no synthetic row would
    reach the later stages)."""
    settings = dict(
        llm=str(llm_dir),
        precision="fp32",
        batch_size=4,
        chunk_size=4,
        generation=GenerationConfig(
            max_document_words=30, few_shot=1, sampling=SamplingConfig(max_new_tokens=10, temperature=0.8, top_p=0.9)
        ),
        filters=QueryFilterConfig(reject_unfinished=False, min_shared_words=0),
        mining=MiningConfig(positive_ranks=(1, 3), negative_ranks=(6, 14), num_negatives=3),
    )
    settings.update(overrides)
    return AugmentConfig(**settings)


@pytest.fixture(scope="session")
def tiny_pairrm_dirs(tmp_path_factory) -> tuple[Path, Path]:
    """``(ranker_folder, backbone_folder)``: a randomly initialised llm-blender pair ranker on a tiny DeBERTa-v2,
    saved the way PairRM is (config.json naming the backbone + model.safetensors)."""
    import safetensors.torch
    import torch
    from transformers import AutoModel, DebertaV2Config

    from st_drama.augment.pairrm import import_llm_blender

    root = tmp_path_factory.mktemp("tiny_pairrm")
    backbone = root / "backbone"
    ranker_folder = root / "ranker"
    ranker_folder.mkdir()
    tokenizer = train_tiny_tokenizer(backbone)
    tokenizer.model_max_length = 512
    tokenizer.save_pretrained(backbone)
    config = DebertaV2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        # DeBERTa-v3's (PairRM's backbone) relative-only positions, so inputs may exceed 512 tokens.
        relative_attention=True,
        position_biased_input=False,
        pos_att_type=["p2c", "c2p"],
        position_buckets=64,
        max_relative_positions=-1,
        # Larger random weights than the default 0.02, so attention mixes the passages into the scored positions.
        initializer_range=0.5,
    )
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(backbone)

    import_llm_blender()
    from llm_blender.blender.blender_utils import load_ranker
    from llm_blender.pair_ranker.config import RankerConfig

    ranker_config = RankerConfig(
        ranker_type="pairranker",
        model_type="deberta",
        model_name=str(backbone),
        source_maxlength=64,
        candidate_maxlength=64,
        device="cpu",
    )
    ranker, _, _ = load_ranker(ranker_config)
    # llm-blender adds <|source|>, <|candidate1|>, ... to the vocabulary; transformers gives new rows the mean
    # embedding, which would make them indistinguishable in a ranker that was never trained: randomise them.
    with torch.no_grad():
        embeddings = ranker.pretrained_model.get_input_embeddings().weight
        embeddings[len(tokenizer) :] = torch.randn_like(embeddings[len(tokenizer) :])
    safetensors.torch.save_model(ranker, str(ranker_folder / "model.safetensors"))
    (ranker_folder / "config.json").write_text(json.dumps(ranker_config.to_dict()), encoding="utf-8")
    return ranker_folder, backbone


def copy_tree(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target
