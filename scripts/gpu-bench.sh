#!/usr/bin/env bash
# The CUDA provider end to end on a machine with an NVIDIA GPU: for the small CNN at 64 px and VGG16 at
# 224 px, each in FP32 and FP16, `docsort bench pipeline --a4 --provider cuda` (watch folder to routed
# files, on the A4 scan mix) and, in the same run, bare ONNX Runtime on CUDA over the same pages.
# Prints one JSON line per run and a table; with --write-docs records the rows in docs/benchmarks.md.
#
#   scripts/gpu-bench.sh [--pages 200] [--database-url postgresql+psycopg://...] [--write-docs]
#
# Needs: the project installed with onnxruntime-gpu in place of onnxruntime (the `gpu` extra),
# TensorFlow for the one-off training of the two models (CPU is enough: a few epochs on A4 pages; VGG16
# from random weights, `--weights none`, since speed does not depend on them), Redis and a database as
# for the other benchmarks (`scripts/ensure-services.sh`). FP16 graphs are the FP32 ones converted by
# onnxruntime.transformers.float16 with FP32 inputs and outputs kept (the worker feeds uint8-derived
# FP32 pages and reads FP32 scores), and the manifest's sha256 rewritten for the new file.
set -euo pipefail

PAGES=200
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --pages) PAGES="$2"; shift 2 ;;
    --database-url) EXTRA+=(--database-url "$2"); shift 2 ;;
    --write-docs) EXTRA+=(--write-docs); shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
WORK="${GPU_BENCH_DIR:-${TMPDIR:-/tmp}/docsort-gpu-bench}"
MODELS="$WORK/models"
TRAIN="$WORK/a4-train"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
cd "$ROOT"

"$PY" - <<'EOF'
import onnxruntime as ort
providers = ort.get_available_providers()
print("onnxruntime", ort.__version__, providers)
if "CUDAExecutionProvider" not in providers:
    raise SystemExit("no CUDAExecutionProvider: install onnxruntime-gpu (the gpu extra) with CUDA and cuDNN")
EOF
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

mkdir -p "$WORK"
[ -f "$TRAIN/truth.json" ] || "$PY" -m docsort.cli synth "$TRAIN" --a4 --pages 400 --seed 1 --quiet

latest() { ls -d "$MODELS/$1"/*/ | sort | tail -1 | sed 's:/$::'; }
train() {  # name, then docsort train options
  local name="$1"; shift
  if [ ! -d "$MODELS/$name" ]; then
    "$PY" -m docsort.cli train "$TRAIN" --models-dir "$MODELS" --name "$name" "$@" >"$WORK/train-$name.log" 2>&1
  fi
  latest "$name"
}
SMALL="$(train small --backbone small-cnn --epochs 60)"
VGG="$(train vgg16 --backbone vgg16 --image-size 224 --weights none --epochs 2 --fine-tune-epochs 0)"

fp16_copy() {  # an FP32 version folder -> a sibling folder with the FP16 graph and its sha256
  local src="$1" dst="$1-fp16"
  [ -d "$dst" ] || "$PY" - "$src" "$dst" <<'EOF'
import shutil, sys
from pathlib import Path
import onnx
from onnxruntime.transformers.float16 import convert_float_to_float16
from schema.files import sha256_file
from schema.manifest import load_manifest, write_manifest
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
shutil.copytree(src, dst)
manifest = load_manifest(dst)
onnx_path = dst / manifest.onnx_file
onnx.save(convert_float_to_float16(onnx.load(str(onnx_path)), keep_io_types=True), str(onnx_path))
write_manifest(dst, manifest.model_copy(update={"sha256": sha256_file(onnx_path), "int8": None, "load": "fp32"}))
EOF
  echo "$dst"
}

RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
for model in "$SMALL" "$(fp16_copy "$SMALL")" "$VGG" "$(fp16_copy "$VGG")"; do
  echo "== $model" >&2
  "$PY" -m docsort.cli bench pipeline --model "$model" --a4 --pages "$PAGES" --provider cuda \
    --processes 2 "${EXTRA[@]}" --json | tail -1 | tee -a "$RESULTS"
done

"$PY" - "$RESULTS" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
print("| model | pages | database | end to end pages/s | bare ORT (CUDA) pages/s | pipeline / bare ORT |")
print("|---|---|---|---|---|---|")
for r in rows:
    share = r["pipeline_pages_per_s"] / r["ort_pages_per_s"]
    print(f"| {r['model']} | {r['pages']} | {r['database']} | {r['pipeline_pages_per_s']:.1f} | "
          f"{r['ort_pages_per_s']:.1f} | {share:.1%} |")
print("machine:", rows[0]["machine"] if rows else "-", "; load", rows[0]["load"] if rows else "-")
EOF
