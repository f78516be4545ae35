#!/usr/bin/env bash
# Smoke test of `genlab tui` in a real terminal: tmux runs the app, we read the screen.
#
# Launches `genlab tui --model <dir>` in a detached tmux session (140x42), waits for the
# status line to show the loaded model, presses Ctrl+R (run every column), and passes only
# if the columns fill with generated tokens. Uses $MODEL if set, else builds a tiny random
# Llama (tests/conftest.py's build_tiny_model) in a temp dir. Finishes in well under 60 s,
# always removes its tmux session and temp dir, and skips (exit 0) when tmux is missing.
#
#   bash scripts/tui_smoke.sh            # PYTHON=python3 MODEL=path/to/model to override
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"
if ! command -v tmux >/dev/null 2>&1; then
    echo "tui_smoke: SKIP: tmux is not installed (apt-get install tmux)"
    exit 0
fi

SESSION="genlab-tui-smoke-$$"
WORK="$(mktemp -d)"
cleanup() {
    tmux kill-session -t "$SESSION" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

MODEL="${MODEL:-}"
if [ -z "$MODEL" ]; then
    MODEL="$WORK/tiny-llama"
    mkdir -p "$MODEL"
    (cd "$ROOT" && "$PYTHON" - "$MODEL" 2>"$WORK/build.log" <<'PY' || { cat "$WORK/build.log"; exit 1; }
import sys
from pathlib import Path

sys.path.insert(0, "tests")
from conftest import build_tiny_model  # noqa: E402

build_tiny_model(Path(sys.argv[1]), "llama")
PY
    )
fi

pane() { tmux capture-pane -p -t "$SESSION"; }

wait_for() {  # wait_for SECONDS REGEX WHAT
    local deadline=$((SECONDS + $1))
    while [ $SECONDS -lt $deadline ]; do
        if pane | grep -Eq "$2"; then return 0; fi
        if pane | grep -q "model not loaded"; then
            echo "tui_smoke: FAIL: the model did not load:"; pane; exit 1
        fi
        sleep 0.5
    done
    echo "tui_smoke: FAIL: timed out waiting for $3; the screen was:"
    pane
    exit 1
}

tmux new-session -d -s "$SESSION" -x 140 -y 42 \
    "cd '$ROOT' && '$PYTHON' -m genlab tui --model '$MODEL' --device cpu \
     --runs-dir '$WORK/runs'; echo genlab-exited-\$?; sleep 30"

wait_for 45 "params, cpu" "the model to load (status line)"
tmux send-keys -t "$SESSION" C-r
wait_for 30 "generated [0-9]+ tokens" "the generation to finish"

screen="$(pane)"
columns_done=$(grep -Eo "(length|eos)·[0-9]+ tok/s" <<<"$screen" | wc -l)
if [ "$columns_done" -lt 2 ]; then
    echo "tui_smoke: FAIL: expected every column to finish with tokens; the screen was:"
    echo "$screen"
    exit 1
fi

tmux send-keys -t "$SESSION" C-q
wait_for 10 "genlab-exited-[0-9]+" "the app to quit on Ctrl+Q"
if ! pane | grep -q "genlab-exited-0" || pane | grep -q "Traceback"; then
    echo "tui_smoke: FAIL: the app did not exit cleanly:"; pane; exit 1
fi
echo "tui_smoke: OK in ${SECONDS}s: model loaded, $columns_done columns generated, Ctrl+Q quit"
