"""LLM rerankers behind one interface: ``rerank(queries, candidate_lists)`` returns, per query, a permutation of its
candidates (indices, best first).

- :class:`ListwiseReranker`: RankGPT-style. The LLM sees a window of numbered passages and answers with a ranking
  ``[2] > [1] > [3]``; windows slide from the bottom of the list to the top, so strong passages bubble up. Replies
  that are invalid or partial are repaired (unknown numbers dropped, repeats ignored, missing passages appended in
  their previous order); a reply with no usable number leaves the window as it was.
- :class:`PointwiseReranker`: the probability that the LLM answers "yes" to "does the passage answer the query?".
- :class:`QueryLikelihoodReranker`: log p(query | passage), the LLM's likelihood of writing the query for the passage.
- :class:`~st_drama.augment.pairrm.PairRMReranker`: llm-blender's pairwise ranker.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Protocol

from .chat import ChatLM, Conversation
from .config import RERANKERS, RerankConfig, SamplingConfig
from .synthetic_queries import truncate_words
from .text import words

PERMUTATION_VALID = "valid"
PERMUTATION_REPAIRED = "repaired"
PERMUTATION_INVALID = "invalid"
REPLY_STATUSES = (PERMUTATION_VALID, PERMUTATION_REPAIRED, PERMUTATION_INVALID)
# Pointwise: a pair counts as answered when the first token of the LLM's reply is "yes" or "no" with at least this
# probability; below it, the LLM is not answering the question and P(yes) carries little.
MIN_YES_NO_PROBABILITY = 0.5

_BRACKETED_NUMBER = re.compile(r"\[\s*(\d+)\s*\]")
_BARE_NUMBER = re.compile(r"\d+")


class Reranker(Protocol):
    """Reorders each query's candidate passages; ``stats`` counts what it did (for an LLM reranker, its replies by
    status: ``"<unit> valid"``, ``"<unit> repaired"``, ``"<unit> invalid"``)."""

    stats: Counter

    def rerank(self, queries: Sequence[str], candidates: Sequence[Sequence[str]]) -> list[list[int]]:
        """Per query, all indices of its candidates, best first."""
        ...


def parse_permutation(reply: str, size: int, passages: Sequence[str] | None = None) -> tuple[list[int], str]:
    """A full permutation of ``range(size)`` from a reply such as ``"[3] > [1] > [2]"`` (identifiers 1-based).

    Read in this order: bracketed identifiers; else, when ``passages`` are given, lines that quote a passage (small
    LLMs often list passage texts instead of identifiers); else bare numbers. Out-of-range and repeated identifiers
    are dropped and missing ones appended in their original order.

    Returns:
        The permutation and its status: ``"valid"`` (the reply was a complete permutation), ``"repaired"`` or
        ``"invalid"`` (nothing usable: the identity).
    """
    bracketed = [int(number) for number in _BRACKETED_NUMBER.findall(reply)]
    quoted = _quoted_passages(reply, passages) if passages and not bracketed else []
    if bracketed:
        identifiers = bracketed
    elif quoted:
        identifiers = [index + 1 for index in quoted]
    else:
        identifiers = [int(number) for number in _BARE_NUMBER.findall(reply)]
    order = list(dict.fromkeys(identifier - 1 for identifier in identifiers if 1 <= identifier <= size))
    if not order:
        return list(range(size)), PERMUTATION_INVALID
    complete = not quoted and len(order) == size and len(identifiers) == size
    order += [index for index in range(size) if index not in set(order)]
    return order, PERMUTATION_VALID if complete else PERMUTATION_REPAIRED


_ENUMERATION = re.compile(r"^\s*(?:[-*\u2022]|\d+\s*[.):])\s*")


def _quoted_passages(reply: str, passages: Sequence[str], min_words: int = 3, min_overlap: float = 0.6) -> list[int]:
    """Passages a reply quotes, one per line, in reply order: a line counts as quoting the passage that holds the
    largest share (at least ``min_overlap``) of its words."""
    vocabularies = [set(words(passage)) for passage in passages]
    quoted: list[int] = []
    for line in reply.splitlines():
        line_words = words(_ENUMERATION.sub("", line))
        if len(line_words) < min_words:
            continue
        shares = [sum(word in vocabulary for word in line_words) / len(line_words) for vocabulary in vocabularies]
        best = max(range(len(passages)), key=lambda index: shares[index])
        if shares[best] >= min_overlap and best not in quoted:
            quoted.append(best)
    return quoted


def sliding_windows(size: int, window: int, step: int) -> list[tuple[int, int]]:
    """``(start, end)`` windows from the bottom of a ``size``-long list to the top, the last one starting at 0."""
    if size <= window:
        return [(0, size)] if size > 1 else []
    windows = []
    end = size
    while True:
        start = max(end - window, 0)
        windows.append((start, end))
        if start == 0:
            return windows
        end -= step


def sliding_window_rerank(
    num_lists: int,
    list_sizes: Sequence[int],
    window: int,
    step: int,
    rank_windows: Callable[[list[tuple[int, list[int]]]], list[list[int]]],
) -> list[list[int]]:
    """Rerank many lists with sliding windows, one batched call per window step.

    Args:
        num_lists: How many candidate lists.
        list_sizes: Length of each list.
        window: Passages per window.
        step: How far the window moves up each time.
        rank_windows: Given ``(list_number, candidate_indices)`` for each window of a step, the local permutation of
            each window (indices into that window, best first).

    Returns:
        Per list, its candidate indices best first.
    """
    orders = [list(range(list_sizes[number])) for number in range(num_lists)]
    window_plans = [sliding_windows(list_sizes[number], window, step) for number in range(num_lists)]
    for step_number in range(max((len(plan) for plan in window_plans), default=0)):
        active = [number for number in range(num_lists) if step_number < len(window_plans[number])]
        requests = []
        for number in active:
            start, end = window_plans[number][step_number]
            requests.append((number, orders[number][start:end]))
        permutations = rank_windows(requests)
        for (number, window_items), permutation in zip(requests, permutations, strict=True):
            start, end = window_plans[number][step_number]
            orders[number][start:end] = [window_items[position] for position in permutation]
    return orders


def listwise_conversation(query: str, passages: Sequence[str], max_passage_words: int) -> Conversation:
    """A RankGPT-style prompt: numbered passages, then the request for a ``[] > []`` ranking."""
    numbered = "\n".join(
        f"[{number}] {truncate_words(' '.join(passage.split()), max_passage_words)}"
        for number, passage in enumerate(passages, start=1)
    )
    count = len(passages)
    return [
        {"role": "system", "content": "You rank passages by how well they answer a search query."},
        {
            "role": "user",
            "content": (
                f"Here are {count} passages, each with an identifier in brackets.\n\n{numbered}\n\n"
                f"Search query: {query}\n\n"
                f"Rank all {count} passages from most to least relevant to the search query. Answer only with the "
                f"identifiers in the form [2] > [1] > [3], nothing else."
            ),
        },
    ]


class ListwiseReranker:
    """RankGPT-style listwise reranking with an LLM (greedy decoding), sliding windows, repaired permutations.

    ``stats`` counts windows by permutation status (``"valid"``, ``"repaired"``, ``"invalid"``).
    """

    def __init__(self, chat_lm: ChatLM, settings: RerankConfig = RerankConfig()) -> None:
        self.chat_lm = chat_lm
        self.settings = settings
        self.stats: Counter = Counter()

    def rerank(self, queries: Sequence[str], candidates: Sequence[Sequence[str]]) -> list[list[int]]:
        def rank_windows(requests: list[tuple[int, list[int]]]) -> list[list[int]]:
            return self._rank_windows(queries, candidates, requests)

        sizes = [len(passages) for passages in candidates]
        return sliding_window_rerank(len(queries), sizes, self.settings.window, self.settings.step, rank_windows)

    def _rank_windows(
        self,
        queries: Sequence[str],
        candidates: Sequence[Sequence[str]],
        requests: list[tuple[int, list[int]]],
    ) -> list[list[int]]:
        permutations: list[list[int]] = [[] for _ in requests]
        # Windows of equal size share a generate call (and a stop rule: all identifiers named).
        for size in sorted({len(items) for _, items in requests}):
            positions = [position for position, (_, items) in enumerate(requests) if len(items) == size]
            window_passages = [
                [candidates[requests[position][0]][index] for index in requests[position][1]] for position in positions
            ]
            conversations = [
                listwise_conversation(queries[requests[position][0]], passages, self.settings.max_passage_words)
                for position, passages in zip(positions, window_passages, strict=True)
            ]
            sampling = SamplingConfig(max_new_tokens=6 * size + 8)
            replies = self.chat_lm.generate(conversations, sampling, seed=0, stop_when=_names_all(size))
            for position, reply, conversation_passages in zip(positions, replies, window_passages, strict=True):
                permutation, status = parse_permutation(reply.text, size, conversation_passages)
                self.stats[f"windows {status}"] += 1
                permutations[position] = permutation
        return permutations


def _names_all(size: int) -> Callable[[str], bool]:
    def stop(reply: str) -> bool:
        named = {int(number) for number in _BRACKETED_NUMBER.findall(reply)}
        return named >= set(range(1, size + 1))

    return stop


def pointwise_conversation(query: str, passage: str, max_passage_words: int) -> Conversation:
    passage = truncate_words(" ".join(passage.split()), max_passage_words)
    return [
        {"role": "system", "content": "You judge whether a passage answers a search query."},
        {
            "role": "user",
            "content": f"Search query: {query}\n\nPassage: {passage}\n\n"
            "Does the passage answer the search query? Answer yes or no.",
        },
    ]


class PointwiseReranker:
    """Scores each (query, passage) pair by the LLM's probability of answering "yes" rather than "no".

    Needs next-token probabilities, so the transformers backend (:class:`~st_drama.augment.llm.TransformersChatLM`).
    """

    def __init__(self, chat_lm: ChatLM, settings: RerankConfig = RerankConfig()) -> None:
        if not hasattr(chat_lm, "next_token_probabilities"):
            raise ValueError("Pointwise reranking needs the transformers backend (next-token probabilities).")
        self.chat_lm = chat_lm
        self.settings = settings
        self.stats: Counter = Counter()
        self.yes_ids = _first_token_ids(chat_lm.tokenizer, ("yes", "Yes", " yes", " Yes", "YES"))
        self.no_ids = _first_token_ids(chat_lm.tokenizer, ("no", "No", " no", " No", "NO")) - self.yes_ids
        if not self.yes_ids or not self.no_ids:
            raise ValueError("The tokenizer cannot tell 'yes' from 'no' by their first token.")

    def scores(self, queries: Sequence[str], candidates: Sequence[Sequence[str]]) -> list[list[float]]:
        """P(yes) / (P(yes) + P(no)) for each candidate of each query."""
        conversations = [
            pointwise_conversation(query, passage, self.settings.max_passage_words)
            for query, passages in zip(queries, candidates, strict=True)
            for passage in passages
        ]
        if not conversations:
            return [[] for _ in queries]
        probabilities = self.chat_lm.next_token_probabilities(conversations)
        yes = probabilities[:, sorted(self.yes_ids)].sum(dim=1)
        no = probabilities[:, sorted(self.no_ids)].sum(dim=1)
        flat = (yes / (yes + no).clamp_min(1e-12)).tolist()
        answered = int(((yes + no) >= MIN_YES_NO_PROBABILITY).sum())
        self.stats["pairs valid"] += answered
        self.stats["pairs invalid"] += len(flat) - answered
        return _per_list(flat, candidates)

    def rerank(self, queries: Sequence[str], candidates: Sequence[Sequence[str]]) -> list[list[int]]:
        return _best_first(self.scores(queries, candidates))


def query_likelihood_conversation(passage: str, max_passage_words: int) -> Conversation:
    passage = truncate_words(" ".join(passage.split()), max_passage_words)
    return [
        {"role": "system", "content": "You write search queries."},
        {"role": "user", "content": f"Passage: {passage}\n\nWrite a search query that this passage answers."},
    ]


class QueryLikelihoodReranker:
    """Scores each (query, passage) pair by log p(query | passage): how likely the LLM is to write the query when
    asked for a query the passage answers (UPR, Sachan et al., 2022). One forward pass per pair and no reply to
    parse, so it works with LLMs too small for listwise or yes/no answers.

    Needs token log-probabilities, so the transformers backend (:class:`~st_drama.augment.llm.TransformersChatLM`).
    ``stats`` counts the pairs scored.
    """

    def __init__(self, chat_lm: ChatLM, settings: RerankConfig = RerankConfig()) -> None:
        if not hasattr(chat_lm, "reply_log_likelihoods"):
            raise ValueError("Query-likelihood reranking needs the transformers backend (token log-probabilities).")
        self.chat_lm = chat_lm
        self.settings = settings
        self.stats: Counter = Counter()

    def scores(self, queries: Sequence[str], candidates: Sequence[Sequence[str]]) -> list[list[float]]:
        """log p(query | passage) for each candidate of each query."""
        conversations = [
            query_likelihood_conversation(passage, self.settings.max_passage_words)
            for passages in candidates
            for passage in passages
        ]
        replies = [query for query, passages in zip(queries, candidates, strict=True) for _ in passages]
        flat = self.chat_lm.reply_log_likelihoods(conversations, replies) if conversations else []
        self.stats["pairs scored"] += len(flat)
        return _per_list(flat, candidates)

    def rerank(self, queries: Sequence[str], candidates: Sequence[Sequence[str]]) -> list[list[int]]:
        return _best_first(self.scores(queries, candidates))


def _per_list(flat: list[float], candidates: Sequence[Sequence[str]]) -> list[list[float]]:
    """Scores of all pairs, in order, regrouped into one list per query."""
    result, offset = [], 0
    for passages in candidates:
        result.append(flat[offset : offset + len(passages)])
        offset += len(passages)
    return result


def _best_first(scores: list[list[float]]) -> list[list[int]]:
    # Stable sort: ties keep the first-stage order.
    return [sorted(range(len(row)), key=lambda index, row=row: -row[index]) for row in scores]


def _first_token_ids(tokenizer, variants: Sequence[str]) -> set[int]:
    ids = set()
    for variant in variants:
        token_ids = tokenizer.encode(variant, add_special_tokens=False)
        if token_ids:
            ids.add(token_ids[0])
    return ids


def make_reranker(
    kind: str,
    chat_lm: ChatLM | None = None,
    settings: RerankConfig = RerankConfig(),
    pairrm_weights: str | None = None,
    pairrm_backbone: str | None = None,
    device: str | None = None,
) -> Reranker | None:
    """The reranker called ``kind`` (one of :data:`RERANKERS`); None for ``"none"``."""
    if kind == "none":
        return None
    if kind == "listwise":
        return ListwiseReranker(_required(chat_lm, kind), settings)
    if kind == "pointwise":
        return PointwiseReranker(_required(chat_lm, kind), settings)
    if kind == "likelihood":
        return QueryLikelihoodReranker(_required(chat_lm, kind), settings)
    if kind == "pairrm":
        from .pairrm import PairRMReranker

        return PairRMReranker(pairrm_weights, backbone_path=pairrm_backbone, device=device, settings=settings)
    raise ValueError(f"Unknown reranker {kind!r}; choose one of {RERANKERS}.")


def _required(chat_lm: ChatLM | None, kind: str) -> ChatLM:
    if chat_lm is None:
        raise ValueError(f"The {kind} reranker needs an LLM.")
    return chat_lm


def reply_counts(stats: Counter) -> Counter:
    """An LLM reranker's replies by status (``valid``, ``repaired``, ``invalid``), whatever its unit (windows, pairs);
    empty for rerankers without replies to judge (PairRM)."""
    counts: Counter = Counter()
    for key, value in stats.items():
        status = key.rsplit(" ", 1)[-1]
        if status in REPLY_STATUSES:
            counts[status] += value
    return counts
