// `fakemx run`: load the config, start the server (on inherited sockets under systemd
// socket activation), signal readiness, reload on SIGHUP, and on SIGTERM/SIGINT stop
// accepting, give sessions shutdownGrace ms, then exit 0. Exit 78 for config errors, 73 for a
// logPath that cannot be made or written.

import { ConfigError, loadConfig, type LoadedConfig } from './config/load.js';
import { createLogger, logFilesOpen, prepareLogDir, type Logger } from './log/logger.js';
import { listenFds, notifyReady, notifyReloading, notifyStopping, setNotifyDebug } from './net/systemd.js';
import { FakemxServer } from './server.js';
import { startObservability, type Observability } from './observability.js';
import { startupLine } from './startup.js';
import { EX_CANTCREAT, EX_CONFIG, EX_SOFTWARE, EX_UNAVAILABLE } from './util/sysexits.js';
import { hostPort } from './net/ip.js';
import { escapeText } from './util/escape.js';
import { releaseSignals } from './util/held-signals.cjs';


/** Longest READY waits to learn whether the log files opened, ms. */
const LOG_FILES_WAIT_MS = 2000;

export interface DaemonOptions {
  configPath?: string;
}

function load(configPath: string | undefined): LoadedConfig {
  return loadConfig(configPath ? { file: configPath } : {});
}

export async function runDaemon(opts: DaemonOptions): Promise<number> {
  let loaded: LoadedConfig;
  try {
    loaded = load(opts.configPath);
  } catch (e) {
    if (e instanceof ConfigError) {
      // As check-config prints it (program.ts): the file's text escaped, on one line.
      process.stderr.write(`fakemx: error: config: ${escapeText(e.message)}\n`);
      return EX_CONFIG;
    }
    throw e;
  }
  if (loaded.config.logPath) {
    // Before the logger: a log directory that cannot be made has no log to be told in.
    try {
      prepareLogDir(loaded.config.logPath);
    } catch (e) {
      process.stderr.write(`fakemx: error: logPath: ${e instanceof Error ? e.message : String(e)}\n`);
      return EX_CANTCREAT;
    }
  }
  const logger = createLogger(loaded.config);
  for (const w of loaded.warnings) logger.warn({ tag: 'CONFIG_WARNING', warning: w }, w);
  setNotifyDebug((m) => logger.debug(m, 'systemd notification not delivered'));
  /** The machine's trouble (a taken port, a directory it cannot make), not a bug: 69. */
  const cannotStart = async (e: unknown, cleanup?: () => Promise<unknown>): Promise<number> => {
    const err = e instanceof Error ? e.message : String(e);
    logger.fatal({ tag: 'START_FAILED', err }, 'cannot start');
    // Also where an operator running it by hand looks (stdout may be a pipe to a collector).
    process.stderr.write(`fakemx: error: cannot start: ${err}\n`);
    await cleanup?.().catch(() => undefined);
    await flush(logger);
    return EX_UNAVAILABLE;
  };
  let server: FakemxServer;
  try {
    // The state store opens here (state.path that cannot be made, an LMDB it cannot open).
    server = new FakemxServer(loaded, logger);
  } catch (e) {
    return cannotStart(e);
  }
  let obs: Observability | null = null;

  // Signals are caught from the first moment (dist/fakemx.cjs holds them while the modules
  // load): one that arrives while the listeners are still opening waits for them (a HUP must
  // never kill a daemon that is starting).
  const early: string[] = [];
  let onSignal: (sig: string) => void = (sig) => void early.push(sig);
  const handlers = {
    SIGTERM: () => onSignal('SIGTERM'),
    SIGINT: () => onSignal('SIGINT'),
    SIGHUP: () => onSignal('SIGHUP'),
  };
  for (const [sig, h] of Object.entries(handlers)) process.on(sig, h);
  // Those that came while the process was loading (dist/fakemx.cjs held them) come first.
  early.unshift(...releaseSignals());
  process.on('uncaughtException', (e) => {
    // Sessions guard their callbacks; reaching here is a bug: log it and let systemd restart us.
    logger.fatal({ tag: 'CRASH', err: e.message, stack: e.stack }, 'uncaught exception');
    void flush(logger).then(() => process.exit(EX_SOFTWARE));
  });

  try {
    await server.listen({ fds: listenFds() ?? [] });
    obs = await startObservability(server, loaded.config, logger);
  } catch (e) {
    return cannotStart(e, () => server.close(0));
  }
  const listeningOn = () => `listening on ${server.listening.map((l) => hostPort(l.address, l.port)).join(', ')}`;
  await notifyReady(listeningOn());
  // The log files open in a worker thread; READY says where logs go once that is known.
  const logFiles = await logFilesOpen(logger, LOG_FILES_WAIT_MS);
  logger.info({ tag: 'READY' }, startupLine(loaded, server.listening, logFiles !== false));

  return new Promise<number>((resolve) => {
    let stopping = false;
    let reloading: Promise<void> = Promise.resolve();
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ tag: 'SHUTDOWN', signal, sessions: server.activeSessions }, `stopping on ${signal}`);
      await notifyStopping();
      await reloading;
      await server.close(server.config.shutdownGrace);
      await obs?.stop();
      for (const [sig, h] of Object.entries(handlers)) process.off(sig, h);
      logger.info({ tag: 'STOPPED' }, 'stopped');
      await flush(logger);
      resolve(0);
    };
    const reload = async () => {
      if (stopping) return;
      await notifyReloading();
      // The unit's status line after the reload (systemctl status): what it listens on now, or
      // that the reload failed and why, never "reloaded" for a file that was refused.
      let status: string;
      try {
        const next = load(opts.configPath);
        const before = server.config;
        await server.reload(next);
        await obs?.reload(next.config);
        logger.info({ tag: 'CONFIG_RELOADED', file: next.file }, 'configuration reloaded');
        // The logger is made once, at start: say so rather than seem to apply them.
        const atStart = (c: typeof before) => ({ logPath: c.logPath, logLevel: c.logLevel, 'logFiles.frequency': c.logFiles.frequency, 'logFiles.keep': c.logFiles.keep, logFlushInterval: c.logFlushInterval });
        const was = atStart(before);
        const now = atStart(next.config);
        const keys = (Object.keys(now) as (keyof typeof now)[]).filter((k) => now[k] !== was[k]);
        if (keys.length > 0) logger.warn({ tag: 'CONFIG_RESTART_NEEDED', keys }, `${keys.join(', ')} ${keys.length === 1 ? 'takes' : 'take'} effect at the next start`);
        status = `reloaded; ${listeningOn()}`;
      } catch (e) {
        const err = e instanceof ConfigError ? { key: e.key, file: e.file, reason: e.reason } : { reason: e instanceof Error ? e.message : String(e) };
        logger.error({ tag: 'CONFIG_RELOAD_FAILED', ...err }, 'reload failed; running unchanged');
        status = `reload failed (${'key' in err ? `${err.key}: ` : ''}${err.reason}); running unchanged, ${listeningOn()}`;
      }
      await notifyReady(status);
    };
    onSignal = (sig) => {
      if (sig === 'SIGHUP') reloading = reloading.then(reload); // one reload at a time, in order
      else void stop(sig);
    };
    for (const sig of early.splice(0)) onSignal(sig);
  });
}

function flush(logger: Logger): Promise<void> {
  return new Promise((r) => logger.flush(() => r()));
}
