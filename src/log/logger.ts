// pino logger for the daemon: JSON lines to stdout (journald-friendly) and, with
// logPath set, rotating files there too (pino-roll). Verdicts are logged with a stable
// upper-case `tag` and the client as `[ip]:port` (postscreen's style).

import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import type { Config } from '../config/schema.js';

export type { Logger };

const DAY_MS = 24 * 3600 * 1000;

/** pino-roll knows hourly and daily; "monthly" is a 30-day period. */
export function rollFrequency(f: Config['logFiles']['frequency']): string | number {
  return f === 'monthly' ? 30 * DAY_MS : f;
}

export function createLogger(c: Pick<Config, 'logLevel' | 'logPath' | 'logFiles'>): Logger {
  const opts: pino.LoggerOptions = {
    level: c.logLevel,
    base: { service: 'fakemx' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (!c.logPath) return pino(opts, pino.destination({ fd: 1, sync: false }));
  const transport = pino.transport({
    targets: [
      { target: 'pino/file', options: { destination: 1 }, level: c.logLevel },
      {
        target: 'pino-roll',
        level: c.logLevel,
        options: {
          file: join(c.logPath, 'fakemx'),
          extension: '.log',
          frequency: rollFrequency(c.logFiles.frequency),
          limit: { count: c.logFiles.keep },
          mkdir: true,
        },
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
