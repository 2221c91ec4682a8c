"""The baselines reproduce the reference scores published with the shared collections (../shared/data/README.md):
a check that our tasks, BM25 settings and MiniLM loading match what others measured on the same data."""

from __future__ import annotations

import pytest
from conftest import SHARED_DATA

from st_drama.evaluation.runner import evaluate

# nDCG@10 and Recall@100 from ../shared/data/README.md.
BM25_REFERENCE = {
    "cranfield": (0.352, 0.709),
    "cisi": (0.364, 0.419),
    "dbpedia_entity_subset5k": (0.317, 0.787),
    "arcd_ar_subset": (0.747, 0.900),
}
MINILM_REFERENCE = {
    "cranfield": (0.382, 0.772),
    "cisi": (0.421, 0.471),
    "dbpedia_entity_subset5k": (0.511, 0.942),
    "arcd_ar_subset": (0.055, 0.460),
}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs ../shared/data"),
]


def test_bm25_and_minilm_match_the_reference_scores(tiny_llama_dir, tmp_path):
    folders = [SHARED_DATA / name for name in BM25_REFERENCE]
    results = evaluate(str(tiny_llama_dir), folders, baselines="bm25,minilm", output_dir=tmp_path, show_progress=False)
    for key, reference in (("bm25", BM25_REFERENCE), ("minilm", MINILM_REFERENCE)):
        for task, (ndcg, recall) in reference.items():
            scores = results.run(key).scores[task]
            assert scores.ndcg_at_10 == pytest.approx(ndcg, abs=0.002), (key, task)
            assert scores.recall_at_100 == pytest.approx(recall, abs=0.002), (key, task)
