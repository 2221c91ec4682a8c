"""Does a word-level vocabulary for the corpus's language help an English-centric LLM match its words? Adds every
corpus word that the LLM's tokenizer splits into two or more pieces as one token (with its leading space, the way
byte-level BPE marks a word start) whose input embedding is the mean of its pieces' embeddings, the usual
initialisation for vocabulary extension, and saves the result as a transformers folder for ``--model``.

SmolLM2 spends about 5.5 tokens on an Arabic word (5.3 per run of word characters, as this script counts), so 128
tokens hold about 23 words; with the Arabic collection's words added a paragraph takes a median of 125 tokens
instead of 468.

    .venv/bin/python experiments/extend_vocabulary.py ../shared/data/arcd_ar_subset runs/smollm2-ar-words
    st-drama pipeline ../shared/data/arcd_ar_subset runs/ar-words --model runs/smollm2-ar-words
    st-drama pipeline ../shared/data/arcd_ar_subset runs/ar-words64 --model runs/smollm2-ar-words \\
        --train-steps 64 --crops-per-doc 16
"""

from __future__ import annotations

import argparse
import re
import statistics
from collections import Counter
from pathlib import Path

import torch
from tokenizers import AddedToken
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from st_drama.corpus import load_corpus, resolve_collection_path
from st_drama.default_llm import resolve_model_path

# Runs of word characters: an Arabic word with diacritics splits at them (combining marks are not \w), and the
# added token for its first part then matches the start of the whole word.
WORD = re.compile(r"\w+")


def corpus_words(texts: list[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(WORD.findall(text))
    return counts


def multi_piece_words(
    counts: Counter[str], tokenizer: PreTrainedTokenizerBase, min_count: int
) -> dict[str, list[int]]:
    """Words of two or more characters seen at least ``min_count`` times that the tokenizer splits, with the pieces
    of the spaced word."""
    pieces_by_word = {}
    for word, count in counts.items():
        if count < min_count or len(word) < 2:
            continue
        pieces = tokenizer(" " + word, add_special_tokens=False).input_ids
        if len(pieces) >= 2:
            pieces_by_word[word] = pieces
    return pieces_by_word


def extend(model_path: str, pieces_by_word: dict[str, list[int]]) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    # Added tokens match leftmost-longest on the raw text; the leading space keeps them at word starts and makes
    # decoding give the text back.
    new_tokens = [" " + word for word in pieces_by_word]
    tokenizer.add_tokens([AddedToken(token, single_word=False, normalized=False) for token in new_tokens])
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    embeddings = model.get_input_embeddings().weight.data
    for token, pieces in zip(new_tokens, pieces_by_word.values(), strict=True):
        embeddings[tokenizer.convert_tokens_to_ids(token)] = embeddings[pieces].mean(dim=0)
    return model, tokenizer


def token_lengths(tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> list[int]:
    return [len(tokenizer(text, add_special_tokens=False).input_ids) for text in texts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("collection", help="BEIR-layout folder (only its corpus.jsonl is read).")
    parser.add_argument("output", type=Path, help="Folder for the extended transformers model.")
    parser.add_argument("--model", default="smollm2-135m", help="Source LLM (default: the embedded SmolLM2-135M).")
    parser.add_argument("--min-count", type=int, default=1, help="Add words seen at least this often (default 1).")
    args = parser.parse_args()

    documents = load_corpus(resolve_collection_path(args.collection))
    texts = [document.full_text for document in documents]
    model_path = resolve_model_path(args.model)
    original = AutoTokenizer.from_pretrained(model_path)
    counts = corpus_words(texts)
    pieces_by_word = multi_piece_words(counts, original, args.min_count)
    model, tokenizer = extend(model_path, pieces_by_word)
    model.config.vocab_size = len(tokenizer)
    model.save_pretrained(args.output)
    tokenizer.save_pretrained(args.output)

    words = sum(counts.values())
    lengths_before, lengths_after = token_lengths(original, texts), token_lengths(tokenizer, texts)
    print(f"{len(documents)} documents, {len(counts)} distinct words; added {len(pieces_by_word)} as tokens")
    print(f"tokens per word: {sum(lengths_before) / words:.2f} -> {sum(lengths_after) / words:.2f}")
    print(f"median tokens per document: {statistics.median(lengths_before)} -> {statistics.median(lengths_after)}")
    print(f"saved to {args.output}")


if __name__ == "__main__":
    main()
