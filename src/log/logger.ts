// pino logger for the daemon: JSON lines to stdout (journald-friendly) and, with
// logPath set, one file per period there too (roll-file.ts). Verdicts are logged with a stable
// upper-case `tag` and the client as `[ip]:port` (postscreen's style). A connection's lines
// are written in batches (logFlushInterval): one thread-pool write per line cost a busy fake MX
// ~40 µs of CPU per connection (bench/RESULTS.md, round 6).

import { accessSync, constants } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino, { type Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { mkdirpSync } from '../util/mkdirp.js';
import type { RollOptions } from './roll-file.js';
import { jsonSafe } from '../util/escape.js';

/** pino loads a transport in its worker thread by path. */
const ROLL_FILE = fileURLToPath(new URL('./roll-file.js', import.meta.url));

export type { Logger };

/** Buffered lines are written once this many octets wait (below sonic-boom's 16 KiB maxWrite). */
const LOG_BATCH_BYTES = 8 * 1024;
/** While stdout does not drain (a stuck journald or pipe), lines past this many buffered octets are dropped, not held. */
const LOG_MAX_BUFFER_BYTES = 64 * 1024 * 1024;

/** A line about one connection (a session or a client): these may wait for the batch. */
function connectionLine(arg: unknown): boolean {
  return typeof arg === 'object' && arg !== null && ('session' in arg || 'client' in arg);
}

/**
 * Every line a destination is given, made terminal-safe first (util/escape.ts jsonSafe): JSON
 * escapes C0 itself but leaves C1, the Unicode line separators and the bidi controls that a
 * client may put in a HELO, an address or a command raw; here they become \uNNNN escapes, so
 * `journalctl -f` or `tail -f` never acts on them. One native scan per line.
 */
function terminalSafe<T extends { write(line: string): boolean }>(stream: T): T {
  const write = stream.write.bind(stream);
  stream.write = (line: string) => write(jsonSafe(line));
  return stream;
}

/**
 * stdout through sonic-boom, asynchronously (a slow reader never blocks the event loop).
 * With a flush interval, a connection's info lines are buffered up to LOG_BATCH_BYTES or the
 * interval, whichever comes first; warnings and daemon lines (LISTENING, READY, ...) are written
 * at once, so what an operator or a supervisor waits for is never held back. Returns the
 * destination and the hook that flushes it early (none without an interval).
 */
function stdoutDestination(flushInterval: number): { dest: pino.DestinationStream & { flush(cb?: (e?: Error) => void): void }; hooks?: pino.LoggerOptions['hooks'] } {
  const dest = terminalSafe(pino.destination({ fd: 1, sync: false, minLength: flushInterval > 0 ? LOG_BATCH_BYTES : 0, maxLength: LOG_MAX_BUFFER_BYTES }));
  if (flushInterval <= 0) return { dest };
  // dest.flush() does nothing while a write is in flight, and what it left behind stays below
  // minLength: lines that must not wait any longer are flushed again when that write drains.
  let held = false;
  let urgent = false;
  dest.on('drain', () => {
    if (!urgent) return;
    urgent = false;
    dest.flush();
  });
  setInterval(() => {
    if (!held) return;
    held = false;
    urgent = true;
    dest.flush();
  }, flushInterval).unref();
  return {
    dest,
    hooks: {
      logMethod(args, method, level) {
        method.apply(this, args);
        held = true;
        if (level >= 40 || !connectionLine(args[0])) {
          urgent = true;
          dest.flush();
        }
      },
    },
  };
}

/**
 * Makes logPath (util/mkdirp.ts: Node's recursive mkdir loops for ever where a parent refuses
 * children with ENOENT, as /proc does), and checks it can be written. Throws an Error
 * saying which directory failed and why; the daemon reports it before it has a log.
 */
export function prepareLogDir(dir: string): void {
  const abs = resolve(dir);
  try {
    mkdirpSync(abs, 0o750);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new Error(`cannot create ${err.path ?? abs} (${err.code ?? String(e)})`);
  }
  try {
    accessSync(abs, constants.W_OK);
  } catch (e) {
    throw new Error(`cannot write to ${abs} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
}

/**
 * stdout always on the main thread; with logPath also the log files, in pino's worker thread
 * (roll-file.ts). A file target that fails (a full or vanished disk) is said once on stderr and
 * stdout goes on: the files never take the journal's copy down with them.
 */
export function createLogger(c: Pick<Config, 'logLevel' | 'logPath' | 'logFiles' | 'logFlushInterval'>): Logger {
  const opts: pino.LoggerOptions = {
    level: c.logLevel,
    base: { service: 'fakemx' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  const out = stdoutDestination(c.logFlushInterval);
  const withHooks = out.hooks ? { ...opts, hooks: out.hooks } : opts;
  if (!c.logPath) return pino(withHooks, out.dest);
  const files = terminalSafe(pino.transport({
    target: ROLL_FILE,
    options: { dir: c.logPath, base: 'fakemx', frequency: c.logFiles.frequency, keep: c.logFiles.keep } satisfies RollOptions,
  }) as pino.DestinationStream & NodeJS.EventEmitter & { write(line: string): boolean; flush(cb: (e?: Error) => void): void });
  let failed = false;
  let settle: (ok: boolean) => void = () => {};
  const opened = new Promise<boolean>((r) => (settle = r));
  // pino's transport says 'ready' once the target has opened its first file (roll-file.ts).
  files.once('ready', () => settle(true));
  files.on('error', (e: unknown) => {
    if (failed) return;
    failed = true;
    settle(false);
    process.stderr.write(`fakemx: error: log files under ${c.logPath}: ${e instanceof Error ? e.message : String(e)}; logging to stdout only until a restart\n`);
  });
  const both = pino.multistream([
    { level: c.logLevel, stream: out.dest },
    { level: c.logLevel, stream: files },
  ]) as ReturnType<typeof pino.multistream> & { flush?: (cb: () => void) => void };
  // logger.flush(cb) (the daemon's stop) asks the stream: both copies, the files' only while alive.
  both.flush = (cb) => out.dest.flush(() => (failed ? cb() : files.flush(() => cb())));
  const logger = pino(withHooks, both);
  fileTargets.set(logger, opened);
  return logger;
}

/** Whether each logger's log files opened (true) or failed (false); loggers without files are not here. */
const fileTargets = new WeakMap<Logger, Promise<boolean>>();

/**
 * Whether the logger's log files are being written: true once the first file is open, false
 * when it failed (said on stderr), null without logPath or when neither is known within
 * `waitMs` (a slow worker start is not a failure). The READY line waits for this: the open
 * runs in pino's worker thread.
 */
export async function logFilesOpen(logger: Logger, waitMs: number): Promise<boolean | null> {
  const opened = fileTargets.get(logger);
  if (!opened) return null;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<null>((r) => {
    timer = setTimeout(() => r(null), waitMs);
  });
  return Promise.race([opened, late]).finally(() => clearTimeout(timer));
}

/** A logger that writes nothing (library default). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** "[192.0.2.1]:4711" */
export function clientTag(ip: string, port: number): string {
  return `[${ip}]:${port}`;
}
