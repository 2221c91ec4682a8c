"""LLaRA training step: EBAE + EBAR from one forward pass vs two separate passes, same model, same batch, one run.

A step is forward + backward of :class:`~st_drama.losses.EBAEEBARLoss` (``single_pass=True`` vs ``False``) on
Cranfield chunks. Prints seconds per step and the ratio two-pass / one-pass (> 1 means the joint pass is faster).

    .venv/bin/python benchmarks/llara_step.py --batch-size 8 --chunk-tokens 128 --steps 5
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch

from st_drama import build_model
from st_drama.corpus import bundled_collection
from st_drama.llara import build_pretraining_dataset
from st_drama.losses import EBAEEBARLoss
from st_drama.precision import bf16_is_fast


def step_seconds(loss: EBAEEBARLoss, batch: list[dict[str, torch.Tensor]], steps: int, bf16: bool) -> float:
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    durations = []
    for step in range(steps + 1):
        loss.model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        with autocast:
            value = loss(batch, None)
        value.backward()
        if step:  # the first step warms up
            durations.append(time.perf_counter() - start)
    return statistics.median(durations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--chunk-tokens", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--bf16", dest="bf16", action="store_true", default=bf16_is_fast(), help="bf16 autocast.")
    parser.add_argument("--fp32", dest="bf16", action="store_false", help="float32 (default where bf16 is slow).")
    args = parser.parse_args()

    model = build_model(args.model, style="llara", max_seq_length=args.chunk_tokens + 64)
    rows = build_pretraining_dataset(
        bundled_collection("cranfield"), model[0].tokenizer, args.chunk_tokens, max_documents=50, skip_malformed=True
    )
    paired = rows.filter(lambda row: bool(row["next"])).select(range(args.batch_size))
    backbone = model[0]
    batch = [backbone.preprocess(paired["text"]), backbone.preprocess(paired["next"])]
    tokens = int(batch[0]["attention_mask"].sum())
    print(
        f"batch {args.batch_size} x ~{tokens // args.batch_size} tokens, bf16={args.bf16}, "
        f"{torch.get_num_threads()} threads, median of {args.steps} steps"
    )
    seconds = {}
    for label, single_pass in (("two passes", False), ("one pass", True)):
        seconds[label] = step_seconds(EBAEEBARLoss(model, single_pass=single_pass), batch, args.steps, args.bf16)
        print(f"{label:<12}{seconds[label]:>8.2f} s/step")
    print(f"ratio two-pass / one-pass: {seconds['two passes'] / seconds['one pass']:.2f}x")


if __name__ == "__main__":
    main()
