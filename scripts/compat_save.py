"""Used by compat_oldest.sh: ``save FOLDER`` writes DRAMA- and LLaRA-style models with the newest releases and their
embeddings; ``check FOLDER`` loads them (without st_drama on the path for the standard folder) on the oldest
releases and compares."""

from __future__ import annotations

import json
import sys
from pathlib import Path

TEXTS = ["what is the lift of a wing", "an experimental study of a wing in a propeller slipstream"]


def main(action: str, folder: str) -> None:
    import numpy as np
    from sentence_transformers import SentenceTransformer

    root = Path(folder)
    if action == "save":
        from st_drama import build_model

        for style in ("drama", "llara"):
            model = build_model("smollm2-135m", style=style, max_seq_length=64)
            model.save(str(root / style))
            vectors = {"query": model.encode_query(TEXTS).tolist(), "document": model.encode_document(TEXTS).tolist()}
            (root / f"{style}.json").write_text(json.dumps(vectors))
        return
    for style in ("drama", "llara"):
        model = SentenceTransformer(str(root / style), trust_remote_code=True, device="cpu")
        expected = json.loads((root / f"{style}.json").read_text())
        for task, encode in (("query", model.encode_query), ("document", model.encode_document)):
            difference = np.abs(encode(TEXTS) - np.array(expected[task])).max()
            assert difference < 1e-4, (style, task, difference)
        version = __import__("sentence_transformers").__version__
        print(f"{style}: loads on sentence-transformers {version} to the same embeddings")


if __name__ == "__main__":
    main(*sys.argv[1:3])
