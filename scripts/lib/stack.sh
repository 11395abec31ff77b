# The isolated stack that scripts/bench and scripts/profile measure, sourced by them with ROOT,
# DIR (its data and logs, fresh) and SERVERS (the directory holding the server binaries) set:
# redis-server and the three backends on free ports of 127.0.0.1 (REDIS_PORT, ORG, EV, PART;
# their pids PID_ORG, PID_EV, PID_PART), start() for more servers, everything stopped on exit
# (`cleanup`, for a script that sets its own EXIT trap). Measured without TLS or authentication
# (both are per-deployment costs, not the gateway's).
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
port() { "$ROOT/scripts/free-port"; }
REDIS_PORT=$(port); ORG=$(port); EV=$(port); PART=$(port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >"$DIR/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
peers=(--organisations_address="127.0.0.1:$ORG" --events_address="127.0.0.1:$EV" --participants_address="127.0.0.1:$PART")
# Starts a server in the background; its pid is in $STARTED (and in PIDS, for the cleanup).
# Not called in $(...): a subshell's PIDS would be lost and the server never stopped.
start() {
  local name=$1 port=$2; shift 2
  "$SERVERS/kp-$name" --host=127.0.0.1 --port="$port" --plaintext --auth=disabled --metrics_port=0 "${peers[@]}" "$@" \
    >"$DIR/$name-$port.log" 2>&1 &
  STARTED=$!; PIDS+=("$STARTED")
}
start organisations "$ORG" --database="$DIR/o.db" --redis_address="127.0.0.1:$REDIS_PORT"; PID_ORG=$STARTED
start events "$EV" --database="$DIR/e.db" --redis_address="127.0.0.1:$REDIS_PORT"; PID_EV=$STARTED
start participants "$PART" --database="$DIR/p.db" --redis_address="127.0.0.1:$REDIS_PORT"; PID_PART=$STARTED
