from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import cranfield_documents

from st_drama.augment.pairrm import PairRMReranker, check_pairrm_folder

from .conftest import tiny_config


def test_the_import_shim_is_what_lets_llm_blender_import_on_transformers_5():
    plain = subprocess.run([sys.executable, "-c", "import llm_blender"], capture_output=True, text=True)
    assert plain.returncode != 0 and "TRANSFORMERS_CACHE" in plain.stderr
    shimmed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import transformers.utils.hub as hub; from huggingface_hub import constants; "
            "from st_drama.augment.pairrm import import_llm_blender; module = import_llm_blender(); "
            "assert hub.TRANSFORMERS_CACHE == constants.HF_HUB_CACHE; print(module.Blender.__name__)",
        ],
        capture_output=True,
        text=True,
    )
    assert shimmed.returncode == 0, shimmed.stderr
    assert shimmed.stdout.strip() == "Blender"


def test_pairrm_reranker_ranks_passages_with_a_tiny_random_ranker(tiny_pairrm_dirs):
    ranker_folder, _ = tiny_pairrm_dirs
    reranker = PairRMReranker(ranker_folder, device="cpu")
    passages = [row["text"] for row in cranfield_documents(6)]
    queries = ["boundary layer", "heat transfer"]
    candidates = [passages[:4], passages[2:6]]
    scores = reranker.scores(queries, candidates)
    assert [len(row) for row in scores] == [4, 4]
    assert reranker.stats["pairs compared"] == 2 * 4 * 3
    assert len({round(score, 6) for score in scores[0]}) > 1  # a random ranker still tells passages apart
    orders = reranker.rerank(queries, candidates)
    for row, order in zip(scores, orders, strict=True):
        assert sorted(order) == [0, 1, 2, 3]
        assert [row[index] for index in order] == sorted(row, reverse=True)
    assert reranker.rerank(queries, candidates) == orders  # deterministic (dropout off)
    assert reranker.rerank(["q"], [[passages[0]]]) == [[0]]


def test_pairrm_backbone_can_be_given_separately(tiny_pairrm_dirs, tmp_path):
    ranker_folder, backbone = tiny_pairrm_dirs
    moved = tmp_path / "ranker"
    moved.mkdir()
    config = json.loads((ranker_folder / "config.json").read_text())
    config["model_name"] = "microsoft/deberta-v3-large"  # what the real PairRM config says
    (moved / "config.json").write_text(json.dumps(config))
    (moved / "model.safetensors").write_bytes((ranker_folder / "model.safetensors").read_bytes())
    with pytest.raises(FileNotFoundError, match=r"names the backbone 'microsoft/deberta-v3-large'.*--pairrm-backbone"):
        check_pairrm_folder(moved)
    reranker = PairRMReranker(moved, backbone_path=backbone, device="cpu")
    assert sorted(reranker.rerank(["lift"], [["a wing", "a cat", "a plate"]])[0]) == [0, 1, 2]


def test_missing_pairrm_weights_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="needs local weights: pass --pairrm-weights"):
        check_pairrm_folder(None)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_pairrm_folder(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"no config\.json"):
        check_pairrm_folder(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="neither of"):
        check_pairrm_folder(tmp_path)


def test_generator_reranks_with_pairrm(tiny_pairrm_dirs, tiny_chat_llm_dir, small_corpus, tmp_path):
    from st_drama.augment.augmenter import Augmenter

    ranker_folder, _ = tiny_pairrm_dirs
    config = tiny_config(
        tiny_chat_llm_dir,
        sources=("crop",),
        rerank="pairrm",
        pairrm_weights=str(ranker_folder),
        max_docs=4,
        reranking={"depth": 6, "negative_ranks": (2, 6), "max_passage_words": 20},
    )
    generator = Augmenter(config)
    dataset = generator.generate(small_corpus, tmp_path / "out", progress=False)
    assert len(dataset) == 4, generator.last_summary
    for row in dataset:
        negatives = [row[f"negative_{number}"] for number in (1, 2, 3)]
        assert row["positive"] not in negatives and len(set(negatives)) == 3
