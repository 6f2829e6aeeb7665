#!/bin/bash
# Sink load on loopback for one server (bench/RESULTS.md, Round 8): starts it on a free port,
# warms it up with 1,000 messages, sends MSGS with Postfix's smtp-source and prints msgs/s and
# the server's CPU µs per message (utime + stime of all its threads, from /proc).
# usage: bench/sink-load.sh fakemx|engine|floor [MSGS=10000] [SESSIONS=20] [-c|-d]
#   fakemx: the daemon (dist/fakemx.cjs) with the bench's sink config and the shipped NODE_OPTIONS
#   engine: the engine alone (bench/engine-sink.mjs); floor: the bare Node sink (held-sessions.mjs)
#   -c: a new connection per message; -d: connections reused.
# PIN=1 runs the server on CPU 0 and smtp-source on CPU 1 (taskset), so the client never
# preempts the server and a CPU profile's self time is the server's own.
set -u
# shellcheck source=bench/load-lib.sh
. "$(dirname "$0")/load-lib.sh"
WHO=$1; MSGS=${2:-10000}; S=${3:-20}; MODE=${4:--c}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/fakemx-sink-load.XXXX")
PORT=$((30000 + RANDOM % 20000))
SRV=(); CLI=()
if [ "${PIN:-}" = 1 ]; then SRV=(taskset -c 0); CLI=(taskset -c 1); fi
case $WHO in
  fakemx)
    cat > "$W/cfg.json" <<J
{ "listenAddress": "127.0.0.1", "listenPort": $PORT, "storeData": false, "storePath": "$W/store",
  "bannerDelay": 0, "errorDelay": 0, "doEarlyTalk": false, "doTempFail": false,
  "maxSessions": 1000000, "maxSessionsPerIp": 1000000, "maxMessages": 1000000, "maxSmtpErrors": 10000,
  "maxDataSize": 52428800, "logLevel": "warn", "shutdownGrace": 1000, "receiveTimeout": 300000, "accessList": "" }
J
    OPTS=$(sed -n 's/^Environment=NODE_OPTIONS=//p' "$ROOT/systemd/fakemx.service")
    # shellcheck disable=SC2086
    "${SRV[@]}" node $OPTS "$ROOT/dist/fakemx.cjs" run --config "$W/cfg.json" > "$W/out.log" 2>&1 & ;;
  engine) "${SRV[@]}" node "$ROOT/bench/engine-sink.mjs" "$PORT" > "$W/out.log" 2>&1 & ;;
  floor) "${SRV[@]}" node "$ROOT/bench/held-sessions.mjs" --bare-server "$PORT" > "$W/out.log" 2>&1 & ;;
  *) echo "usage: $0 fakemx|engine|floor [MSGS] [SESSIONS] [-c|-d]" >&2; exit 2 ;;
esac
NPID=$!
wait_port "$PORT"
"${CLI[@]}" "${SOURCE_ENV[@]}" /usr/sbin/smtp-source -s "$S" "$MODE" -m 1000 -l 4096 -f a@b.test -t c@d.test "127.0.0.1:$PORT" > /dev/null
printf '%-6s -s %s %s  ' "$WHO" "$S" "$MODE"
measure "$NPID" "$MSGS" "${CLI[@]}" "${SOURCE_ENV[@]}" /usr/sbin/smtp-source -s "$S" "$MODE" -m "$MSGS" -l 4096 -f a@b.test -t c@d.test "127.0.0.1:$PORT"
kill -TERM "$NPID"; wait "$NPID" 2>/dev/null
rm -rf "$W"
