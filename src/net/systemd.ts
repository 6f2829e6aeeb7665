// systemd integration without native code: socket activation (sd_listen_fds(3) protocol:
// LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES, sockets from fd 3) and readiness/state notification
// (sd_notify(3): READY=1, RELOADING=1, STOPPING=1, STATUS=) through the systemd-notify tool.
//
// Why systemd-notify and NotifyAccess=all: sd_notify messages are AF_UNIX datagrams to
// $NOTIFY_SOCKET, and Node's dgram module only speaks UDP, so we run `systemd-notify`
// (Debian's systemd package) as a child. The message then comes from the child's PID, not the
// main PID; the unit must say NotifyAccess=all or PID 1 drops it (systemd-notify first tries to
// send with our PID, which needs privileges the unprivileged service user lacks). systemd-notify
// waits (sd_notify_barrier) until PID 1 has processed the message, which closes the race where
// the child exits before PID 1 can attribute it to the unit — so we never pass --no-block.
// `--pid=<our pid>` adds MAINPID=, keeping the main PID pinned to the daemon, not the child.
// Every call is bounded by a 2 s timeout and never throws: a missing tool or socket only means
// systemd learns about us late (Type=notify then times out in TimeoutStartSec and says so).

import { execFile } from 'node:child_process';

/** Longest we wait for systemd-notify; the daemon's start-up and shutdown must not hang on it. */
export const NOTIFY_TIMEOUT_MS = 2000;
/** sd_listen_fds(3): SD_LISTEN_FDS_START. */
export const LISTEN_FDS_START = 3;
// A unit passes a handful of sockets; anything huge is a broken environment, not a config.
const MAX_LISTEN_FDS = 1024;

/** Optional sink for the debug line logged when notification is unavailable (tests, daemon). */
export type NotifyDebug = (msg: { tag: string; reason: string; state: string }) => void;
let debugSink: NotifyDebug | null = null;

/** Route "notification not delivered" debug lines somewhere (e.g. logger.debug); null = silent. */
export function setNotifyDebug(fn: NotifyDebug | null): void {
  debugSink = fn;
}

/**
 * Sockets passed by the service manager (socket activation), in order, with their
 * FileDescriptorName (or "unknown", as sd_listen_fds_with_names(3) does when names are
 * absent or do not match the count). null when the variables are absent or meant for another
 * process (LISTEN_PID ≠ our PID). The three variables are always removed from process.env so
 * that children (systemd-notify among them) do not believe the sockets are theirs.
 */
export function listenFds(): { fd: number; name: string }[] | null {
  const env = process.env;
  const pid = env.LISTEN_PID;
  const count = env.LISTEN_FDS;
  const names = env.LISTEN_FDNAMES;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
  if (pid === undefined || count === undefined) return null;
  if (!/^[1-9][0-9]*$/.test(pid) || Number(pid) !== process.pid) return null;
  if (!/^[0-9]+$/.test(count)) return null;
  const n = Number(count);
  if (n === 0 || n > MAX_LISTEN_FDS) return null;
  const nameList = names !== undefined ? names.split(':') : [];
  const useNames = nameList.length === n;
  const out: { fd: number; name: string }[] = [];
  for (let i = 0; i < n; i++) out.push({ fd: LISTEN_FDS_START + i, name: useNames && nameList[i] ? nameList[i]! : 'unknown' });
  return out;
}

/** Tell systemd the listeners are up (Type=notify). `status` becomes the unit's status line. */
export async function notifyReady(status?: string): Promise<void> {
  await notify(['READY=1', ...(status ? [`STATUS=${status}`] : [])], 'ready');
}

/** SIGHUP received: systemd shows "reloading" until the next notifyReady(). */
export async function notifyReloading(): Promise<void> {
  await notify(['RELOADING=1', 'STATUS=reloading configuration'], 'reloading');
}

/** SIGTERM/SIGINT received: draining sessions. */
export async function notifyStopping(): Promise<void> {
  await notify(['STOPPING=1', 'STATUS=stopping: draining sessions'], 'stopping');
}

/** Send assignments through systemd-notify; a no-op without NOTIFY_SOCKET. Never rejects. */
function notify(assignments: string[], state: string): Promise<void> {
  const socket = process.env.NOTIFY_SOCKET;
  if (!socket) return Promise.resolve();
  // STATUS= is free text; a newline would start a new assignment in the datagram.
  const args = [`--pid=${process.pid}`, ...assignments.map((a) => a.replace(/[\r\n]+/g, ' '))];
  return new Promise((resolve) => {
    try {
      execFile('systemd-notify', args, { timeout: NOTIFY_TIMEOUT_MS, killSignal: 'SIGKILL', windowsHide: true }, (err, _stdout, stderr) => {
        if (err) {
          const code = (err as NodeJS.ErrnoException).code;
          const reason = code === 'ENOENT' ? 'systemd-notify not installed' : err.killed ? `timed out after ${NOTIFY_TIMEOUT_MS} ms` : `${err.message.trim()} ${String(stderr).trim()}`.trim();
          debug(state, reason);
        }
        resolve();
      });
    } catch (e) {
      // execFile throws synchronously only on invalid arguments; still never escape.
      debug(state, e instanceof Error ? e.message : String(e));
      resolve();
    }
  });
}

function debug(state: string, reason: string): void {
  try {
    debugSink?.({ tag: 'SYSTEMD_NOTIFY_FAILED', state, reason });
  } catch {
    /* a logging failure must not turn into a start-up failure */
  }
}
