#!/bin/bash
# Store load on loopback (bench/RESULTS.md Round 4): starts ROOT/dist/fakemx.cjs with a store
# config on a free port, warms it up with 500 messages, sends MSGS with Postfix's smtp-source,
# and prints msgs/s and the daemon's CPU µs per message (utime + stime from /proc, so the
# kernel time of its fsyncs counts). With MODE=strace the daemon runs under `strace -f -c`
# (no warm-up) and the summary is printed. The daemon is stopped at the end.
# usage: bench/store-load.sh ROOT eml|maildir plain|strace [MSGS=5000] [SESSIONS=20] [-d|-c]
#   -d: one connection per session, reused (smtp-source -d); -c: a new connection per message.
# STORE=false measures the same path without storing (storeData false).
set -u
# shellcheck source=bench/load-lib.sh
. "$(dirname "$0")/load-lib.sh"
ROOT=$1; FORMAT=$2; MODE=$3; MSGS=${4:-5000}; S=${5:-20}; EXTRA=${6:--d}
W=$(mktemp -d "${TMPDIR:-/tmp}/fakemx-store-load.XXXX")
PORT=$((30000 + RANDOM % 20000))
cat > "$W/cfg.json" <<J
{ "listenAddress": "127.0.0.1", "listenPort": $PORT, "storeData": ${STORE:-true}, "storePath": "$W/store",
  "bannerDelay": 0, "errorDelay": 0, "doEarlyTalk": false, "doTempFail": false,
  "maxSessions": 1000000, "maxSessionsPerIp": 1000000, "maxMessages": 1000000, "maxSmtpErrors": 10000,
  "maxDataSize": 52428800, "logLevel": "warn", "shutdownGrace": 1000, "receiveTimeout": 300000,
  "store": { "format": "$FORMAT" } }
J
if [ "$MODE" = strace ]; then
  strace -f -c -o "$W/strace.txt" node "$ROOT/dist/fakemx.cjs" run --config "$W/cfg.json" > "$W/out.log" 2>&1 &
else
  node "$ROOT/dist/fakemx.cjs" run --config "$W/cfg.json" > "$W/out.log" 2>&1 &
fi
LP=$!
wait_port "$PORT"
NPID=$LP
if [ "$MODE" = strace ]; then NPID=$(pgrep -P "$LP" | head -1); else
  "${SOURCE_ENV[@]}" /usr/sbin/smtp-source -s "$S" "$EXTRA" -m 500 -l 4096 -f a@b.test -t c@d.test "127.0.0.1:$PORT"; fi
LOAD="load=$(cut -d' ' -f1-3 /proc/loadavg)"
RESULT=$(measure "$NPID" "$MSGS" "${SOURCE_ENV[@]}" /usr/sbin/smtp-source -s "$S" "$EXTRA" -m "$MSGS" -l 4096 -f a@b.test -t c@d.test "127.0.0.1:$PORT")
echo "format=$FORMAT mode=$MODE s=$S $EXTRA msgs=$MSGS $LOAD"
echo "$RESULT"
kill -TERM "$NPID"; wait "$LP" 2>/dev/null
[ "$MODE" = strace ] && cat "$W/strace.txt"
rm -rf "$W"
