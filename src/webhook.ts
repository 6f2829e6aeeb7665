// On-message webhook: after each stored message, POST {metadata, path, raw?} as JSON to
// webhook.url. enqueue() is synchronous and O(1) so SMTP is never delayed; delivery runs in
// the background with a bounded queue, per-request timeouts, and jittered exponential retries.

import { open, readdir, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { WebhookConfig } from './config/schema.js';
import type { MessageEvent } from './events.js';
import type { Logger } from './log/logger.js';
import type { WebhookResult } from './metrics.js';
import type { MessageMetadata } from './store/metadata.js';

export interface WebhookPayload {
  metadata: MessageMetadata;
  /** Absolute path of the message file (.eml, or the Maildir file in new/) on the fakemx host, or null when storeData is off. */
  path: string | null;
  /** The .eml, base64, when it is at most includeRawMax octets. */
  raw?: string;
}

export interface WebhookOptions {
  /** Concurrent deliveries. */
  concurrency?: number;
  /** First retry delay; doubles each time up to backoffMaxMs, with full jitter. */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Counts outcomes (fakemx_webhook_total{result}). */
  count?: (result: WebhookResult, n?: number) => void;
  /** Random source in [0,1) for jitter (tests inject a fixed one). */
  random?: () => number;
}

interface Job {
  metadata: MessageMetadata;
  path: string | null;
  attempt: number;
}

/** Why one attempt failed; `retry` false means the receiver refused for good (4xx). */
interface AttemptError {
  retry: boolean;
  reason: string;
}

/** A FIFO with O(1) push/shift and a hard capacity. */
class BoundedQueue<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  constructor(public capacity: number) {}
  get length(): number {
    return this.items.length - this.head;
  }
  push(v: T): boolean {
    if (this.length >= this.capacity) return false;
    this.items.push(v);
    return true;
  }
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const v = this.items[this.head];
    this.items[this.head++] = undefined;
    // Compact now and then so the array does not grow without end.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return v;
  }
  clear(): number {
    const n = this.length;
    this.items = [];
    this.head = 0;
    return n;
  }
}

/**
 * The stored message: an .eml, or a Maildir file in new/ that a mail reader may since have
 * moved to cur/ as <name>:2,<flags> (maildir(5)).
 */
async function openMessage(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch (e) {
    const dir = dirname(path);
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || basename(dir) !== 'new') throw e;
    const cur = join(dirname(dir), 'cur');
    const name = basename(path);
    const moved = (await readdir(cur)).find((n) => n === name || n.startsWith(`${name}:`));
    if (!moved) throw e;
    return await open(join(cur, moved), 'r');
  }
}

/** HTTP statuses worth another try: overload, timeouts, server errors (RFC 9110 §15.5.9, RFC 6585 §4). */
function retryable(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

/** For logs: never the query string or userinfo (tokens live there). */
function safeUrl(u: string): string {
  try {
    const x = new URL(u);
    return `${x.protocol}//${x.host}${x.pathname}`;
  } catch {
    return '(invalid url)';
  }
}

export class Webhook {
  private settings: WebhookConfig;
  private readonly queue: BoundedQueue<Job>;
  private readonly concurrency: number;
  private readonly base: number;
  private readonly max: number;
  private readonly count: (r: WebhookResult, n?: number) => void;
  private readonly random: () => number;
  private readonly stopper = new AbortController();
  private running = 0;
  private stopped = false;
  private droppedSinceLog = 0;
  /** Deliveries the stop cut short (in flight or waiting for a retry): logged with the queue's. */
  private abandoned = 0;
  private lastDropLog = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(settings: WebhookConfig, private readonly logger: Logger, opts: WebhookOptions = {}) {
    this.settings = settings;
    this.queue = new BoundedQueue<Job>(settings.queueSize);
    this.concurrency = Math.max(1, opts.concurrency ?? 4);
    this.base = opts.backoffBaseMs ?? 1000;
    this.max = opts.backoffMaxMs ?? 60_000;
    this.count = opts.count ?? (() => undefined);
    this.random = opts.random ?? Math.random;
  }

  /** New settings (SIGHUP): later attempts use them; queued messages stay queued. */
  update(settings: WebhookConfig): void {
    this.settings = settings;
    this.queue.capacity = settings.queueSize;
  }

  /** Messages waiting or in flight. */
  get pending(): number {
    return this.queue.length + this.running;
  }

  /** Queue one message; never blocks, never throws. Returns false when dropped. */
  enqueue(ev: Pick<MessageEvent, 'metadata' | 'path'>): boolean {
    try {
      if (this.stopped) return false;
      if (!this.queue.push({ metadata: ev.metadata, path: ev.path, attempt: 0 })) {
        this.count('dropped');
        this.droppedSinceLog++;
        // A full queue under a flood would log once per message; once a second is plenty.
        const now = Date.now();
        if (now - this.lastDropLog >= 1000) {
          this.logger.warn({ tag: 'WEBHOOK_DROPPED', id: ev.metadata.id, dropped: this.droppedSinceLog, queueSize: this.queue.capacity }, 'webhook queue full; message dropped');
          this.lastDropLog = now;
          this.droppedSinceLog = 0;
        }
        return false;
      }
      this.pump();
      return true;
    } catch (e) {
      this.logger.error({ tag: 'WEBHOOK_ERROR', err: e instanceof Error ? e.message : String(e) }, 'webhook enqueue failed');
      return false;
    }
  }

  /** Resolves when nothing is queued or in flight (tests, graceful stop). */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Stop: wait up to graceMs for the queue to drain, then abort in-flight requests and drop the rest. */
  async stop(graceMs = 0): Promise<void> {
    if (this.stopped) return;
    if (graceMs > 0 && this.pending > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.idle(), new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    }
    this.stopped = true;
    const left = this.queue.clear();
    this.stopper.abort();
    // In-flight deliveries see the abort at once; wait for them to unwind (bounded: they only await aborted work).
    await this.idle();
    // One line for all that is given up: still queued, and in flight or waiting for a retry.
    const dropped = left + this.abandoned;
    if (dropped > 0) {
      this.count('dropped', dropped);
      this.logger.warn({ tag: 'WEBHOOK_DROPPED', dropped, queued: left, inFlight: this.abandoned, reason: 'shutdown' }, 'webhook deliveries dropped at shutdown');
    }
  }

  private pump(): void {
    while (!this.stopped && this.running < this.concurrency && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.running++;
      this.deliver(job)
        .catch((e: unknown) => this.logger.error({ tag: 'WEBHOOK_ERROR', id: job.metadata.id, err: e instanceof Error ? e.message : String(e) }, 'webhook worker failed'))
        .finally(() => {
          this.running--;
          this.pump();
          if (this.pending === 0) for (const w of this.idleWaiters.splice(0)) w();
        });
    }
  }

  /** Full jitter: uniform in [0, min(max, base * 2^attempt)] (AWS architecture blog's scheme). */
  backoffMs(attempt: number): number {
    const cap = Math.min(this.max, this.base * 2 ** Math.min(attempt, 30));
    return Math.floor(this.random() * cap);
  }

  private async deliver(job: Job): Promise<void> {
    const id = job.metadata.id;
    for (;;) {
      if (this.stopped) return void this.abandoned++;
      const s = this.settings;
      const err = await this.attempt(job, s);
      if (!err) {
        this.count('success');
        this.logger.debug({ tag: 'WEBHOOK', id, attempt: job.attempt }, 'webhook delivered');
        return;
      }
      if (this.stopped) return void this.abandoned++;
      if (!err.retry || job.attempt >= s.maxRetries) {
        this.count('failed');
        this.logger.warn({ tag: 'WEBHOOK_FAILED', id, url: safeUrl(s.url), attempts: job.attempt + 1, reason: err.reason }, 'webhook delivery failed');
        return;
      }
      const wait = this.backoffMs(job.attempt);
      job.attempt++;
      this.count('retry');
      this.logger.info({ tag: 'WEBHOOK_RETRY', id, attempt: job.attempt, inMs: wait, reason: err.reason }, 'webhook retry');
      await this.sleep(wait);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => {
      if (this.stopper.signal.aborted) return r();
      const onAbort = () => {
        clearTimeout(t);
        r();
      };
      const t = setTimeout(() => {
        this.stopper.signal.removeEventListener('abort', onAbort);
        r();
      }, ms);
      this.stopper.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** The raw message, read at send time, only when it fits includeRawMax. */
  private async raw(job: Job, max: number): Promise<string | undefined> {
    if (max <= 0 || !job.path || job.metadata.sizes.file > max) return undefined;
    const fh = await openMessage(job.path);
    try {
      const st = await fh.stat();
      if (st.size > max) return undefined;
      const buf = Buffer.alloc(st.size);
      const { bytesRead } = await fh.read(buf, 0, st.size, 0);
      return buf.subarray(0, bytesRead).toString('base64');
    } finally {
      await fh.close();
    }
  }

  private async attempt(job: Job, s: WebhookConfig): Promise<AttemptError | null> {
    const payload: WebhookPayload = { metadata: job.metadata, path: job.path };
    try {
      const raw = await this.raw(job, s.includeRawMax);
      if (raw !== undefined) payload.raw = raw;
    } catch (e) {
      // The file went away (cleanup) or is unreadable: send the metadata anyway.
      this.logger.info({ tag: 'WEBHOOK_RAW_SKIPPED', id: job.metadata.id, err: (e as NodeJS.ErrnoException).code ?? String(e) }, 'raw message not included');
    }
    try {
      const res = await fetch(s.url, {
        method: 'POST',
        headers: { ...s.headers, 'content-type': 'application/json', 'user-agent': 'fakemx-webhook' },
        body: JSON.stringify(payload),
        // A redirect of a POST is a receiver misconfiguration, not something to follow blindly.
        redirect: 'manual',
        signal: AbortSignal.any([AbortSignal.timeout(s.timeout), this.stopper.signal]),
      });
      // The receiver's body is of no interest; do not buffer it.
      await res.body?.cancel().catch(() => undefined);
      if (res.status >= 200 && res.status < 300) return null;
      return { retry: retryable(res.status), reason: `HTTP ${res.status}` };
    } catch (e) {
      const err = e as Error & { cause?: { code?: string } };
      const reason = err.name === 'TimeoutError' ? `timeout after ${s.timeout} ms` : err.cause?.code ?? err.message;
      return { retry: true, reason };
    }
  }
}
