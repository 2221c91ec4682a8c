"""Run under torchrun: each process embeds its half of a batch; the loss gathers negatives across processes."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from st_drama import build_model
from st_drama.training.contrastive import contrastive_loss


def main() -> None:
    model_dir, batch_file, output_file = sys.argv[1:4]
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    batch = json.loads(Path(batch_file).read_text(encoding="utf-8"))
    half = len(batch["query"]) // world
    local = {column: texts[rank * half : (rank + 1) * half] for column, texts in batch.items()}
    model = build_model(model_dir)
    loss = contrastive_loss(model, temperature=0.05, matryoshka_dims=None)
    assert loss.gather_across_devices, "WORLD_SIZE > 1 must turn on cross-device negatives"
    features = [model[0].preprocess(local["query"], task="query")]
    features += [model[0].preprocess(local[column], task="document") for column in ("positive", "negative_1")]
    value = loss(features, None).detach()
    dist.all_reduce(value)
    if rank == 0:
        with open(output_file, "w", encoding="utf-8") as handle:
            json.dump({"loss": value.item() / world, "world": world}, handle)
    dist.destroy_process_group()


if __name__ == "__main__":
    torch.manual_seed(0)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
