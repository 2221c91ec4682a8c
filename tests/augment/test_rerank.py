from __future__ import annotations

import pytest
from conftest import cranfield_documents

from st_drama.augment.augmenter import unusable_llm_problems
from st_drama.augment.config import AugmentConfig
from st_drama.augment.llm import TransformersChatLM
from st_drama.augment.rerank import (
    PERMUTATION_INVALID,
    PERMUTATION_REPAIRED,
    PERMUTATION_VALID,
    ListwiseReranker,
    PointwiseReranker,
    QueryLikelihoodReranker,
    RerankConfig,
    listwise_conversation,
    make_reranker,
    parse_permutation,
    query_likelihood_conversation,
    reply_counts,
    sliding_window_rerank,
    sliding_windows,
)


@pytest.mark.parametrize(
    ("reply", "size", "order", "status"),
    [
        ("[2] > [3] > [1]", 3, [1, 2, 0], PERMUTATION_VALID),
        ("Ranking: [ 3 ]>[1]>[2]", 3, [2, 0, 1], PERMUTATION_VALID),
        ("3 > 1 > 2", 3, [2, 0, 1], PERMUTATION_VALID),
        ("[2] > [4]", 4, [1, 3, 0, 2], PERMUTATION_REPAIRED),
        ("[2] > [2] > [1] > [3]", 3, [1, 0, 2], PERMUTATION_REPAIRED),
        ("[7] > [3] > [0] > [1] > [2]", 3, [2, 0, 1], PERMUTATION_REPAIRED),
        ("[1] > [2] > [3] > [4]", 3, [0, 1, 2], PERMUTATION_REPAIRED),
        ("I cannot rank these passages.", 3, [0, 1, 2], PERMUTATION_INVALID),
        ("", 2, [0, 1], PERMUTATION_INVALID),
        ("[9] > [12]", 3, [0, 1, 2], PERMUTATION_INVALID),
    ],
)
def test_parse_permutation_repairs_invalid_and_partial_replies(reply, size, order, status):
    assert parse_permutation(reply, size) == (order, status)


def test_passages_quoted_instead_of_identifiers_are_recognised():
    passages = [
        "supersonic flow over a cone at incidence",
        "heat transfer in a laminar boundary layer",
        "buckling of thin cylindrical shells under pressure",
    ]
    reply = "1. heat transfer in laminar boundary layers\n2. buckling of thin shells\n3. something else entirely"
    assert parse_permutation(reply, 3, passages) == ([1, 2, 0], PERMUTATION_REPAIRED)
    # Without the passages, the list numbers would be misread as identifiers.
    assert parse_permutation(reply, 3) == ([0, 1, 2], PERMUTATION_VALID)
    assert parse_permutation("[3] > [1] > [2]", 3, passages) == ([2, 0, 1], PERMUTATION_VALID)
    assert parse_permutation("no idea", 3, passages) == ([0, 1, 2], PERMUTATION_INVALID)


def test_sliding_windows_go_from_bottom_to_top():
    assert sliding_windows(20, 10, 5) == [(10, 20), (5, 15), (0, 10)]
    assert sliding_windows(12, 10, 5) == [(2, 12), (0, 7)]
    assert sliding_windows(7, 10, 5) == [(0, 7)]
    assert sliding_windows(1, 10, 5) == []


def test_sliding_window_rerank_bubbles_the_best_passages_to_the_top():
    # An oracle ranks each window by a known relevance; the windows' overlap carries the best items upwards.
    relevance = [[(number * 7 + list_number) % 20 for number in range(20)] for list_number in range(3)]
    calls = []

    def oracle(requests):
        calls.append(len(requests))
        return [
            sorted(range(len(items)), key=lambda position: -relevance[number][items[position]])
            for number, items in requests
        ]

    orders = sliding_window_rerank(3, [20, 20, 20], window=10, step=5, rank_windows=oracle)
    assert calls == [3, 3, 3]  # one batched call per window step
    for number, order in enumerate(orders):
        assert sorted(order) == list(range(20))
        best_five = sorted(range(20), key=lambda item: -relevance[number][item])[:5]
        assert order[:5] == best_five


def test_sliding_window_rerank_handles_lists_of_different_lengths():
    def reverse(requests):
        return [list(range(len(items)))[::-1] for _, items in requests]

    orders = sliding_window_rerank(3, [5, 1, 12], window=4, step=2, rank_windows=reverse)
    assert [sorted(order) for order in orders] == [list(range(5)), [0], list(range(12))]
    assert orders[1] == [0]


@pytest.fixture(scope="module")
def tiny_lm(tiny_chat_llm_dir):
    return TransformersChatLM(str(tiny_chat_llm_dir), precision="fp32", batch_size=4)


@pytest.fixture(scope="module")
def passages():
    return [row["text"] for row in cranfield_documents(8)]


def test_listwise_reranker_with_a_tiny_llm_always_returns_permutations(tiny_lm, passages):
    reranker = ListwiseReranker(tiny_lm, RerankConfig(window=4, step=2, max_passage_words=12))
    candidates = [passages[:6], passages[2:8], passages[:3]]
    orders = reranker.rerank(["boundary layer", "heat transfer", "wing lift"], candidates)
    assert [sorted(order) for order in orders] == [list(range(6)), list(range(6)), list(range(3))]
    # 6 passages -> windows (2,6),(0,4); 3 passages -> one window: 5 windows, every one counted by status.
    assert sum(reranker.stats.values()) == 5
    assert set(reranker.stats) <= {f"windows {status}" for status in ("valid", "repaired", "invalid")}


def test_listwise_prompt_numbers_the_passages(passages):
    conversation = listwise_conversation("boundary layer", passages[:3], max_passage_words=5)
    content = conversation[-1]["content"]
    assert "[1] " in content and "[3] " in content and "[4]" not in content.replace("[2] > [1] > [3]", "")
    assert "boundary layer" in content
    assert len(content.split("[2] ")[1].split("\n")[0].split()) == 5


def scores_after_checking_the_order(reranker, passages) -> list[list[float]]:
    """A scoring reranker's scores for two queries of five candidates each, after checking that ``rerank`` orders
    every list by them, best first."""
    queries = ["boundary layer", "heat transfer"]
    candidates = [passages[:5], passages[3:8]]
    scores = reranker.scores(queries, candidates)
    assert [len(row) for row in scores] == [5, 5]
    orders = reranker.rerank(queries, candidates)
    for row, order in zip(scores, orders, strict=True):
        assert [row[index] for index in order] == sorted(row, reverse=True)
    return scores


def test_pointwise_reranker_orders_by_yes_probability(tiny_lm, passages):
    reranker = PointwiseReranker(tiny_lm, RerankConfig(max_passage_words=20))
    scores = scores_after_checking_the_order(reranker, passages)
    assert all(0.0 <= score <= 1.0 for row in scores for score in row)
    # The same pair (the second query, its second candidate) scores the same whatever else is in the batch.
    alone = reranker.scores(["heat transfer"], [[passages[4]]])[0][0]
    assert alone == pytest.approx(scores[1][1], abs=1e-5)
    assert reranker.yes_ids and reranker.no_ids and not reranker.yes_ids & reranker.no_ids


def unpadded_reply_log_likelihood(chat_lm: TransformersChatLM, conversation, reply: str) -> float:
    """log p(reply | prompt) from one unbatched forward pass over the prompt and reply, token by token."""
    import torch

    prompt_ids = chat_lm.tokenizer.encode(chat_lm.render(conversation), add_special_tokens=False)
    reply_ids = chat_lm.tokenizer.encode(reply, add_special_tokens=False)
    with torch.inference_mode():
        logits = chat_lm.model(input_ids=torch.tensor([prompt_ids + reply_ids])).logits[0].float()
    log_probs = torch.log_softmax(logits, dim=-1)
    return sum(float(log_probs[len(prompt_ids) + i - 1, token]) for i, token in enumerate(reply_ids))


def test_reply_log_likelihood_is_the_unpadded_sum_over_the_reply_tokens(tiny_lm, passages):
    """Batched, left-padded and sorted by length, each pair scores what one forward pass of it alone gives."""
    conversations = [query_likelihood_conversation(passage, 30) for passage in passages[:5]]
    replies = ["boundary layer", "heat transfer in a wing", "flutter", "supersonic flow over a cone", "shells"]
    batched = tiny_lm.reply_log_likelihoods(conversations, replies)
    expected = [unpadded_reply_log_likelihood(tiny_lm, c, r) for c, r in zip(conversations, replies, strict=True)]
    assert batched == pytest.approx(expected, abs=1e-3)
    assert all(score < 0 for score in batched)
    with pytest.raises(ValueError, match="empty reply"):
        tiny_lm.reply_log_likelihoods(conversations[:1], [""])


def test_query_likelihood_reranker_orders_by_log_likelihood(tiny_lm, passages):
    reranker = QueryLikelihoodReranker(tiny_lm, RerankConfig(max_passage_words=20))
    scores = scores_after_checking_the_order(reranker, passages)
    assert all(score < 0 for row in scores for score in row)
    assert reranker.stats == {"pairs scored": 20}
    # The passage is in the prompt, cut to max_passage_words; the query is not (it is the scored reply).
    content = query_likelihood_conversation(passages[0], 5)[-1]["content"]
    assert content.startswith("Passage: " + " ".join(passages[0].split()[:5])) and "boundary" not in content


def test_make_reranker(tiny_lm):
    assert make_reranker("none") is None
    assert isinstance(make_reranker("listwise", tiny_lm), ListwiseReranker)
    assert isinstance(make_reranker("pointwise", tiny_lm), PointwiseReranker)
    assert isinstance(make_reranker("likelihood", tiny_lm), QueryLikelihoodReranker)
    with pytest.raises(ValueError, match="needs an LLM"):
        make_reranker("listwise")
    with pytest.raises(ValueError, match="Unknown reranker"):
        make_reranker("bm25")


def cranfield_candidates(count: int, candidates: int = 5) -> tuple[list[str], list[list[str]], list[int]]:
    """``count`` judged Cranfield queries, each with its most relevant document shuffled among unjudged ones, and
    the position of that document."""
    import random

    from st_drama.corpus import load_corpus, load_qrels, load_queries

    documents = {document.doc_id: document.full_text for document in load_corpus("cranfield")}
    queries, qrels = load_queries("cranfield"), load_qrels("cranfield")
    rng = random.Random(0)
    texts, lists, positions = [], [], []
    for query_id in [query_id for query_id in queries if query_id in qrels][:count]:
        relevant = max(qrels[query_id], key=qrels[query_id].get)
        unjudged = [doc_id for doc_id, text in documents.items() if text and doc_id not in qrels[query_id]]
        ids = [*rng.sample(unjudged, candidates - 1), relevant]
        rng.shuffle(ids)
        texts.append(queries[query_id])
        lists.append([documents[doc_id] for doc_id in ids])
        positions.append(ids.index(relevant))
    return texts, lists, positions


@pytest.mark.real_model
def test_smollm2_pointwise_reranking_works(smollm2_dir):
    """SmolLM2 answers the pointwise yes/no question (most replies start with yes or no) and ranks the relevant
    document of a Cranfield query above four unjudged ones far better than chance."""
    queries, candidates, relevant = cranfield_candidates(6)
    reranker = PointwiseReranker(TransformersChatLM(str(smollm2_dir)), RerankConfig(max_passage_words=60))
    orders = reranker.rerank(queries, candidates)
    counts = reply_counts(reranker.stats)
    assert sum(counts.values()) == 6 * 5 and counts["valid"] >= 0.5 * sum(counts.values())
    mean_rank = sum(order.index(position) for order, position in zip(orders, relevant, strict=True)) / 6
    assert mean_rank < 1.5  # chance: 2.0


@pytest.mark.real_model
def test_smollm2_query_likelihood_ranks_the_relevant_document_first_more_often_than_chance(smollm2_dir):
    """log p(query | document) under SmolLM2 puts the relevant document of a Cranfield query above four unjudged
    ones far better than chance, with no reply to parse."""
    queries, candidates, relevant = cranfield_candidates(6)
    reranker = QueryLikelihoodReranker(TransformersChatLM(str(smollm2_dir)), RerankConfig(max_passage_words=60))
    orders = reranker.rerank(queries, candidates)
    assert reranker.stats == {"pairs scored": 6 * 5} and not reply_counts(reranker.stats)
    mean_rank = sum(order.index(position) for order, position in zip(orders, relevant, strict=True)) / 6
    assert mean_rank < 1.0  # chance: 2.0


@pytest.mark.real_model
def test_smollm2_cannot_rank_lists_and_the_counts_say_so(smollm2_dir):
    """SmolLM2-135M's listwise replies are mostly partial rankings, repaired into the first-stage order: every
    window is counted by status, and the counts flag the reranker as not working (the pipeline stops on it)."""
    queries, candidates, _ = cranfield_candidates(4)
    reranker = ListwiseReranker(TransformersChatLM(str(smollm2_dir)), RerankConfig(window=5, max_passage_words=40))
    orders = reranker.rerank(queries, candidates)
    assert all(sorted(order) == [0, 1, 2, 3, 4] for order in orders)
    counts = reply_counts(reranker.stats)
    assert sum(counts.values()) == 4  # one window per query
    replies = {f"rerank {status}": count for status, count in counts.items()}
    assert unusable_llm_problems(replies, AugmentConfig(rerank="listwise"), minimum=4)
