"""Does Arabic orthographic normalization help? Writes a copy of a BEIR folder whose corpus and query texts are
normalized the way Arabic search engines index text, so that BM25 and the pipeline can be run on it unchanged.

Two rule sets:
- ``marks``: drop the short-vowel and other combining marks (U+0610-061A, U+064B-065F, U+0670, the Quranic marks)
  and the tatweel (U+0640).
- ``full`` (default): ``marks``, then alef with hamza or madda -> bare alef, alef maqsura -> yeh, teh marbuta -> heh.

The queries of arcd_ar_subset are typed without marks and often without hamza ("ما اهمية" where the paragraph
writes "أهمية"), so the rules close spelling gaps between queries and documents. Training and evaluating on the
normalized copy is what a model that normalizes every text it encodes would do.

    .venv/bin/python experiments/arabic_normalization.py ../shared/data/arcd_ar_subset runs/arcd-normalized
    st-drama evaluate smollm2-135m runs/arcd-normalized --baselines bm25 --fp32 --output runs/arcd-normalized-eval
    st-drama pipeline runs/arcd-normalized runs/ar-normalized
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

from st_drama.corpus import read_jsonl, resolve_collection_path

COMBINING_MARKS_AND_TATWEEL = re.compile(
    "[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e8\u06ea-\u06ed\u0640]"
)
LETTER_FOLDS = str.maketrans(
    {"\u0622": "\u0627", "\u0623": "\u0627", "\u0625": "\u0627", "\u0649": "\u064a", "\u0629": "\u0647"}
)
RULES = ("marks", "full")


def normalize_arabic(text: str, rules: str = "full") -> str:
    text = COMBINING_MARKS_AND_TATWEEL.sub("", text)
    return text.translate(LETTER_FOLDS) if rules == "full" else text


def normalize_file(source: Path, target: Path, rules: str) -> tuple[int, int]:
    """Copy a JSONL file with its ``text`` and ``title`` fields normalized; returns (rows, rows changed)."""
    rows = changed = 0
    with target.open("w", encoding="utf-8") as handle:
        for _, row in read_jsonl(source):
            before = (row.get("text"), row.get("title"))
            for field in ("text", "title"):
                if isinstance(row.get(field), str):
                    row[field] = normalize_arabic(row[field], rules)
            rows += 1
            changed += before != (row.get("text"), row.get("title"))
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return rows, changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("collection", help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/).")
    parser.add_argument("output", help="Folder for the normalized copy.")
    parser.add_argument("--rules", choices=RULES, default="full")
    args = parser.parse_args()

    source = resolve_collection_path(args.collection)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    for name in ("corpus.jsonl", "queries.jsonl"):
        rows, changed = normalize_file(source / name, output / name, args.rules)
        print(f"{name}: {changed} of {rows} rows changed ({args.rules} rules)")
    shutil.copytree(source / "qrels", output / "qrels", dirs_exist_ok=True)
    print(f"normalized copy -> {output}")


if __name__ == "__main__":
    main()
