// The corpus: per message the message file (trace headers + the body exactly as received
// after unstuffing; <id>.eml, or a Maildir file in new/ with store.format maildir) and its
// <id>.json record (MessageMetadata), under <storePath>/<YYYY-MM-DD>/ (names: layout.ts).
// Durable before acknowledged: the message is written under a temporary name and fdatasynced
// while its record is appended to the day's journal (group commit, journal.ts); then it is
// renamed into place beside its record file, and the directory is fsynced (once per group).
// Any failure removes every trace.
// A day directory (or the root) deleted or moved while running is recreated on the next
// message: ENOENT at open or rename means "make the directories again and retry once".

import type { SessionInfo } from '../smtp/hooks.js';
import { open, readdir, readFile, rename, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import fs, { constants } from 'node:fs';
import { createHash, type Hash } from 'node:crypto';
import { hostname } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { newId } from '../util/id.js';
import { DayCommit, journalLines, writevAll, type CommitResult } from './journal.js';
import { DAY_DIR, dayOf, idOfMaildirName, isRecordFile, JOURNAL, MAILDIR_SUBDIRS, maildirName, TEMP_PREFIX, type StoreFormat } from './layout.js';
import { addArrivals, arrivalOf, buildMetadata, traceInfo, type Arrival, type MessageMetadata, type PolicyFacts, type TraceInfo } from './metadata.js';

export type { TraceInfo };
import { mkdirp } from '../util/mkdirp.js';
import { SmallReads } from '../util/small-reads.js';
import { HEADER_UNSAFE_G, safeJson } from '../util/escape.js';

export type { StoreFormat } from './layout.js';

const FLUSH_AT = 64 * 1024;
/** A message temporary: a new name only (O_EXCL), read-write (see openTemp). */
const OPEN_NEW = constants.O_CREAT | constants.O_EXCL | constants.O_RDWR;
/** Day directories scanned for stale temporaries at start-up. */
const SWEEP_DAYS = 3;
/** Queued-but-unwritten bytes above which the writer asks the session to stop reading. */
const HIGH_WATER = 256 * 1024;

/** A value from the client, made safe for a header line: no CR/LF/controls can start a new line. */
export function headerValue(s: string, max = 998): string {
  // Not only C0: U+0085 and U+2028/9 end a line for Unicode-aware readers, and C1 and the bidi
  // controls act on a terminal showing the corpus (util/escape.ts lists them).
  const t = s.replace(HEADER_UNSAFE_G, '?').replace(/\t/g, ' ');
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
  // An IPv6 address in brackets: "2001:db8::1:5555" would itself read as one address.
  h += `X-FakeMX-Client: ${t.clientIp.includes(':') ? `[${t.clientIp}]` : t.clientIp}:${t.clientPort}\r\n`;
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
  /** Absolute path of the message file (.eml, or the Maildir file in new/). */
  path: string;
  metadata: MessageMetadata;
  /** store.dedupe: the body was stored before as this message (id, path, metadata are its). */
  duplicateOf?: string;
  /** store.dedupe: this arrival's own id (in the first message's duplicates.arrivals). */
  arrivalId?: string;
}

/** fsync of a directory, so a rename or a new name in it is durable (the console's snapshot uses it too). */
export function fsyncDir(dir: string): Promise<void> {
  // Callbacks on a raw descriptor: a FileHandle costs several times the syscall (Round 4).
  return new Promise((resolve, reject) => {
    fs.open(dir, constants.O_RDONLY | constants.O_DIRECTORY, (err, fd) => {
      if (err) return reject(err);
      fs.fsync(fd, (err2) =>
        fs.close(fd, (err3) => {
          const e = err2 ?? err3;
          if (e) reject(e);
          else resolve();
        }),
      );
    });
  });
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

export interface CorpusSettings {
  /** eml: <day>/<id>.eml; maildir: each day directory a Maildir (layout.ts). */
  format: StoreFormat;
  /** Store a body once; later arrivals are recorded in the first one's metadata. */
  dedupe: boolean;
}

/** The disk cap (space.ts) as the corpus sees it. */
export interface SpacePolicy {
  /** Why nothing may be stored now (store full), or null. Synchronous: never holds a session. */
  fullReason(): string | null;
  /** Bytes a stored message (or an arrival) added to a day. */
  added(day: string, bytes: number): void;
}

export interface CorpusOptions extends Partial<CorpusSettings> {
  /** Directory fsync (tests record the calls; default opens the directory and fsyncs it). */
  syncDir?: (dir: string) => Promise<void>;
  /** Called with the directories made when a day directory or the root had to be (re)made. */
  onCreated?: (dirs: string[]) => void;
  /** Host part of Maildir names; default the system host name. */
  host?: string;
}

/** Nothing was stored: the disk cap is reached (store.onFull stop, or prune could not free enough). */
export class StoreFullError extends Error {
  constructor(readonly id: string, readonly reason: string) {
    super(`store full: ${reason}`);
  }
}

const isEnoent = (e: unknown) => (e as NodeJS.ErrnoException | null)?.code === 'ENOENT';

interface IndexEntry {
  id: string;
  day: string;
  /** Absolute path of the message file and of its record. */
  path: string;
  json: string;
  /** Set while the first message with this body is being committed: true once stored. */
  pending: Promise<boolean> | null;
}

/** Bodies remembered for store.dedupe (oldest forgotten first). */
const DEDUPE_CAPACITY = 200_000;

interface DupQueue {
  waiting: Arrival[];
  next: Promise<MessageMetadata> | null;
  last: Promise<unknown>;
}

export class Corpus {
  private readonly days = new Map<string, Promise<void>>();
  private readonly dirSyncs = new Map<string, GroupSync>();
  private readonly journals = new Map<string, DayCommit>();
  private readonly inflight = new Map<string, number>();
  private readonly index = new Map<string, IndexEntry>();
  private readonly dupQueues = new Map<string, DupQueue>();
  private readonly syncDirFn: (dir: string) => Promise<void>;
  private readonly onCreated: ((dirs: string[]) => void) | undefined;
  private readonly host: string;
  private seq = 0;
  settings: CorpusSettings;
  space: SpacePolicy | null = null;

  constructor(
    readonly root: string,
    opts: CorpusOptions = {},
  ) {
    this.syncDirFn = opts.syncDir ?? fsyncDir;
    this.onCreated = opts.onCreated;
    this.host = opts.host ?? hostname();
    this.settings = { format: opts.format ?? 'eml', dedupe: opts.dedupe ?? false };
  }

  /** New settings (a reload): later messages use them; messages in flight finish as begun. */
  configure(s: Partial<CorpusSettings>): void {
    this.settings = { ...this.settings, ...s };
    if (!this.settings.dedupe) this.index.clear();
  }

  /**
   * mkdir -p, made durable: a new directory's entry lives in its parent, so every parent of
   * a directory made here is fsynced, top down. Returns the directories made (none if all existed).
   */
  private async makeDirs(dir: string): Promise<string[]> {
    const first = await mkdirp(dir);
    if (first === undefined) return [];
    const made = [first];
    for (const part of relative(first, dir).split(sep).filter(Boolean)) made.push(join(made[made.length - 1]!, part));
    for (const d of made) await this.syncDirFn(dirname(d));
    this.onCreated?.(made);
    return made;
  }

  private swept = false;

  /**
   * Create the root so the first message does not pay for it. The first init also cleans up
   * after a killed process, in the newest day directories only (a crash leaves them there):
   * temporaries are removed (never visible as messages: readers skip `.tmp-` and Maildir's
   * tmp/), and every message's record is checked against the day's journal: a record missing
   * or short (its file was not yet fsynced: only the journal is) is written again from it.
   * With store.dedupe the index of bodies is rebuilt from the same journals.
   * One daemon per store: another process's in-flight temporaries would be removed too.
   * Returns the temporaries removed.
   */
  async init(): Promise<number> {
    await this.makeDirs(this.root);
    if (this.swept) return 0;
    this.swept = true;
    let removed = 0;
    const days = (await readdir(this.root)).filter((d) => DAY_DIR.test(d)).sort().slice(-SWEEP_DAYS);
    for (const day of days) removed += await this.recoverDay(day);
    return removed;
  }

  /** Ids of the messages present in a day directory, both formats (Maildir: new/ and cur/). */
  private async messagesIn(dir: string, names: string[]): Promise<Map<string, string>> {
    const ids = new Map<string, string>();
    for (const n of names) if (n.endsWith('.eml') && !n.startsWith(TEMP_PREFIX)) ids.set(n.slice(0, -4), join(dir, n));
    for (const sub of ['new', 'cur']) {
      if (!names.includes(sub)) continue;
      for (const n of await readdir(join(dir, sub)).catch(() => [] as string[])) {
        const id = idOfMaildirName(n);
        if (id) ids.set(id, join(dir, sub, n));
      }
    }
    return ids;
  }

  private async recoverDay(day: string): Promise<number> {
    const dir = join(this.root, day);
    let removed = 0;
    let changed = false;
    const names = await readdir(dir).catch(() => [] as string[]);
    const present = await this.messagesIn(dir, names);
    const have = new Set(names);
    for (const n of names) {
      // A record written while its message was being renamed, killed before that rename
      // finished: the message was never acknowledged (journal.ts places both at once).
      if (isRecordFile(n) && !present.has(n.slice(0, -'.json'.length))) {
        await unlink(join(dir, n)).then(() => (changed = true), () => undefined);
        continue;
      }
      if (!n.startsWith(TEMP_PREFIX)) continue;
      // A store written before records lost their temporaries (Round 4), killed between the two
      // renames: the message is in place and its record complete under the temporary name
      // (checked against the journal below); finish the job.
      const id = n.endsWith('.json') ? n.slice(TEMP_PREFIX.length, -'.json'.length) : '';
      if (id && present.has(id) && !have.has(`${id}.json`)) {
        await rename(join(dir, n), join(dir, `${id}.json`)).then(() => (changed = true), () => undefined);
        continue;
      }
      await unlink(join(dir, n)).then(() => removed++, () => undefined);
    }
    // Maildir: whatever is in tmp/ was never delivered (maildir(5)).
    if (have.has('tmp')) {
      for (const n of await readdir(join(dir, 'tmp')).catch(() => [] as string[])) await unlink(join(dir, 'tmp', n)).then(() => removed++, () => undefined);
    }
    const text = await readFile(join(dir, JOURNAL), 'utf8').catch(() => '');
    if (text !== '') changed = (await this.replay(day, dir, text, present)) || changed;
    if (changed) await this.syncDirFn(dir);
    return removed;
  }

  /** Records from the journal: rewrite those missing or short on disk; rebuild the dedupe index. */
  private async replay(day: string, dir: string, text: string, present: Map<string, string>): Promise<boolean> {
    const records = new Map<string, MessageMetadata>();
    for (const r of journalLines(text)) {
      if (typeof r.duplicateOf === 'string') {
        const base = records.get(r.duplicateOf);
        if (base && r.arrival && typeof r.arrival === 'object') records.set(r.duplicateOf, addArrivals(base, [r.arrival as Arrival]));
      } else if (typeof r.id === 'string' && typeof r.file === 'string') {
        records.set(r.id, r as unknown as MessageMetadata);
      }
    }
    let changed = false;
    for (const [id, m] of records) {
      const path = present.get(id);
      if (!path) continue;
      const text = safeJson(m) + '\n';
      const json = join(dir, `${id}.json`);
      const size = await stat(json).then((s) => s.size, () => -1);
      if (size !== Buffer.byteLength(text)) {
        await writeDurable(join(dir, `${TEMP_PREFIX}${id}.json`), text);
        await rename(join(dir, `${TEMP_PREFIX}${id}.json`), json);
        changed = true;
      }
      if (this.settings.dedupe && typeof m.bodySha256 === 'string') this.remember(m.bodySha256, { id, day, path, json, pending: null });
    }
    return changed;
  }

  private remember(hash: string, e: IndexEntry): void {
    this.index.delete(hash);
    this.index.set(hash, e);
    if (this.index.size > DEDUPE_CAPACITY) this.index.delete(this.index.keys().next().value!);
  }

  /**
   * The day directory exists (made once per day, shared by every message of the day; in the
   * Maildir format with tmp/, new/ and cur/). `stale` is a promise an earlier call returned
   * whose directory has since gone missing (ENOENT): it is dropped and the directory made
   * again; callers holding the same stale promise share the one re-creation.
   */
  dayDir(day: string, format: StoreFormat, stale?: Promise<void>): Promise<void> {
    const key = `${format}/${day}`;
    if (stale && this.days.get(key) === stale) {
      this.days.delete(key);
    }
    let p = this.days.get(key);
    if (!p) {
      const dir = join(this.root, day);
      // Nothing made (someone else made it): fsync the root anyway, their fsync may be pending.
      p = this.makeDirs(dir).then(async (made) => {
        if (format === 'maildir') for (const sub of MAILDIR_SUBDIRS) made.push(...(await this.makeDirs(join(dir, sub))));
        if (made.length === 0) await this.syncDirFn(this.root);
      });
      const mine = p;
      p.catch(() => {
        if (this.days.get(key) === mine) this.days.delete(key);
      });
      if (this.days.size > 8) this.days.clear();
      this.days.set(key, p);
    }
    return p;
  }

  /** The day's group commit and journal (journal.ts; the newest few days are kept). */
  journalFor(day: string): DayCommit {
    let j = this.journals.get(day);
    if (!j) {
      if (this.journals.size >= 4) this.journals.delete([...this.journals.keys()].sort()[0]!);
      this.journals.set(day, (j = new DayCommit(join(this.root, day, JOURNAL), (d) => this.dirSync(d))));
    }
    return j;
  }

  /** A day is being pruned (space.ts): forget what points into it. */
  forgetDay(day: string): void {
    this.journals.delete(day);
    for (const k of [...this.days.keys()]) if (k.endsWith(`/${day}`)) this.days.delete(k);
    for (const [h, e] of this.index) if (e.day === day && !e.pending) this.index.delete(h);
  }

  /** Days with a message being received or committed (never pruned). */
  busyDays(): Set<string> {
    return new Set([...this.inflight].filter(([, n]) => n > 0).map(([d]) => d));
  }

  enter(day: string): void {
    this.inflight.set(day, (this.inflight.get(day) ?? 0) + 1);
  }

  leave(day: string): void {
    const n = (this.inflight.get(day) ?? 1) - 1;
    if (n <= 0) this.inflight.delete(day);
    else this.inflight.set(day, n);
  }

  /** A message of a live session: the trace headers and the metadata are built from the session. */
  beginFor(s: SessionInfo, hostName: string): SessionMessage {
    const started = new Date();
    const full = this.space?.fullReason() ?? null;
    if (full !== null) return fullMessage(newId(started.getTime()), full);
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
    const header = Buffer.from(traceHeaders(trace, id, now), 'utf8');
    this.seq = (this.seq + 1) % 1_000_000_000;
    return new MessageWriter(this, id, dayOf(now), now, header, this.settings, this.seq, this.host);
  }

  dirSync(dir: string): Promise<void> {
    let g = this.dirSyncs.get(dir);
    if (!g) {
      if (this.dirSyncs.size > 16) this.dirSyncs.clear();
      this.dirSyncs.set(dir, (g = new GroupSync(() => this.syncDirFn(dir))));
    }
    return g.request();
  }

  /** store.dedupe: the entry of a body already stored or being stored, or null after claiming it for `w`. */
  claim(hash: string, w: MessageWriter, settle: Promise<boolean>): IndexEntry | null {
    const e = this.index.get(hash);
    if (e) return e;
    this.remember(hash, { id: w.id, day: w.day, path: w.msg, json: w.json, pending: settle });
    return null;
  }

  /** The first message with this body is stored (true) or failed (false: forget it). */
  settled(hash: string, id: string, ok: boolean): void {
    const e = this.index.get(hash);
    if (!e || e.id !== id) return;
    if (ok) e.pending = null;
    else this.index.delete(hash);
  }

  /** store.dedupe: an entry that no longer works (its record is gone): forget it. */
  drop(hash: string, e: IndexEntry): void {
    if (this.index.get(hash) === e) this.index.delete(hash);
  }

  /**
   * Fold an arrival (already durable in the journal) into the first message's record file.
   * Arrivals for one message are applied in order, several per rewrite when they queue up.
   */
  noteArrival(e: IndexEntry, a: Arrival): Promise<MessageMetadata> {
    let q = this.dupQueues.get(e.id);
    if (!q) this.dupQueues.set(e.id, (q = { waiting: [], next: null, last: Promise.resolve() }));
    const queue = q;
    queue.waiting.push(a);
    if (!queue.next) {
      const p = queue.last.then(async () => {
        queue.next = null;
        const batch = queue.waiting.splice(0);
        const m = addArrivals(JSON.parse(await readFile(e.json, 'utf8')) as MessageMetadata, batch);
        const tmp = join(dirname(e.json), `${TEMP_PREFIX}${e.id}.json`);
        await writeFile(tmp, safeJson(m) + '\n', { mode: 0o640 });
        await rename(tmp, e.json);
        return m;
      });
      queue.next = p;
      queue.last = p.catch(() => undefined);
      void queue.last.then(() => {
        if (this.dupQueues.get(e.id) === queue && queue.next === null && queue.waiting.length === 0) this.dupQueues.delete(e.id);
      });
    }
    return queue.next;
  }
}

/** What beginFor returns while the store is full: reads and drops the body; commit says why. */
function fullMessage(id: string, reason: string): SessionMessage {
  return {
    write() {},
    abort() {},
    commit: () => Promise.reject(new StoreFullError(id, reason)),
  };
}

export class MessageWriter {
  /** The temporary's descriptor (raw: no FileHandle per message on the hot path). */
  private fd: Promise<number>;
  private queue: Buffer[] = [];
  private queued = 0;
  /** Body reads of a client that splits its input finely are copied together (util/small-reads.ts). */
  private readonly small = new SmallReads();
  private chain: Promise<void> = Promise.resolve();
  private inFlight = 0;
  private failed: StoreError | null = null;
  private done = false;
  private left = false;
  private readonly hash: Hash | null;
  readonly dir: string;
  /** The message file while it is written, and where it goes once durable. */
  readonly tmpMsg: string;
  readonly msg: string;
  /** Its record (written beside it at the commit; no temporary: see journal.ts). */
  readonly json: string;
  /** The message file relative to the store root (the record's `file`). */
  readonly file: string;
  /** Directories whose entries change when it is placed (fsynced once per group commit). */
  private readonly syncDirs: string[];
  readonly format: StoreFormat;
  bodyBytes = 0;

  constructor(
    private readonly corpus: Corpus,
    readonly id: string,
    readonly day: string,
    readonly startedAt: Date,
    readonly header: Buffer,
    settings: CorpusSettings,
    seq: number,
    host: string,
  ) {
    this.format = settings.format;
    this.dir = join(corpus.root, day);
    this.json = join(this.dir, `${id}.json`);
    if (this.format === 'maildir') {
      const name = maildirName(startedAt, id, seq, process.pid, host);
      this.tmpMsg = join(this.dir, 'tmp', name);
      this.msg = join(this.dir, 'new', name);
      this.file = `${day}/new/${name}`;
      // new/ for the message, the day directory for its record and the journal.
      this.syncDirs = [join(this.dir, 'new'), this.dir];
    } else {
      this.tmpMsg = join(this.dir, `${TEMP_PREFIX}${id}.eml`);
      this.msg = join(this.dir, `${id}.eml`);
      this.file = `${day}/${id}.eml`;
      this.syncDirs = [this.dir];
    }
    this.hash = settings.dedupe ? createHash('sha256') : null;
    corpus.enter(day);
    this.fd = this.openTemp();
    this.fd.catch((e) => (this.failed ??= new StoreError('open', e)));
    // The header goes out with the first body bytes: a small message is one writev.
    this.queue.push(header);
    this.queued = header.length;
  }

  private ensureDay(stale?: Promise<void>): Promise<void> {
    return this.corpus.dayDir(this.day, this.format, stale);
  }

  /**
   * Open the message temporary: O_CREAT|O_EXCL (a fresh name, never another's file), read-write
   * (a message whose directory vanishes later is copied back out of it). The day directory is
   * known to exist once per day; if it is gone (ENOENT: deleted or moved away), it is made
   * again and the open retried once.
   */
  private async openTemp(): Promise<number> {
    const known = this.ensureDay();
    await known;
    try {
      return await openFd(this.tmpMsg);
    } catch (e) {
      if (!isEnoent(e)) throw e;
      await this.ensureDay(known);
      return await openFd(this.tmpMsg);
    }
  }

  /** Append body bytes. A returned Promise asks the caller to pause until it settles. */
  write(chunk: Buffer): void | Promise<void> {
    if (this.done || this.failed) return;
    this.small.push(this.queue, chunk);
    this.queued += chunk.length;
    this.bodyBytes += chunk.length;
    this.hash?.update(chunk);
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
        const fd = await this.fd;
        await new Promise<void>((res, rej) => writevAll(fd, bufs, (e) => (e ? rej(e) : res())));
      } catch (e) {
        this.failed ??= new StoreError('write', e);
      } finally {
        this.inFlight -= n;
      }
    });
  }

  private leave(): void {
    if (this.left) return;
    this.left = true;
    this.corpus.leave(this.day);
  }

  /**
   * Finish durably; `meta` is completed with id, file and sizes. Throws StoreError, or
   * StoreFullError when the disk cap was reached while the message came in.
   *
   * The cost per message is one fsync, of the message itself (fdatasync of the temporary,
   * started at once); meanwhile its record joins the day's group commit (journal.ts): one
   * journal write and sync for every message committing together, then the rename and the
   * record file, then one directory fsync for the group, then the answer.
   */
  async commit(meta: Omit<MessageMetadata, 'id' | 'file' | 'sizes'>): Promise<StoredMessage> {
    this.done = true;
    this.flush();
    await this.chain;
    let fd: number | undefined;
    let placed = false;
    let claimed: { hash: string; settle: (ok: boolean) => void } | null = null;
    try {
      if (this.failed) throw this.failed;
      fd = await this.fd;
      const full = this.corpus.space?.fullReason() ?? null;
      if (full !== null) throw new StoreFullError(this.id, full);
      const hash = this.hash?.digest('hex');
      if (hash !== undefined) {
        for (;;) {
          let settle!: (ok: boolean) => void;
          const done = new Promise<boolean>((r) => (settle = r));
          const first = this.corpus.claim(hash, this, done);
          if (!first) {
            claimed = { hash, settle };
            break;
          }
          if (first.pending && !(await first.pending)) continue;
          const dup = await this.duplicate(first, meta).catch(() => null);
          if (dup) {
            closeFd(fd);
            fd = undefined;
            await this.cleanup(false);
            return dup;
          }
          // Its record could not be updated (pruned, deleted): store this one instead.
          this.corpus.drop(hash, first);
        }
      }
      const metadata: MessageMetadata = {
        ...meta,
        id: this.id,
        file: this.file,
        sizes: { body: this.bodyBytes, headers: this.header.length, file: this.header.length + this.bodyBytes },
        ...(hash !== undefined ? { bodySha256: hash } : {}),
      };
      const json = safeJson(metadata) + '\n';
      const r = await this.groupCommit(fd, json);
      placed = r.placed;
      if (r.err) {
        // ENOENT at the journal or the rename: the directory (or our temporary) went away
        // since the open. The data is still in hand: the open descriptor and the record text.
        if (r.step === 'fsync' || !isEnoent(r.err)) throw new StoreError(r.step, r.err);
        await this.rewrite(fd, json);
        placed = true;
      }
      // Data and names are durable already; a failing close cannot lose anything.
      closeFd(fd);
      fd = undefined;
      if (claimed) this.corpus.settled(claimed.hash, this.id, true);
      claimed?.settle(true);
      this.corpus.space?.added(this.day, metadata.sizes.file + 2 * Buffer.byteLength(json));
      return { id: this.id, path: this.msg, metadata };
    } catch (e) {
      if (claimed) this.corpus.settled(claimed.hash, this.id, false);
      claimed?.settle(false);
      if (fd !== undefined) closeFd(fd);
      await this.cleanup(placed);
      throw e instanceof StoreError || e instanceof StoreFullError ? e : new StoreError('store', e);
    } finally {
      this.leave();
    }
  }

  /** The message's own fdatasync, and its record in the day's group commit at the same time. */
  private groupCommit(fd: number, json: string): Promise<CommitResult> {
    return new Promise((resolve) => {
      const synced = this.corpus.journalFor(this.day).commit(json, { from: this.tmpMsg, to: this.msg, json: this.json, dirs: this.syncDirs }, resolve);
      fs.fdatasync(fd, synced);
    });
  }

  /**
   * The body is already stored as `first`: record this arrival durably in the first one's
   * day journal, then in its record file. Returns what the session reports (the first
   * message's id, file and updated record), or throws when the first one is gone.
   */
  private async duplicate(first: IndexEntry, meta: Omit<MessageMetadata, 'id' | 'file' | 'sizes'>): Promise<StoredMessage> {
    const a = arrivalOf(this.id, meta);
    await stat(first.json);
    await this.corpus.journalFor(first.day).append(safeJson({ duplicateOf: first.id, arrival: a }) + '\n');
    const metadata = await this.corpus.noteArrival(first, a);
    this.corpus.space?.added(first.day, 2 * Buffer.byteLength(JSON.stringify(a)));
    return { id: first.id, path: first.path, metadata, duplicateOf: first.id, arrivalId: this.id };
  }

  /**
   * The one retry after ENOENT: make the day directory again, write the message anew (copied
   * from the still-open descriptor, which outlives its name), then the same group commit
   * (its own fdatasync, the record journaled again: the old journal may have gone with the
   * directory, rename, directory fsync). Same guarantees as the first attempt; a second
   * failure is final.
   */
  private async rewrite(src: number, json: string): Promise<void> {
    await this.cleanup(false);
    let out: number | undefined;
    try {
      await this.ensureDay(this.ensureDay());
      out = await openFd(this.tmpMsg);
      await copyAll(src, out, this.header.length + this.bodyBytes);
      const r = await this.groupCommit(out, json);
      if (r.err) {
        if (r.placed) await this.cleanup(true);
        throw new StoreError('rewrite', r.err);
      }
    } catch (e) {
      throw e instanceof StoreError ? e : new StoreError('rewrite', e);
    } finally {
      if (out !== undefined) closeFd(out);
    }
  }

  /**
   * Drop the message: remove the temporary as soon as it exists (at once when it is open: writes
   * still queued go to the unlinked file), close it once those writes are done. Never throws.
   */
  abort(): void {
    if (this.done) return;
    this.done = true;
    this.queue = [];
    const removed = this.fd.then(
      () => this.cleanup(false),
      () => undefined,
    );
    this.chain
      .then(() => this.fd)
      .then((fd) => closeFd(fd))
      .catch(() => undefined)
      .then(() => removed)
      .catch(() => undefined)
      .finally(() => this.leave());
  }

  /** Remove what this message left: the temporary, or the placed file; and its record file. */
  private async cleanup(placed: boolean): Promise<void> {
    const paths = [placed ? this.msg : this.tmpMsg, this.json];
    await Promise.all(paths.map((p) => unlink(p).catch(() => undefined)));
  }
}

function openFd(path: string): Promise<number> {
  return new Promise((res, rej) => fs.open(path, OPEN_NEW, 0o640, (e, fd) => (e ? rej(e) : res(fd))));
}

function closeFd(fd: number): void {
  fs.close(fd, () => undefined);
}

/** Copy `size` bytes from the start of `src` (open for reading) to `dst`, by position: no shared offset. */
async function copyAll(src: number, dst: number, size: number): Promise<void> {
  const buf = Buffer.allocUnsafe(Math.min(FLUSH_AT, Math.max(1, size)));
  let pos = 0;
  while (pos < size) {
    const n = await new Promise<number>((res, rej) => fs.read(src, buf, 0, Math.min(buf.length, size - pos), pos, (e, got) => (e ? rej(e) : res(got))));
    if (n <= 0) throw new Error(`copy: file ended at ${pos} of ${size} bytes`);
    await new Promise<void>((res, rej) => writevAll(dst, [buf.subarray(0, n)], (e) => (e ? rej(e) : res())));
    pos += n;
  }
}

async function writeDurable(path: string, text: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, 'w', 0o640);
    await fh.writeFile(text);
    await fh.sync();
  } catch (e) {
    throw new StoreError('metadata', e);
  } finally {
    await fh?.close().catch(() => undefined);
  }
}
