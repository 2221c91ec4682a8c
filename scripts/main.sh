#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the main job on the embedded default LLM and the bundled Cranfield corpus.
# Extra arguments go to `st-drama pipeline`, e.g. `--preset full`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec .venv/bin/st-drama pipeline cranfield runs/main "$@"
