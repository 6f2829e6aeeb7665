// pino logger for the daemon: JSON lines to stdout (journald-friendly) and, with
// logPath set, one file per period there too (roll-file.ts). Verdicts are logged with a stable
// upper-case `tag` and the client as `[ip]:port` (postscreen's style). A connection's lines
// are written in batches (logFlushInterval): one thread-pool write per line cost a busy fake MX
// ~40 µs of CPU per connection (bench/RESULTS.md, round 6).

import { fileURLToPath } from 'node:url';
import pino, { type Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { RollOptions } from './roll-file.js';

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
 * stdout through sonic-boom, asynchronously (a slow reader never blocks the event loop).
 * With a flush interval, a connection's info lines are buffered up to LOG_BATCH_BYTES or the
 * interval, whichever comes first; warnings and daemon lines (LISTENING, READY, ...) are written
 * at once, so what an operator or a supervisor waits for is never held back.
 */
function stdoutLogger(opts: pino.LoggerOptions, flushInterval: number): Logger {
  const dest = pino.destination({ fd: 1, sync: false, minLength: flushInterval > 0 ? LOG_BATCH_BYTES : 0, maxLength: LOG_MAX_BUFFER_BYTES });
  if (flushInterval <= 0) return pino(opts, dest);
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
  return pino(
    {
      ...opts,
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
    },
    dest,
  );
}

export function createLogger(c: Pick<Config, 'logLevel' | 'logPath' | 'logFiles' | 'logFlushInterval'>): Logger {
  const opts: pino.LoggerOptions = {
    level: c.logLevel,
    base: { service: 'fakemx' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (!c.logPath) return stdoutLogger(opts, c.logFlushInterval);
  const transport = pino.transport({
    targets: [
      { target: 'pino/file', options: { destination: 1 }, level: c.logLevel },
      {
        target: ROLL_FILE,
        level: c.logLevel,
        options: { dir: c.logPath, base: 'fakemx', frequency: c.logFiles.frequency, keep: c.logFiles.keep } satisfies RollOptions,
      },
    ],
  });
  return pino(opts, transport);
}

/** A logger that writes nothing (library default). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** "[192.0.2.1]:4711" */
export function clientTag(ip: string, port: number): string {
  return `[${ip}]:${port}`;
}
