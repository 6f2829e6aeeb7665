// Every corpus a server writes to (one per distinct storePath), with its disk cap, under the
// one `store` config group. The server asks it for a path's Corpus, hands it each loaded
// config, reads the state for /healthz, and hears of every transition (log line, metric).

import type { StoreConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { Corpus } from './corpus.js';
import { SpaceGuard, type SpaceUsage } from './space.js';

export interface StoreStateEvent {
  store: string;
  /** full: nothing is stored (STORE_FULL) until space returns. */
  state: 'full' | 'ok';
  reason: string | null;
  usedBytes: number;
  freeBytes: number | null;
}

export interface StorePrunedEvent {
  store: string;
  day: string;
  bytes: number;
}

export interface StoreStatus extends SpaceUsage {
  store: string;
  full: boolean;
  reason: string | null;
}

export interface StoreHooks {
  state?: (ev: StoreStateEvent) => void;
  pruned?: (ev: StorePrunedEvent) => void;
}

const DEFAULT: StoreConfig = { format: 'eml', maxBytes: 0, minFreeBytes: 0, onFull: 'stop', dedupe: false };

export class Stores {
  private readonly corpora = new Map<string, { corpus: Corpus; guard: SpaceGuard }>();
  private cfg: StoreConfig = DEFAULT;

  constructor(
    private readonly logger: Logger,
    private readonly hooks: StoreHooks = {},
  ) {}

  corpus(path: string): Corpus {
    let e = this.corpora.get(path);
    if (!e) {
      const corpus = new Corpus(path, { format: this.cfg.format, dedupe: this.cfg.dedupe });
      const guard = new SpaceGuard(corpus, this.cfg, {
        transition: (reason, u) => this.transition(path, reason, u),
        pruned: (day, bytes) => {
          this.logger.info({ tag: 'STORE_PRUNED', store: path, day, bytes }, `store full: pruned day ${day} (${bytes} octets)`);
          this.hooks.pruned?.({ store: path, day, bytes });
        },
        error: (err) => this.logger.error({ tag: 'STORE_SPACE_ERROR', store: path, err: err instanceof Error ? err.message : String(err) }, 'store space check failed'),
      });
      corpus.space = guard;
      this.corpora.set(path, (e = { corpus, guard }));
    }
    return e.corpus;
  }

  private transition(path: string, reason: string | null, u: SpaceUsage): void {
    const ev: StoreStateEvent = { store: path, state: reason === null ? 'ok' : 'full', reason, ...u };
    if (reason !== null) this.logger.warn({ tag: 'STORE_STATE', ...ev }, `store full, storing nothing until space returns: ${reason}`);
    else this.logger.info({ tag: 'STORE_STATE', ...ev }, 'store has space again, storing');
    this.hooks.state?.(ev);
  }

  /** A loaded config's `store` group: later messages use it (format, dedupe, the cap). */
  configure(cfg: StoreConfig): void {
    this.cfg = cfg;
    for (const { corpus, guard } of this.corpora.values()) {
      corpus.configure({ format: cfg.format, dedupe: cfg.dedupe });
      guard.configure(cfg);
    }
  }

  /** Make each store exist (at start also its crash clean-up); returns the temporaries removed per path. */
  async init(paths: string[]): Promise<Map<string, number>> {
    const removed = new Map<string, number>();
    for (const p of paths) {
      const c = this.corpus(p);
      removed.set(p, await c.init());
      void this.corpora.get(p)!.guard.check();
    }
    return removed;
  }

  /** The cap's state of every store (for /healthz). */
  status(): StoreStatus[] {
    return [...this.corpora].map(([store, { guard }]) => {
      const reason = guard.fullReason();
      return { store, full: reason !== null, reason, ...guard.usage() };
    });
  }

  /** Wait until every store's state is decided (tests). */
  async settled(): Promise<void> {
    await Promise.all([...this.corpora.values()].map((e) => e.guard.check()));
  }

  close(): void {
    for (const { guard } of this.corpora.values()) guard.close();
  }
}
