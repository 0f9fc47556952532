#!/usr/bin/env bash
# The GPU check: one command for a lent GPU machine (no network; Python 3.12 with PyTorch, Lightning,
# NumPy and the packages benchmarks/gpu/image.txt lists; one command at most 10 minutes).
#
#   make gpu-carry                                     # here: wheels + FER2013 archive into .carry/
#   bash benchmarks/gpu_check.sh "$OUT"                # there, from the project root (carry .carry)
#   bash benchmarks/gpu_check.sh /tmp/gpu-dry --dry-run  # here, on the CPU: 1 epoch of 2 batches
#
# 1. installs the carried wheels (.carry/wheels, --no-index --no-deps) into a folder on PYTHONPATH;
# 2. runs the stages' entry points (no DVC) in a work folder: prepare (the carried FER2013 archive)
#    -> crop (face.detector=none) -> split -> train experiment=fer2013_hybrid, whose fitting ends by
#    second TRAIN_BY of the check (trainer.max_time), then packages and tests the best checkpoint;
# 3. runs benchmarks/train_throughput.py for the four models at 48 px;
# 4. writes into OUT: summary.md, metrics.json, train_curves.csv, learning_curve.png,
#    confusion_matrix.png, throughput.json and log.txt, and prints the summary.
#
# Environment: PYTHON (python3), CARRY (.carry), ARCHIVE ($CARRY/fer2013-dev.tar.gz), WORK (a new
# temporary folder), TRAIN_BY (400 s; 300 with --dry-run).
set -euo pipefail

usage="usage: bash benchmarks/gpu_check.sh OUT [--dry-run]"
[[ $# -ge 1 && $# -le 2 ]] || { echo "$usage" >&2; exit 2; }
dry_run=false
if [[ $# -eq 2 ]]; then
    [[ $2 == --dry-run ]] || { echo "gpu_check: unknown option $2; $usage" >&2; exit 2; }
    dry_run=true
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-python3}
carry=$(cd "$root" && realpath -m "${CARRY:-.carry}")
archive=$(cd "$root" && realpath -m "${ARCHIVE:-$carry/fer2013-dev.tar.gz}")
[[ -d $carry/wheels ]] || { echo "gpu_check: $carry/wheels not found: run 'make gpu-carry' first (and carry .carry)" >&2; exit 1; }
[[ -f $archive ]] || { echo "gpu_check: $archive not found: run 'make gpu-carry' first (it copies ../shared/data/fer2013-dev.tar.gz)" >&2; exit 1; }
mkdir -p "$1"
out=$(cd "$1" && pwd)
[[ -z $(ls -A "$out") ]] || { echo "gpu_check: $out is not empty: give a new or empty folder" >&2; exit 1; }
work=${WORK:-$(mktemp -d -t fer-gpu-check.XXXXXX)}
mkdir -p "$work"
exec > >(tee -a "$out/log.txt") 2>&1
tee_pid=$!
trap 'exec >&- 2>&-; wait "$tee_pid"' EXIT   # log.txt complete when the command returns

step() { echo "[gpu_check $(date -u +%H:%M:%S) +${SECONDS}s] $*"; }
step "root $root, work $work, out $out, dry run: $dry_run"

# 1. The carried wheels, over the machine's own packages.
site=$work/site
"$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$site" "$carry"/wheels/*.whl
export PYTHONPATH=$site:$root${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1 MLFLOW_TRACKING_URI=sqlite:///$work/mlflow.db
"$python" - <<'EOF'
import importlib, sys
missing = []
for name in ("torch", "torchvision", "pytorch_lightning", "torchmetrics", "numpy", "cv2", "PIL",
             "pandas", "matplotlib", "scipy", "yaml", "hydra", "omegaconf", "mlflow", "sqlalchemy",
             "alembic", "albumentations", "fer_pipeline.fit", "fer_pipeline.train"):
    try:
        importlib.import_module(name)
    except Exception as e:  # an import error names the missing module
        missing.append(f"{name} ({type(e).__name__}: {e})")
if missing:
    sys.exit("gpu_check: cannot import " + "; ".join(missing) + ": add its wheel to benchmarks/gpu/wheels.txt")
import torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name() if torch.cuda.is_available() else "")
EOF
step "wheels installed"

# 2. The stages, in the work folder (conf/ and params.yaml beside them, as in the project root).
cd "$work"
cp "$root/params.yaml" .
ln -sfn "$root/conf" conf
mkdir -p external
ln -sf "$archive" external/
"$python" -m fer_pipeline.prepare data=fer2013 data.path="$work/external"
"$python" -m fer_pipeline.crop data=fer2013 face.detector=none
"$python" -m fer_pipeline.split data=fer2013
step "data ready"

if $dry_run; then
    train_by=${TRAIN_BY:-300}   # 1 epoch of 2 batches ends it long before
    device=cpu
    extra=(trainer.accelerator=cpu trainer.max_epochs=1 trainer.limit_train_batches=2
           trainer.limit_val_batches=2 loader.batch_size=8 loader.eval_batch_size=64)
    bench=(--device cpu --batch-size 8 --batches 2 --warmup 1 --infer-batch-sizes 1,8
           --infer-repeats 1)
else
    train_by=${TRAIN_BY:-400}
    device=cuda
    extra=()
    bench=(--device cuda --batch-size 256 --batches 30 --workers 8)
fi
# Fitting starts about 20 s after the command (imports, the packed faces onto the device).
budget=$(( train_by - SECONDS - 20 ))
(( budget >= 30 )) || { echo "gpu_check: only ${budget}s left for training before second $train_by" >&2; exit 1; }
max_time=$(printf "00:00:%02d:%02d" $((budget / 60)) $((budget % 60)))
train_cmd=(python -m fer_pipeline.train experiment=fer2013_hybrid resume=never
           trainer.max_time=$max_time trainer.enable_progress_bar=false "${extra[@]}")
step "training for at most $max_time: ${train_cmd[*]}"
train_start=$SECONDS
"$python" "${train_cmd[@]:1}"
train_seconds=$(( SECONDS - train_start ))
step "trained and tested in ${train_seconds}s"
cp reports/metrics.json reports/train_curves.csv reports/confusion_matrix.png "$out/"

# 3. Throughput of the four models at 48 px, on the faces just prepared.
"$python" "$root/benchmarks/train_throughput.py" --sizes 48 --data "$work/data" \
    --out "$out/throughput.json" "${bench[@]}" > throughput.log
step "throughput measured"

# 4. The summary.
"$python" "$root/benchmarks/gpu_summary.py" "$out" --reports "$work/reports" \
    --train-seconds "$train_seconds" --command "${train_cmd[*]} (device $device)"
step "done: $out"
