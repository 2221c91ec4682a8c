"""Synthetic-query throughput: batched generation (left-padded batches, prompts sorted by length, early stop once
the query line is written) vs a loop that generates for one document at a time, on the same documents and the same
LLM, in one run. Both use bf16 autocast on CPU (``--precision auto``) and the same decoding settings.

Prints documents/s and accepted queries/s for each, and the ratio batched / one-at-a-time (> 1: batching is faster).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/augment.py --docs 32 --batch-size 8
"""

from __future__ import annotations

import argparse
import time

from st_drama import resolve_model_path
from st_drama.augment.config import GenerationConfig, SamplingConfig
from st_drama.augment.llm import TransformersChatLM
from st_drama.augment.synthetic_queries import SyntheticQueryGenerator
from st_drama.corpus import load_corpus
from st_drama.languages import detect_language


def timed_generation(generator: SyntheticQueryGenerator, texts: list[str], languages: list[str], one_at_a_time: bool):
    """Seconds taken and the results; ``one_at_a_time`` calls the generator once per document."""
    start = time.perf_counter()
    if one_at_a_time:
        results = [
            result
            for index, (text, language) in enumerate(zip(texts, languages, strict=True))
            for result in generator.generate([text], [language], seed=index)
        ]
    else:
        results = generator.generate(texts, languages, seed=0)
    return time.perf_counter() - start, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--corpus", default="cranfield", help="A corpus st_drama.corpus.load_corpus reads.")
    parser.add_argument("--docs", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"))
    args = parser.parse_args()

    documents = load_corpus(args.corpus, skip_malformed=True)[: args.docs]
    texts = [document.full_text for document in documents]
    languages = [detect_language(text).iso for text in texts]
    model_path = resolve_model_path(args.model)
    settings = GenerationConfig(sampling=SamplingConfig(args.max_new_tokens, args.temperature, 0.9))
    batched_lm = TransformersChatLM(model_path, precision=args.precision, batch_size=args.batch_size)
    single_lm = TransformersChatLM(model_path, precision=args.precision, batch_size=1)
    batched = SyntheticQueryGenerator(batched_lm, settings)
    single = SyntheticQueryGenerator(single_lm, settings)
    timed_generation(batched, texts[:2], languages[:2], one_at_a_time=False)  # warm-up (kernels, caches)

    print(f"{len(texts)} documents from {args.corpus}, model {args.model}, precision {args.precision}, "
          f"max_new_tokens {args.max_new_tokens}, temperature {args.temperature}")  # fmt: skip
    rates = {}
    for name, generator, one_at_a_time in (
        (f"batched (batch {args.batch_size})", batched, False),
        ("one document at a time", single, True),
    ):
        seconds, results = timed_generation(generator, texts, languages, one_at_a_time)
        accepted = sum(result.query is not None for result in results)
        rates[name] = len(results) / seconds
        print(
            f"{name:>24}: {seconds:7.1f} s  {len(results) / seconds:6.3f} documents/s  "
            f"{accepted / seconds:6.3f} accepted queries/s  ({accepted}/{len(results)} accepted)"
        )
    batched_rate, single_rate = rates.values()
    print(f"ratio batched / one-at-a-time (documents/s): {batched_rate / single_rate:.2f}x")


if __name__ == "__main__":
    main()
