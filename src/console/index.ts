// The console's runtime beside a running server: the live state and the corpus index are fed
// by the server's events from the moment the console is on; the index scans the store paths
// in use once in the background (from their snapshots), and again for paths a reload adds, and
// writes their snapshots after a scan, every SNAPSHOT_EVERY_MS while messages arrive, and at
// flush() (stop). observability.ts owns its lifetime.

import { effectiveListeners, storePathsInUse } from '../config/effective.js';
import type { Config } from '../config/schema.js';
import type { MessageEvent, ServerEvents } from '../events.js';
import type { StorePrunedEvent } from '../store/stores.js';
import type { EventEmitter } from 'node:events';
import type { ZoneHealth } from '../dnsbl/engine.js';
import type { Logger } from '../log/logger.js';
import type { StateStore } from '../state/store.js';
import { CorpusIndex } from './corpus-index.js';
import { LiveState } from './live.js';
import { ConsoleApp, type ConsoleSettings } from './routes.js';

export { ConsoleApp } from './routes.js';

export interface ConsoleRuntime {
  readonly app: ConsoleApp;
  readonly index: CorpusIndex;
  readonly live: LiveState;
  reload(config: Config): void;
  /** Writes the corpus index snapshots that changed (the daemon's stop awaits it). */
  flush(): Promise<void>;
  stop(): void;
}

/** How often changed corpus index snapshots are written while the daemon runs. */
const SNAPSHOT_EVERY_MS = 5 * 60_000;

/** Store paths whose messages the console lists (listeners that store). */
export function consoleRoots(config: Config): string[] {
  return storePathsInUse(effectiveListeners(config));
}

/** What the console reads from the server beside its events (all optional: tests give what they test). */
export interface ConsoleSources {
  /** The state store in use, or null (the State page). */
  state?: () => StateStore | null;
  /** The DNS list engine's zone health (the Caught page). */
  dnsHealth?: () => readonly ZoneHealth[];
  /** Asset directory override (tests). */
  assetDir?: string;
}

export function startConsole(server: Pick<EventEmitter<ServerEvents>, 'on' | 'off'>, config: Config, logger: Logger, sources: ConsoleSources = {}): ConsoleRuntime {
  let settings: ConsoleSettings = { token: config.http.token, consoleWrite: config.http.consoleWrite };
  let current = config;
  const live = new LiveState(Date.now, config.ipv6Prefix);
  const index = new CorpusIndex();
  const detach = live.attach(server);
  const onMessage = (ev: MessageEvent) => {
    try {
      index.add(ev);
    } catch (e) {
      logger.warn({ tag: 'CONSOLE_ERROR', err: e instanceof Error ? e.message : String(e) }, 'corpus index update failed');
    }
  };
  server.on('message', onMessage);
  const onPruned = (ev: StorePrunedEvent) => {
    index.removeDay(ev.store, ev.day);
  };
  server.on('storePruned', onPruned);
  const save = async (roots: string[]) => {
    for (const r of roots) {
      const t0 = Date.now();
      try {
        if (await index.saveSnapshot(r)) logger.debug({ tag: 'CONSOLE_SNAPSHOT', store: r, ms: Date.now() - t0 }, 'console: corpus index snapshot written');
      } catch (e) {
        logger.warn({ tag: 'CONSOLE_ERROR', store: r, err: e instanceof Error ? e.message : String(e) }, 'console: corpus index snapshot not written; the next start reads the store again');
      }
    }
  };
  const scan = (roots: string[]) => {
    const t0 = Date.now();
    const before = { read: index.recordsRead, snap: index.fromSnapshot };
    void index.setRoots(roots).then(async () => {
      const read = index.recordsRead - before.read;
      const fromSnapshot = index.fromSnapshot - before.snap;
      logger.info(
        { tag: 'CONSOLE_INDEXED', messages: index.size, ms: Date.now() - t0, read, fromSnapshot },
        `console: corpus index holds ${index.size} ${index.size === 1 ? 'message' : 'messages'} (${fromSnapshot} from snapshots, ${read} records read)`,
      );
      await save(index.changedRoots);
    });
  };
  const timer = setInterval(() => void save(index.changedRoots), SNAPSHOT_EVERY_MS);
  timer.unref();
  scan(consoleRoots(config));
  const app = new ConsoleApp({
    live,
    index,
    settings: () => settings,
    logger,
    config: () => current,
    ...(sources.state ? { state: sources.state } : {}),
    ...(sources.dnsHealth ? { dnsHealth: sources.dnsHealth } : {}),
    ...(sources.assetDir ? { assetDir: sources.assetDir } : {}),
  });
  return {
    app,
    index,
    live,
    reload(next: Config) {
      settings = { token: next.http.token, consoleWrite: next.http.consoleWrite };
      current = next;
      scan(consoleRoots(next));
    },
    flush() {
      return save(index.changedRoots);
    },
    stop() {
      clearInterval(timer);
      detach();
      server.off('message', onMessage);
      server.off('storePruned', onPruned);
    },
  };
}
