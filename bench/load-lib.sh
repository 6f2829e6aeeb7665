# Sourced by store-load.sh and sink-load.sh: wait for a loopback port, and time one smtp-source
# run against a server process, printing msgs/s and the server's CPU µs per message (utime +
# stime of all its threads, from /proc/PID/stat, so the kernel time of its syscalls counts).

# smtp-source's heap held still, as bench/run.mjs runs it (--client-malloc, Round 16); the
# servers these scripts start do not get it. CLIENT_MALLOC=default leaves glibc's settings.
SOURCE_ENV=(env GLIBC_TUNABLES=glibc.malloc.top_pad=16777216:glibc.malloc.trim_threshold=67108864:glibc.malloc.mmap_threshold=67108864)
if [ "${CLIENT_MALLOC:-fixed}" = default ]; then SOURCE_ENV=(); fi

# wait_port PORT: up to 15 s for something to accept on 127.0.0.1:PORT.
wait_port() {
  for _ in $(seq 1 150); do (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

# cpu_ticks PID u|c: the process's user ticks (u) or user + system ticks (c).
cpu_ticks() { awk -v f="$2" '{print (f == "u" ? $14 : $14 + $15)}' "/proc/$1/stat"; }

# measure PID MSGS CMD...: runs CMD (an smtp-source sending MSGS), prints
# "rate N msgs/s  cpu N us/msg (user N, sys N)  wall Ns".
measure() {
  local pid=$1 msgs=$2 c0 u0 t0 c1 u1 t1
  shift 2
  c0=$(cpu_ticks "$pid" c); u0=$(cpu_ticks "$pid" u); t0=$(date +%s.%N)
  "$@" > /dev/null
  t1=$(date +%s.%N); c1=$(cpu_ticks "$pid" c); u1=$(cpu_ticks "$pid" u)
  awk -v m="$msgs" -v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" -v u0="$u0" -v u1="$u1" -v tck="$(getconf CLK_TCK)" \
    'BEGIN{printf "rate %.0f msgs/s  cpu %.0f us/msg (user %.0f, sys %.0f)  wall %.2fs\n", m/(t1-t0), (c1-c0)/tck*1e6/m, (u1-u0)/tck*1e6/m, (c1-c0-u1+u0)/tck*1e6/m, t1-t0}'
}
