// The corpus: one <id>.eml (trace headers + the body exactly as received after
// unstuffing) and one <id>.json (MessageMetadata) per message, under <storePath>/<YYYY-MM-DD>/.
// Durable before acknowledged: both are written under ".tmp-" names, fsynced, renamed into
// place (.eml first), then the directory is fsynced. Any failure removes every trace.
// A day directory (or the root) deleted or moved while running is recreated on the next
// message: ENOENT at open or rename means "make the directories again and retry once".

import type { SessionInfo } from '../smtp/hooks.js';
import { mkdir, open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { constants } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { newId } from '../util/id.js';
import { DAY_DIR, dayOf, TEMP_PREFIX } from './layout.js';
import { buildMetadata, traceInfo, type MessageMetadata, type PolicyFacts } from './metadata.js';

const FLUSH_AT = 64 * 1024;
/** Day directories scanned for stale temporaries at start-up. */
const SWEEP_DAYS = 3;
/** Queued-but-unwritten bytes above which the writer asks the session to stop reading. */
const HIGH_WATER = 256 * 1024;

export interface TraceInfo {
  hostName: string;
  sessionId: string;
  clientIp: string;
  clientPort: number;
  helo: string | undefined;
  esmtp: boolean;
  tls: boolean;
  smtputf8: boolean;
  mailFrom: string;
  rcptTo: string[];
}

/** A value from the client, made safe for a header line: no CR/LF/controls can start a new line. */
export function headerValue(s: string, max = 998): string {
  // eslint-disable-next-line no-control-regex
  const t = s.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, '?').replace(/\t/g, ' ');
  return t.length > max ? t.slice(0, max) : t;
}

/** RFC 5322 §3.3 date-time in UTC. */
export function rfc5322Date(d: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${days[d.getUTCDay()]}, ${d.getUTCDate()} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

/** RFC 5321 §4.4 Received: line plus fakemx's X-FakeMX-* trace headers. */
export function traceHeaders(t: TraceInfo, id: string, at: Date): string {
  // RFC 3848 / RFC 6531 §3.7.3: ESMTP, ESMTPS, UTF8SMTP, UTF8SMTPS.
  const proto = t.smtputf8 ? (t.tls ? 'UTF8SMTPS' : 'UTF8SMTP') : t.esmtp ? (t.tls ? 'ESMTPS' : 'ESMTP') : t.tls ? 'SMTPS' : 'SMTP';
  const helo = headerValue(t.helo ?? 'unknown', 200);
  const lit = t.clientIp.includes(':') ? `IPv6:${t.clientIp}` : t.clientIp;
  // §4.4: the FOR clause names the recipient only when there is exactly one.
  const forClause = t.rcptTo.length === 1 ? `\r\n\tfor <${headerValue(t.rcptTo[0]!, 256)}>` : '';
  let h = `Received: from ${helo} ([${lit}])\r\n\tby ${t.hostName} (fakemx) with ${proto} id ${id}${forClause};\r\n\t${rfc5322Date(at)}\r\n`;
  h += `X-FakeMX-Session: ${t.sessionId}\r\n`;
  h += `X-FakeMX-Client: ${t.clientIp}:${t.clientPort}\r\n`;
  h += `X-FakeMX-Helo: ${helo}\r\n`;
  h += `X-FakeMX-Mail-From: <${headerValue(t.mailFrom, 256)}>\r\n`;
  for (const r of t.rcptTo) h += `X-FakeMX-Rcpt-To: <${headerValue(r, 256)}>\r\n`;
  h += `X-FakeMX-Received-At: ${at.toISOString()}\r\n`;
  return h;
}

export class StoreError extends Error {
  constructor(readonly step: string, cause: unknown) {
    // The cause is kept: commit() tells a vanished directory (ENOENT) from other failures.
    super(`${step}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** A message being received in a session (Corpus.beginFor). */
export interface SessionMessage {
  write(chunk: Buffer): void | Promise<void>;
  abort(): void;
  /** Make it durable; throws StoreError (the reply is then 451). */
  commit(facts: PolicyFacts): Promise<StoredMessage>;
}

export interface StoredMessage {
  id: string;
  /** Absolute path of the .eml. */
  path: string;
  metadata: MessageMetadata;
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Group commit for one directory: every caller gets an fsync that started after it asked,
 * but callers that ask while one runs share the next. N renames cost ~2 fsyncs, not N.
 */
export class GroupSync {
  private running: Promise<void> | null = null;
  private next: Promise<void> | null = null;

  constructor(private readonly sync: () => Promise<void>) {}

  request(): Promise<void> {
    if (!this.running) {
      const run = this.sync();
      this.running = run;
      const clear = () => {
        if (this.running === run) this.running = null;
      };
      run.then(clear, clear);
      return run;
    }
    this.next ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.next = null;
        return this.request();
      });
    return this.next;
  }
}

export interface CorpusOptions {
  /** Directory fsync (tests record the calls; default opens the directory and fsyncs it). */
  syncDir?: (dir: string) => Promise<void>;
  /** Called with the directories made when a day directory or the root had to be (re)made. */
  onCreated?: (dirs: string[]) => void;
}

const isEnoent = (e: unknown) => (e as NodeJS.ErrnoException | null)?.code === 'ENOENT';

export class Corpus {
  private readonly days = new Map<string, Promise<void>>();
  private readonly dirSyncs = new Map<string, GroupSync>();
  private readonly syncDirFn: (dir: string) => Promise<void>;
  private readonly onCreated: ((dirs: string[]) => void) | undefined;

  constructor(
    readonly root: string,
    opts: CorpusOptions = {},
  ) {
    this.syncDirFn = opts.syncDir ?? fsyncDir;
    this.onCreated = opts.onCreated;
  }

  /**
   * mkdir -p, made durable: a new directory's entry lives in its parent, so every parent of
   * a directory made here is fsynced, top down. Returns the directories made (none if all existed).
   */
  private async makeDirs(dir: string): Promise<string[]> {
    const first = await mkdir(dir, { recursive: true });
    if (first === undefined) return [];
    const made = [first];
    for (const part of relative(first, dir).split(sep).filter(Boolean)) made.push(join(made[made.length - 1]!, part));
    for (const d of made) await this.syncDirFn(dirname(d));
    this.onCreated?.(made);
    return made;
  }

  private swept = false;

  /**
   * Create the root so the first message does not pay for it. The first init also removes
   * temporaries a killed process left behind (never visible as messages: readers skip
   * `.tmp-`); only the newest day directories are scanned, as a crash leaves them there.
   * One daemon per store: another process's in-flight temporaries would be removed too.
   */
  async init(): Promise<number> {
    await this.makeDirs(this.root);
    if (this.swept) return 0;
    this.swept = true;
    let removed = 0;
    const days = (await readdir(this.root)).filter((d) => DAY_DIR.test(d)).sort().slice(-SWEEP_DAYS);
    for (const day of days) {
      const dir = join(this.root, day);
      const names = await readdir(dir).catch(() => [] as string[]);
      const have = new Set(names);
      let renamed = false;
      for (const n of names) {
        if (!n.startsWith(TEMP_PREFIX)) continue;
        // Killed between the two renames: the .eml is in place and its fsynced metadata
        // is complete under the temporary name; finish the job instead of losing it.
        const id = n.endsWith('.json') ? n.slice(TEMP_PREFIX.length, -'.json'.length) : '';
        if (id && have.has(`${id}.eml`) && !have.has(`${id}.json`)) {
          await rename(join(dir, n), join(dir, `${id}.json`)).then(() => (renamed = true), () => undefined);
          continue;
        }
        await unlink(join(dir, n)).then(() => removed++, () => undefined);
      }
      if (renamed) await this.syncDirFn(dir);
    }
    return removed;
  }

  /**
   * The day directory exists (made once per day, shared by every message of the day). `stale`
   * is a promise an earlier call returned whose directory has since gone missing (ENOENT):
   * it is dropped and the directory made again; callers holding the same stale promise share
   * the one re-creation.
   */
  private dayDir(day: string, stale?: Promise<void>): Promise<void> {
    if (stale && this.days.get(day) === stale) this.days.delete(day);
    let p = this.days.get(day);
    if (!p) {
      const dir = join(this.root, day);
      // Nothing made (someone else made it): fsync the root anyway, their fsync may be pending.
      p = this.makeDirs(dir).then(async (made) => {
        if (made.length === 0) await this.syncDirFn(this.root);
      });
      const mine = p;
      p.catch(() => {
        if (this.days.get(day) === mine) this.days.delete(day);
      });
      if (this.days.size > 8) this.days.clear();
      this.days.set(day, p);
    }
    return p;
  }

  /** A message of a live session: the trace headers and the metadata are built from the session. */
  beginFor(s: SessionInfo, hostName: string): SessionMessage {
    const started = new Date();
    const w = this.begin(traceInfo(s, hostName), started);
    return {
      write: (c) => w.write(c),
      abort: () => w.abort(),
      commit: (facts) => w.commit(buildMetadata(s, hostName, started, facts)),
    };
  }

  /** Start a message. The header block is known now; the body streams in. */
  begin(trace: TraceInfo, now = new Date()): MessageWriter {
    const id = newId(now.getTime());
    const day = dayOf(now);
    const header = Buffer.from(traceHeaders(trace, id, now), 'utf8');
    const dir = join(this.root, day);
    return new MessageWriter(id, day, dir, header, now, (d, stale) => this.dayDir(d, stale), () => this.dirSync(dir));
  }

  private dirSync(dir: string): Promise<void> {
    let g = this.dirSyncs.get(dir);
    if (!g) {
      if (this.dirSyncs.size > 8) this.dirSyncs.clear();
      this.dirSyncs.set(dir, (g = new GroupSync(() => this.syncDirFn(dir))));
    }
    return g.request();
  }
}

export class MessageWriter {
  private fh: Promise<FileHandle>;
  private queue: Buffer[] = [];
  private queued = 0;
  private chain: Promise<void> = Promise.resolve();
  private inFlight = 0;
  private failed: unknown = null;
  private done = false;
  readonly tmpEml: string;
  readonly tmpJson: string;
  readonly eml: string;
  readonly json: string;
  bodyBytes = 0;

  constructor(
    readonly id: string,
    readonly day: string,
    readonly dir: string,
    readonly header: Buffer,
    readonly startedAt: Date,
    private readonly ensureDay: (day: string, stale?: Promise<void>) => Promise<void>,
    private readonly syncDir: () => Promise<void>,
  ) {
    this.tmpEml = join(dir, `${TEMP_PREFIX}${id}.eml`);
    this.tmpJson = join(dir, `${TEMP_PREFIX}${id}.json`);
    this.eml = join(dir, `${id}.eml`);
    this.json = join(dir, `${id}.json`);
    this.fh = this.openTemp();
    this.fh.catch((e) => (this.failed ??= new StoreError('open', e)));
    this.queue.push(header);
    this.queued = header.length;
  }

  /**
   * Open the .eml temporary (read-write: a message whose directory vanishes later is copied
   * back out of it). The day directory is known to exist once per day; if it is gone (ENOENT:
   * deleted or moved away), it is made again and the open retried once.
   */
  private async openTemp(): Promise<FileHandle> {
    const known = this.ensureDay(this.day);
    await known;
    try {
      return await open(this.tmpEml, 'wx+', 0o640);
    } catch (e) {
      if (!isEnoent(e)) throw e;
      await this.ensureDay(this.day, known);
      return await open(this.tmpEml, 'wx+', 0o640);
    }
  }

  /** Append body bytes. A returned Promise asks the caller to pause until it settles. */
  write(chunk: Buffer): void | Promise<void> {
    if (this.done || this.failed) return;
    this.queue.push(chunk);
    this.queued += chunk.length;
    this.bodyBytes += chunk.length;
    if (this.queued >= FLUSH_AT) {
      this.flush();
      if (this.queued + this.inFlight >= HIGH_WATER) return this.chain.catch(() => undefined);
    }
  }

  private flush(): void {
    if (this.queue.length === 0) return;
    const bufs = this.queue;
    const n = this.queued;
    this.queue = [];
    this.queued = 0;
    this.inFlight += n;
    this.chain = this.chain.then(async () => {
      if (this.failed) return;
      try {
        const fh = await this.fh;
        await writeAll(fh, bufs, n);
      } catch (e) {
        this.failed ??= new StoreError('write', e);
      } finally {
        this.inFlight -= n;
      }
    });
  }

  /** Finish durably. `meta` is completed with id, file and sizes. Throws StoreError. */
  async commit(meta: Omit<MessageMetadata, 'id' | 'file' | 'sizes'>): Promise<StoredMessage> {
    this.done = true;
    this.flush();
    await this.chain;
    let fh: FileHandle | undefined;
    const placed = { eml: false };
    try {
      if (this.failed) throw this.failed;
      fh = await this.fh;
      const metadata: MessageMetadata = {
        ...meta,
        id: this.id,
        file: `${this.day}/${this.id}.eml`,
        sizes: { body: this.bodyBytes, headers: this.header.length, file: this.header.length + this.bodyBytes },
      };
      const json = JSON.stringify(metadata) + '\n';
      // Both files are made durable at once: concurrent fsyncs share a journal commit.
      const emlSynced = fh.sync().then(
        () => undefined,
        (e: unknown) => new StoreError('fsync', e),
      );
      const jsonSynced = writeDurable(this.tmpJson, json).then(
        () => undefined,
        (e: unknown) => (e instanceof StoreError ? e : new StoreError('metadata', e)),
      );
      const [e1, e2] = await Promise.all([emlSynced, jsonSynced]);
      if (e1) throw e1;
      // ENOENT here and at the renames below: the directory (or our temporary) went away
      // since the open. The data is still in hand: the open .eml and the metadata text.
      if (e2 && !isEnoent(e2.cause)) throw e2;
      try {
        if (e2) throw e2.cause;
        await this.place(placed);
      } catch (e) {
        if (!isEnoent(e)) throw new StoreError('rename', e);
        await this.rewrite(fh, json, placed);
      }
      const closing = fh;
      fh = undefined;
      // Data and names are durable already; a failing close cannot lose anything.
      await closing.close().catch(() => undefined);
      return { id: this.id, path: this.eml, metadata };
    } catch (e) {
      if (fh) await fh.close().catch(() => undefined);
      await this.cleanup(placed.eml);
      throw e instanceof StoreError ? e : new StoreError('store', e);
    }
  }

  /** Rename both temporaries into place (.eml first), then fsync the directory. */
  private async place(placed: { eml: boolean }): Promise<void> {
    await rename(this.tmpEml, this.eml);
    placed.eml = true;
    await rename(this.tmpJson, this.json);
    await this.syncDir();
  }

  /**
   * The one retry after ENOENT: make the day directory again, write both temporaries anew
   * (the .eml copied from the still-open descriptor, which outlives its name), fsync, place.
   * Same guarantees as the first attempt; a second failure is final.
   */
  private async rewrite(src: FileHandle, json: string, placed: { eml: boolean }): Promise<void> {
    await this.cleanup(placed.eml);
    placed.eml = false;
    try {
      await this.ensureDay(this.day, this.ensureDay(this.day));
      const out = await open(this.tmpEml, 'wx', 0o640);
      try {
        await copyAll(src, out, this.header.length + this.bodyBytes);
        await out.sync();
      } finally {
        await out.close();
      }
      await writeDurable(this.tmpJson, json);
      await this.place(placed);
    } catch (e) {
      throw e instanceof StoreError ? e : new StoreError('rewrite', e);
    }
  }

  /** Drop the message: close and remove the temporary files. Never throws. */
  abort(): void {
    if (this.done) return;
    this.done = true;
    this.queue = [];
    this.chain
      .then(() => this.fh)
      .then((fh) => fh.close())
      .catch(() => undefined)
      .then(() => this.cleanup(false))
      .catch(() => undefined);
  }

  private async cleanup(renamed: boolean): Promise<void> {
    const paths = renamed ? [this.eml, this.tmpJson, this.json] : [this.tmpEml, this.tmpJson];
    await Promise.all(paths.map((p) => unlink(p).catch(() => undefined)));
  }
}

/**
 * FileHandle.writev may write less than asked (a filling disk returns a short count before
 * ENOSPC) and does not retry: go on until every byte is out, so the next write reports the
 * error instead of a truncated file being acknowledged.
 */
async function writeAll(fh: FileHandle, bufs: Buffer[], total: number): Promise<void> {
  let left = bufs;
  let remaining = total;
  while (remaining > 0) {
    const { bytesWritten } = await fh.writev(left);
    if (bytesWritten <= 0) throw new Error('write made no progress');
    remaining -= bytesWritten;
    if (remaining <= 0) return;
    let skip = bytesWritten;
    let i = 0;
    while (skip >= left[i]!.length) skip -= left[i++]!.length;
    left = [left[i]!.subarray(skip), ...left.slice(i + 1)];
  }
}

/** Copy `size` bytes from the start of `src` (opened for reading) to `dst`, by position: no shared offset. */
async function copyAll(src: FileHandle, dst: FileHandle, size: number): Promise<void> {
  const buf = Buffer.allocUnsafe(Math.min(FLUSH_AT, Math.max(1, size)));
  let pos = 0;
  while (pos < size) {
    const { bytesRead } = await src.read(buf, 0, Math.min(buf.length, size - pos), pos);
    if (bytesRead <= 0) throw new Error(`copy: file ended at ${pos} of ${size} bytes`);
    await writeAll(dst, [buf.subarray(0, bytesRead)], bytesRead);
    pos += bytesRead;
  }
}

async function writeDurable(path: string, text: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, 'wx', 0o640);
    await fh.writeFile(text);
    await fh.sync();
  } catch (e) {
    throw new StoreError('metadata', e);
  } finally {
    await fh?.close().catch(() => undefined);
  }
}
