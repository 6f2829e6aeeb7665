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
for _ in $(seq 1 150); do (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
"${CLI[@]}" /usr/sbin/smtp-source -s "$S" "$MODE" -m 1000 -l 4096 -f a@b.test -t c@d.test "127.0.0.1:$PORT" > /dev/null
stat_() { awk -v f="$1" '{print (f == "u" ? $14 : $14 + $15)}' "/proc/$NPID/stat"; }
C0=$(stat_ c); U0=$(stat_ u); T0=$(date +%s.%N)
"${CLI[@]}" /usr/sbin/smtp-source -s "$S" "$MODE" -m "$MSGS" -l 4096 -f a@b.test -t c@d.test "127.0.0.1:$PORT" > /dev/null
T1=$(date +%s.%N); C1=$(stat_ c); U1=$(stat_ u)
awk -v w="$WHO" -v s="$S" -v md="$MODE" -v m="$MSGS" -v t0="$T0" -v t1="$T1" -v c0="$C0" -v c1="$C1" -v u0="$U0" -v u1="$U1" -v tck="$(getconf CLK_TCK)" \
  'BEGIN{printf "%-6s -s %s %s  rate %5.0f msgs/s  cpu %4.0f us/msg (user %4.0f, sys %4.0f)\n", w, s, md, m/(t1-t0), (c1-c0)/tck*1e6/m, (u1-u0)/tck*1e6/m, (c1-c0-u1+u0)/tck*1e6/m}'
kill -TERM "$NPID"; wait "$NPID" 2>/dev/null
rm -rf "$W"
