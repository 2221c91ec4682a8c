"""Encoding throughput: st-drama's LlamaBackbone + TokenPooling vs a plain sentence-transformers Transformer +
Pooling on the same weights and the same documents, in one run, in fp32 and bf16.

Both encode with sentence-transformers' own ``encode`` (which sorts by length before batching). The plain model
runs the decoder causally (sentence-transformers' default for a Llama checkpoint); ours runs it bidirectionally
with an explicit 4D mask. Prints documents/s, tokens/s and the ratio ours/plain (> 1 means ours is faster).

    .venv/bin/python benchmarks/encode.py --docs 400 --batch-size 32 --max-seq-length 256
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Normalize, Transformer
from sentence_transformers.sentence_transformer.modules import Pooling

from st_drama import build_model, resolve_model_path
from st_drama.corpus import bundled_collection, load_corpus

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def plain_model(model_path: str, dtype: torch.dtype, max_seq_length: int) -> SentenceTransformer:
    transformer = Transformer(model_path, max_seq_length=max_seq_length, model_kwargs={"dtype": dtype})
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    return SentenceTransformer(modules=[transformer, pooling, Normalize()], device="cpu")


def our_model(model_path: str, dtype: torch.dtype, max_seq_length: int) -> SentenceTransformer:
    return build_model(model_path, max_seq_length=max_seq_length, model_kwargs={"dtype": dtype}, device="cpu")


def count_tokens(model: SentenceTransformer, texts: list[str]) -> int:
    return int(sum(model.preprocess(texts[i : i + 64])["attention_mask"].sum() for i in range(0, len(texts), 64)))


def time_encode(model: SentenceTransformer, texts: list[str], batch_size: int, repeats: int) -> float:
    model.encode_document(texts[:batch_size], batch_size=batch_size)  # warm-up
    durations = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.encode_document(texts, batch_size=batch_size)
        durations.append(time.perf_counter() - start)
    return statistics.median(durations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--docs", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtypes", default="fp32,bf16")
    args = parser.parse_args()

    model_path = resolve_model_path(args.model)
    texts = [
        document.full_text for document in load_corpus(bundled_collection("cranfield"), keep_empty=True)[: args.docs]
    ]
    print(
        f"{len(texts)} Cranfield documents, batch {args.batch_size}, max {args.max_seq_length} tokens, "
        f"{torch.get_num_threads()} threads, median of {args.repeats}"
    )
    print(f"{'dtype':<6}{'model':<28}{'docs/s':>10}{'tokens/s':>12}{'seconds':>10}")
    for dtype_name in args.dtypes.split(","):
        dtype = DTYPES[dtype_name]
        results = {}
        for label, factory in (("plain ST Transformer+Pooling", plain_model), ("st-drama LlamaBackbone", our_model)):
            model = factory(model_path, dtype, args.max_seq_length)
            seconds = time_encode(model, texts, args.batch_size, args.repeats)
            tokens = count_tokens(model, texts)
            results[label] = len(texts) / seconds
            print(f"{dtype_name:<6}{label:<28}{len(texts) / seconds:>10.1f}{tokens / seconds:>12.0f}{seconds:>10.2f}")
            del model
        ratio = results["st-drama LlamaBackbone"] / results["plain ST Transformer+Pooling"]
        print(f"{dtype_name:<6}ratio ours/plain (docs/s): {ratio:.2f}x")


if __name__ == "__main__":
    main()
