#!/usr/bin/env bash
# Ingestion benchmark: the same pharos-loadgen run against Pharos
# metrics-server, Prometheus and VictoriaMetrics, one after the other on
# this machine. Prints one JSON summary per system into $OUT/.
#
#   cargo build --release --bin metrics-server --bin pharos-loadgen
#   SERIES=100000 SCRAPES=60 bench/ingest.sh
#
# Knobs: SERIES, SCRAPES, CONNS, BATCH, BIN (dir with the release
# binaries), OUT, SYSTEMS ("pharos prometheus vm"), CORPUS=1 to replay
# scrapes recorded from a local prometheus-node-exporter instead of the
# synthetic series (CORPUS_TIMES scrapes, default 8, CORPUS_EVERY_MS apart,
# default 1000, replayed in a loop), or CORPUS_FILE=<file> to replay a
# corpus recorded before with `pharos-loadgen record-corpus`. BLOCKS=1 then waits until Pharos and Prometheus have cut
# (and Pharos uploaded) their 2 h blocks and writes the blocks' bytes per
# sample to $OUT/<system>-blocks.json (needs SCRAPES of 3 h or more, e.g.
# SERIES=10000 SCRAPES=960).
set -euo pipefail

SERIES=${SERIES:-100000}
SCRAPES=${SCRAPES:-60}
CONNS=${CONNS:-4}
BATCH=${BATCH:-2000}
BIN=${BIN:-target/release}
OUT=${OUT:-/tmp/pharos-bench}
SYSTEMS=${SYSTEMS:-"pharos prometheus vm"}
VERIFY_HOSTS=${VERIFY_HOSTS:-20}
BLOCKS=${BLOCKS:-0}
HERE=$(cd "$(dirname "$0")" && pwd)

mkdir -p "$OUT"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_ready() { # url
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "not ready: $1" >&2; return 1
}

CORPUS_ARGS=()
if [[ -n "${CORPUS_FILE:-}" ]]; then
  CORPUS_ARGS=(--corpus "$CORPUS_FILE")
elif [[ "${CORPUS:-0}" == 1 ]]; then
  NE_PORT=$(port)
  prometheus-node-exporter --web.listen-address="127.0.0.1:$NE_PORT" >"$OUT/node-exporter.log" 2>&1 &
  NE_PID=$!
  wait_ready "http://127.0.0.1:$NE_PORT/metrics"
  "$BIN/pharos-loadgen" record-corpus --url "http://127.0.0.1:$NE_PORT/metrics" \
    --times "${CORPUS_TIMES:-8}" --every-ms "${CORPUS_EVERY_MS:-1000}" --out "$OUT/corpus.txt"
  kill "$NE_PID"
  CORPUS_ARGS=(--corpus "$OUT/corpus.txt")
fi

run_load() { # name pid write_url query_url flush_url dirs...
  local name=$1 pid=$2 url=$3 query=$4 flush=$5; shift 5
  local dirs=()
  for d in "$@"; do dirs+=(--server-dir "$d"); done
  local flush_args=()
  [[ -n "$flush" ]] && flush_args=(--before-verify "$flush")
  "$BIN/pharos-loadgen" run --url "$url" --series "$SERIES" --scrapes "$SCRAPES" \
    --connections "$CONNS" --batch "$BATCH" --server-pid "$pid" "${dirs[@]}" \
    "${flush_args[@]}" --verify-query "$query" --verify-hosts "$VERIFY_HOSTS" \
    "${CORPUS_ARGS[@]}" >"$OUT/$name.json"
  echo "== $name"; cat "$OUT/$name.json"
}

for sys in $SYSTEMS; do
  DIR=$(mktemp -d "$OUT/$sys.XXXX")
  P=$(port)
  case $sys in
    pharos)
      cat >"$DIR/pharos.yaml" <<YAML
server:
  grpc_listen_address: 127.0.0.1:$(port)
  log_level: warn
storage:
  backend: filesystem
  filesystem:
    path: $DIR/objects
metrics:
  http_listen_address: 127.0.0.1:$P
  local_path: $DIR/local
  maintenance_interval: 1s
# upstream systems have no per-tenant limits on by default: neither here
limits:
  ingestion_rate: 1000000000
  ingestion_burst: 1000000000
  max_active_series: 0
YAML
      "$BIN/metrics-server" --config.file "$DIR/pharos.yaml" >"$DIR/log" 2>&1 &
      PID=$!
      wait_ready "http://127.0.0.1:$P/ready"
      run_load pharos "$PID" "http://127.0.0.1:$P/api/v1/write" \
        "http://127.0.0.1:$P/api/v1/query" "" "$DIR/local"
      curl -fsS "http://127.0.0.1:$P/api/v1/status/tsdb" >"$OUT/pharos-tsdb.json" || true
      if [[ "$BLOCKS" == 1 ]]; then
        # blocks are cut and uploaded by the maintenance rounds: wait until
        # some exist and none is pending upload, twice in a row
        stable=0
        for _ in $(seq 1 600); do
          m=$(curl -fsS "http://127.0.0.1:$P/metrics" || true)
          if grep -q '^pharos_tsdb_blocks_pending_upload 0$' <<<"$m" \
            && ! grep -q '^pharos_tsdb_blocks 0$' <<<"$m" && grep -q '^pharos_tsdb_blocks ' <<<"$m"; then
            stable=$((stable + 1)); [[ $stable -ge 2 ]] && break
          else
            stable=0
          fi
          sleep 1
        done
        python3 "$HERE/block_stats.py" "$DIR/objects" >"$OUT/pharos-blocks.json"
        echo "== pharos blocks (object store)"; cat "$OUT/pharos-blocks.json"
      fi
      ;;
    prometheus)
      printf 'global:\n  scrape_interval: 15s\n' >"$DIR/prometheus.yml"
      prometheus --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/data" \
        --web.listen-address="127.0.0.1:$P" --web.enable-remote-write-receiver \
        --log.level=warn >"$DIR/log" 2>&1 &
      PID=$!
      wait_ready "http://127.0.0.1:$P/-/ready"
      run_load prometheus "$PID" "http://127.0.0.1:$P/api/v1/write" \
        "http://127.0.0.1:$P/api/v1/query" "" "$DIR/data"
      curl -fsS "http://127.0.0.1:$P/api/v1/status/tsdb" >"$OUT/prometheus-tsdb.json" || true
      if [[ "$BLOCKS" == 1 ]]; then
        # Prometheus compacts its head once it spans 3 h, checking every minute
        for _ in $(seq 1 300); do
          ls "$DIR"/data/01*/meta.json >/dev/null 2>&1 && break
          sleep 1
        done
        sleep 5
        python3 "$HERE/block_stats.py" "$DIR/data" >"$OUT/prometheus-blocks.json"
        echo "== prometheus blocks"; cat "$OUT/prometheus-blocks.json"
      fi
      ;;
    vm)
      victoria-metrics -storageDataPath="$DIR/data" -httpListenAddr="127.0.0.1:$P" \
        -retentionPeriod=1y -search.latencyOffset=0s -search.disableCache \
        -loggerLevel=WARN >"$DIR/log" 2>&1 &
      PID=$!
      wait_ready "http://127.0.0.1:$P/health"
      run_load vm "$PID" "http://127.0.0.1:$P/api/v1/write" \
        "http://127.0.0.1:$P/api/v1/query" "http://127.0.0.1:$P/internal/force_flush" "$DIR/data"
      if [[ "$BLOCKS" == 1 ]]; then
        # long-term size: VictoriaMetrics' best, after forcing its
        # background merges of the month partitions to finish
        for prefix in $(date -u +%Y_%m) $(date -u -d '-1 month' +%Y_%m); do
          curl -fsS "http://127.0.0.1:$P/internal/force_merge?partition_prefix=$prefix" >/dev/null || true
        done
        idle=0
        for _ in $(seq 1 600); do
          active=$(curl -fsS "http://127.0.0.1:$P/metrics" \
            | awk '/^vm_active_merges/ {s += $2} END {print s + 0}')
          if [[ "$active" == 0 ]]; then idle=$((idle + 1)); [[ $idle -ge 5 ]] && break; else idle=0; fi
          sleep 1
        done
        python3 - "$DIR/data" "$OUT/vm.json" >"$OUT/vm-blocks.json" <<'PY'
import json, os, sys
size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(sys.argv[1]) for f in fs)
samples = json.load(open(sys.argv[2]))["samples_acked"]
print(json.dumps({"samples": samples, "bytes": size, "bytes_per_sample": size / samples}))
PY
        echo "== vm after force_merge"; cat "$OUT/vm-blocks.json"
      fi
      ;;
  esac
  kill "$PID"; wait "$PID" || true
  rm -rf "$DIR"
done
