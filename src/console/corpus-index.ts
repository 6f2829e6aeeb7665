// The console's index of the corpus: one small entry per stored message (envelope, client,
// HELO, verdict tags, subject), in memory, newest last. Built in the background, a day at a
// time (the list answers meanwhile with what it has and `indexing: true`), from a snapshot
// file in each store path (INDEX_SNAPSHOT, written atomically after a build, every few minutes while
// messages arrive, and at stop) plus only what changed since: a day directory modified after the
// snapshot is listed and its new records read, any other day is taken as the snapshot has it.
// Without a snapshot every <day>/<id>.json and the head of its message file (the Subject line)
// is read once. Then kept current from the server's 'message' events; a list request filters
// this array and never walks a directory. A day the store prunes (store.onFull) leaves the
// index with its 'storePruned' event; a message deleted from disk behind our back is dropped
// from the index when a view or download finds it gone.

import { open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeWords } from 'postal-mime';
import type { MessageEvent } from '../events.js';
import { cidrContains, ipv4Bytes, parseCidr, type Cidr } from '../net/ip.js';
import { fsyncDir } from '../store/corpus.js';
import { DAY_DIR, INDEX_SNAPSHOT, INDEX_SNAPSHOT_TMP, isRecordFile } from '../store/layout.js';
import type { MessageMetadata } from '../store/metadata.js';
import { TimeOrder } from './time-order.js';

/** Octets of an .eml read to find its Subject (the trace headers come first). */
const HEAD_BYTES = 32 * 1024;
/** Files read at once while indexing. */
const SCAN_CONCURRENCY = 32;
/** Characters of a subject kept in the index. */
const SUBJECT_MAX = 300;
/**
 * 2: a day may take several lines, each with the day's entry count `n` (a reader of version 1
 * would keep only a day's last line, so it must refuse these); version 1 snapshots are read too.
 */
const SNAPSHOT_VERSION = 2;
/**
 * A day directory modified less than this long before a snapshot began is listed again at the
 * next start: a message renamed into it just before may have reached the index (its 'message'
 * event comes after the store's group commit) only after the snapshot was taken.
 */
const SNAPSHOT_SLACK_MS = 60_000;

export interface IndexEntry {
  id: string;
  day: string;
  /** receivedAt, ms since the epoch (the sort key). */
  at: number;
  /** Store path the message lives under. */
  root: string;
  /** Absolute path of the message (metadata `file` under the store path: an .eml or a Maildir file). */
  path: string;
  /** Absolute path of its <day>/<id>.json record. */
  json: string;
  listener: string;
  ip: string;
  port: number;
  helo: string;
  from: string;
  rcpt: string[];
  /** Distinct verdict tags, in order of first appearance. */
  tags: string[];
  subject: string;
  size: number;
  tempfailed: boolean;
  /** Lower-cased copies the filters compare against (made once, not per query). */
  lc: { helo: string; from: string; rcpt: string; subject: string; ip: string };
  /** The IPv4 client as an unsigned 32-bit number, or -1 (IPv6: CIDR filters compare the text form). */
  ip4: number;
}

export interface CorpusQuery {
  day?: string;
  verdict?: string;
  /** An IP address (prefix match on its text) or a CIDR network. */
  client?: string;
  helo?: string;
  from?: string;
  rcpt?: string;
  subject?: string;
  offset?: number;
  limit?: number;
}

export interface CorpusPage {
  total: number;
  offset: number;
  limit: number;
  items: ListItem[];
  indexing: boolean;
  indexed: number;
  /** While indexing: day directories taken in so far, of how many. */
  progress: { days: number; done: number };
}

export interface ListItem {
  id: string;
  day: string;
  receivedAt: string;
  client: string;
  helo: string;
  from: string;
  rcpt: string[];
  rcptCount: number;
  subject: string;
  size: number;
  verdicts: string[];
  tempfailed: boolean;
}

export const MAX_LIMIT = 200;

/** The Subject header of a message head (unfolded, RFC 2047 words decoded), or "". */
export function subjectOf(head: string): string {
  const end = head.search(/\r?\n\r?\n/);
  const block = end >= 0 ? head.slice(0, end) : head;
  const m = /(?:^|\n)subject:[ \t]*([^\n]*(?:\n[ \t][^\n]*)*)/i.exec(block);
  if (!m) return '';
  const raw = m[1]!.replace(/\r?\n[ \t]/g, ' ').replace(/\r/g, '').trim();
  let text: string;
  try {
    text = decodeWords(raw);
  } catch {
    text = raw;
  }
  // Controls out (a subject is shown on one line); length bounded.
  text = text.replace(/[\x00-\x1f\x7f]/g, ' ');
  return text.length > SUBJECT_MAX ? text.slice(0, SUBJECT_MAX) : text;
}

async function readHead(path: string): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(HEAD_BYTES);
    const { bytesRead } = await fh.read(buf, 0, HEAD_BYTES, 0);
    return headText(buf.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

/**
 * A message head as text: its header block as UTF-8 when it is UTF-8 (RFC 6532 raw 8-bit
 * headers, as spam often sends them, and as the message view's postal-mime reads them), else as
 * Latin-1 (every octet one character). Only the header block counts: a body in another
 * charset does not change how the Subject reads. A head cut in the middle of a character is
 * not an error (stream mode keeps the incomplete tail).
 */
function headText(buf: Buffer): string {
  let end = buf.indexOf('\r\n\r\n');
  if (end < 0) end = buf.indexOf('\n\n');
  const block = end >= 0 ? buf.subarray(0, end + 2) : buf;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(block, { stream: true });
  } catch {
    return block.toString('latin1');
  }
}

/** One string object per distinct value (days, tags, listeners, store paths): compared by identity first, stored once. */
const interned = new Map<string, string>();
function intern(s: string): string {
  const hit = interned.get(s);
  if (hit !== undefined) return hit;
  if (interned.size < 100_000) interned.set(s, s);
  return s;
}

function ipv4Number(ip: string): number {
  const b = ipv4Bytes(ip);
  return b ? ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0 : -1;
}

/** An entry's own fields; the rest (interned copies, `lc`, `ip4`) is derived by `entry`. */
type EntryFields = Omit<IndexEntry, 'lc' | 'ip4'>;

/**
 * The one place an IndexEntry is made, from a record or from the snapshot alike: the copies
 * the filters compare against must be derived the same way whichever way a message came in.
 */
function entry(f: EntryFields): IndexEntry {
  return {
    ...f,
    day: intern(f.day),
    root: intern(f.root),
    listener: intern(f.listener),
    tags: f.tags.map(intern),
    lc: { helo: f.helo.toLowerCase(), from: f.from.toLowerCase(), rcpt: f.rcpt.join('\n').toLowerCase(), subject: f.subject.toLowerCase(), ip: f.ip.toLowerCase() },
    ip4: ipv4Number(f.ip),
  };
}

function entryOf(m: MessageMetadata, root: string, path: string, json: string): IndexEntry {
  const tags: string[] = [];
  for (const v of m.verdicts ?? []) if (typeof v?.tag === 'string' && !tags.includes(v.tag)) tags.push(v.tag);
  const at = Date.parse(m.receivedAt);
  return entry({
    id: String(m.id),
    day: String(m.receivedAt).slice(0, 10),
    at: Number.isFinite(at) ? at : 0,
    root,
    path,
    json,
    listener: String(m.listener ?? ''),
    ip: String(m.client?.ip ?? ''),
    port: Number(m.client?.port ?? 0),
    helo: String(m.client?.helo ?? ''),
    from: String(m.envelope?.mailFrom ?? ''),
    rcpt: Array.isArray(m.envelope?.rcptTo) ? m.envelope.rcptTo.map(String) : [],
    tags,
    subject: '',
    size: Number(m.sizes?.file ?? 0),
    tempfailed: m.tempfailed === true,
  });
}

function setSubject(e: IndexEntry, head: string): void {
  e.subject = subjectOf(head);
  e.lc.subject = e.subject.toLowerCase();
}

/** Runs `fn` over `items` with at most `n` at once. */
async function pool<T>(items: readonly T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  const worker = async () => {
    while (i < items.length) await fn(items[i++]!);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

const lc = (s: string | undefined) => (s ? s.toLowerCase() : '');

/** One entry in the snapshot: the fields, positionally (the lower-cased copies are made again on load). */
type Packed = [id: string, at: number, file: string, listener: string, ip: string, port: number, helo: string, from: string, rcpt: string[], tags: string[], subject: string, size: number, tempfailed: 0 | 1];

function pack(e: IndexEntry): Packed {
  return [e.id, e.at, e.path.slice(e.root.length + 1), e.listener, e.ip, e.port, e.helo, e.from, e.rcpt, e.tags, e.subject, e.size, e.tempfailed ? 1 : 0];
}

function unpack(p: Packed, root: string, day: string): IndexEntry | null {
  const [id, at, file, listener, ip, port, helo, from, rcpt, tags, subject, size, tempfailed] = p;
  if (typeof id !== 'string' || typeof file !== 'string' || file.split(/[\\/]/).includes('..') || !Array.isArray(rcpt) || !Array.isArray(tags)) return null;
  return entry({
    id, day, at: Number(at) || 0, root, path: join(root, file), json: join(root, day, `${id}.json`),
    listener: String(listener), ip: String(ip), port: Number(port) || 0, helo: String(helo), from: String(from),
    rcpt: rcpt.map(String), tags: tags.map(String), subject: String(subject), size: Number(size) || 0, tempfailed: tempfailed === 1,
  });
}

/**
 * Octets one snapshot line may have when read; a longer line is skipped, never held whole. Far
 * below V8's longest string (2^29 characters). Version 1 wrote a whole day on one line, so this
 * stays large enough for the days those wrote.
 */
const SNAPSHOT_LINE_MAX = 128 * 1024 * 1024;
/**
 * Octets a written line aims at (or the read limit, if smaller): a day of more entries (some 300
 * octets each) goes on several lines. A day on one line was skipped when read once it passed
 * SNAPSHOT_LINE_MAX, which refused the whole snapshot (the day count) at every start, and its
 * one string could pass V8's limit and fail the write.
 */
const SNAPSHOT_LINE_TARGET = 1024 * 1024;
/** Octets read from the snapshot at a time. */
const SNAPSHOT_CHUNK = 1024 * 1024;

/**
 * A day's snapshot lines, each under `budget` octets with its newline (an entry longer than
 * that alone goes on a line of its own: the reader skips it and refuses the snapshot, which
 * costs a scan, not an entry). One entry is serialized at a time, so no string is a whole day.
 */
function* dayLines(day: string, e: readonly Packed[], budget: number): Generator<string> {
  const lead = `{"day":${JSON.stringify(day)},"n":${e.length},"e":[`;
  const tail = ']}\n';
  let parts: string[] = [];
  let len = lead.length + tail.length;
  for (const p of e) {
    const s = JSON.stringify(p);
    const bytes = Buffer.byteLength(s) + 1;
    if (parts.length > 0 && len + bytes > budget) {
      yield lead + parts.join(',') + tail;
      [parts, len] = [[], lead.length + tail.length];
    }
    parts.push(s);
    len += bytes;
  }
  yield lead + parts.join(',') + tail;
}

/**
 * The lines of a file, one at a time, so reading holds one line and one chunk, not the file;
 * a line longer than `max` octets comes as null and its octets are dropped as they are read.
 * Splitting the octets on "\n" before decoding is safe: 0x0A is never part of a longer UTF-8
 * sequence.
 */
async function* fileLines(file: string, max: number): AsyncGenerator<string | null> {
  const fh = await open(file, 'r');
  try {
    let parts: Buffer[] = [];
    let len = 0;
    let tooLong = false;
    for (;;) {
      // A new buffer per read: the pieces of a line kept from it are views, not copies.
      const buf = Buffer.allocUnsafe(SNAPSHOT_CHUNK);
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      const chunk = buf.subarray(0, bytesRead);
      let from = 0;
      while (from < chunk.length) {
        const nl = chunk.indexOf(10, from);
        const piece = chunk.subarray(from, nl === -1 ? chunk.length : nl);
        if (!tooLong && len + piece.length > max) [parts, len, tooLong] = [[], 0, true];
        if (!tooLong) {
          parts.push(piece);
          len += piece.length;
        }
        if (nl === -1) break;
        yield tooLong ? null : Buffer.concat(parts, len).toString('utf8');
        [parts, len, tooLong, from] = [[], 0, false, nl + 1];
      }
    }
    if (tooLong) yield null;
    else if (len > 0) yield Buffer.concat(parts, len).toString('utf8');
  } finally {
    await fh.close();
  }
}

type SnapshotHead = { v?: unknown; root?: unknown; startedAt?: unknown; days?: unknown };

/**
 * What a snapshot holds for one store path: its entries by day, and when it was begun. A line
 * over `lineMax` octets is skipped: if it was (part of) a day, the day count or that day's
 * entry count at the end refuses the snapshot; if it was garbage, the days around it still count.
 */
async function readSnapshot(root: string, lineMax: number): Promise<{ startedAt: number; days: Map<string, Packed[]> } | null> {
  try {
    let head: SnapshotHead | undefined;
    const days = new Map<string, Packed[]>();
    /** Entries each day says it has (version 2), checked once all its lines are in. */
    const counts = new Map<string, number>();
    let i = 0;
    for await (const line of fileLines(join(root, INDEX_SNAPSHOT), lineMax)) {
      i++;
      if (head === undefined) {
        if (line === null) return null;
        head = JSON.parse(line) as SnapshotHead;
        // Another version, another path (a copied store), or a torn file (the day count is checked at the end).
        if ((head.v !== SNAPSHOT_VERSION && head.v !== 1) || head.root !== root || typeof head.startedAt !== 'number' || typeof head.days !== 'number') return null;
        continue;
      }
      if (line === null || line === '') continue;
      const d = JSON.parse(line) as { day?: unknown; n?: unknown; e?: unknown };
      if (typeof d.day !== 'string' || !DAY_DIR.test(d.day) || !Array.isArray(d.e)) return null;
      if (head.v === 1) {
        days.set(d.day, d.e as Packed[]);
      } else {
        if (typeof d.n !== 'number' || (counts.get(d.day) ?? d.n) !== d.n) return null;
        counts.set(d.day, d.n);
        const have = days.get(d.day);
        // A loop, not push(...e): a spread of a long line's entries can overflow the stack.
        if (have) for (const p of d.e as Packed[]) have.push(p);
        else days.set(d.day, d.e as Packed[]);
      }
      // Four lines parsed per turn: a large snapshot does not hold the event loop in one piece.
      if (i % 4 === 0) await new Promise((r) => setImmediate(r));
    }
    if (head === undefined || days.size !== head.days) return null;
    // A day short of its count lost a line: torn after it, or a line skipped as too long.
    for (const [day, n] of counts) if (days.get(day)!.length !== n) return null;
    return { startedAt: head.startedAt as number, days };
  } catch {
    // No snapshot, an unreadable one, or a line that is not JSON: scan as without one.
    return null;
  }
}

export class CorpusIndex {
  /** Ascending by `at`. */
  private readonly entries = new TimeOrder<IndexEntry>();
  private readonly byId = new Map<string, IndexEntry>();
  private roots: string[] = [];
  private scans = 0;
  private scanning: Promise<void> = Promise.resolve();
  /** Records (.json) read from disk since start; the rest came from snapshots (tests and the CONSOLE_INDEXED line). */
  recordsRead = 0;
  /** Entries taken from snapshots since start. */
  fromSnapshot = 0;
  /** Day directories listed since start (a day the snapshot has, untouched since, is not). */
  daysListed = 0;
  /** Changes (adds, removals) since the last snapshot of each store path. */
  private readonly dirty = new Map<string, number>();
  /** Day directories of scans in progress, and how many are done (the list's progress). */
  private progress = { days: 0, done: 0 };
  /** Subjects of just-added messages still being read: a snapshot waits for them (a stop
   *  right after a message would otherwise save it without its subject, for good). */
  private readonly heads = new Set<Promise<void>>();
  /** Snapshot writes in progress per store path (one at a time each). */
  private readonly saving = new Map<string, Promise<boolean>>();
  /** Longest snapshot line read, and a bound on those written (SNAPSHOT_LINE_MAX; smaller in tests, which cannot write 128 MiB lines cheaply). */
  private readonly snapshotLineMax: number;

  constructor(opts: { snapshotLineMax?: number } = {}) {
    this.snapshotLineMax = opts.snapshotLineMax ?? SNAPSHOT_LINE_MAX;
  }

  get size(): number {
    return this.entries.length;
  }

  get indexing(): boolean {
    return this.scans > 0;
  }

  /** Day directories taken in by the scans in progress, out of how many (both 0 when none runs). */
  get scanProgress(): { days: number; done: number } {
    return this.scans > 0 ? { ...this.progress } : { days: 0, done: 0 };
  }

  private touch(root: string): void {
    this.dirty.set(root, (this.dirty.get(root) ?? 0) + 1);
  }

  /** Store paths with changes since their last snapshot. */
  get changedRoots(): string[] {
    return this.roots.filter((r) => (this.dirty.get(r) ?? 0) > 0);
  }

  /**
   * Writes the snapshot of one store path: a temporary file, fsync, rename over the old one,
   * fsync of the directory, so a crash leaves the old snapshot or the new one, never a torn
   * one. Skipped while that path is still being scanned (it would miss what is not read yet)
   * and when the store path does not exist (nothing stored yet). True when written.
   */
  saveSnapshot(root: string): Promise<boolean> {
    const running = this.saving.get(root);
    if (running) return running;
    const p = this.writeSnapshot(root).finally(() => this.saving.delete(root));
    this.saving.set(root, p);
    return p;
  }

  private async writeSnapshot(root: string): Promise<boolean> {
    if (!this.roots.includes(root) || this.scanningRoots.has(root)) return false;
    await this.subjectsRead();
    const startedAt = Date.now();
    const changes = this.dirty.get(root) ?? 0;
    const byDay = new Map<string, Packed[]>();
    this.entries.forEach((e) => {
      if (e.root !== root) return;
      let d = byDay.get(e.day);
      if (!d) byDay.set(e.day, (d = []));
      d.push(pack(e));
    });
    const final = join(root, INDEX_SNAPSHOT);
    const tmp = join(root, INDEX_SNAPSHOT_TMP);
    let fh;
    try {
      fh = await open(tmp, 'w', 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
    try {
      await fh.write(JSON.stringify({ v: SNAPSHOT_VERSION, root, startedAt, days: byDay.size }) + '\n');
      // A line a write: each string is small, and the event loop runs between them.
      const budget = Math.min(SNAPSHOT_LINE_TARGET, this.snapshotLineMax);
      for (const [day, e] of byDay) for (const line of dayLines(day, e, budget)) await fh.write(line);
      await fh.sync();
    } catch (e) {
      await fh.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
    await fh.close();
    await rename(tmp, final);
    await fsyncDir(root);
    // Changes made while writing stay counted for the next snapshot.
    this.dirty.set(root, Math.max(0, (this.dirty.get(root) ?? 0) - changes));
    return true;
  }

  private readonly scanningRoots = new Set<string>();

  /** Waits for every scan started so far. */
  ready(): Promise<void> {
    return this.scanning;
  }

  /** Index these store paths: new ones are scanned (in the background), dropped ones forgotten. */
  setRoots(roots: readonly string[]): Promise<void> {
    const next = [...new Set(roots)];
    const gone = this.roots.filter((r) => !next.includes(r));
    const added = next.filter((r) => !this.roots.includes(r));
    this.roots = next;
    if (gone.length > 0) {
      this.entries.retain((e) => !gone.includes(e.root));
      for (const [id, e] of this.byId) if (gone.includes(e.root)) this.byId.delete(id);
    }
    for (const r of added) {
      this.scans++;
      const scan = this.scan(r).finally(() => {
        // The progress counts the scans running together; the next scan starts from zero.
        if (--this.scans === 0) this.progress = { days: 0, done: 0 };
      });
      this.scanning = Promise.all([this.scanning, scan]).then(() => undefined);
    }
    return this.scanning;
  }

  private async scan(root: string): Promise<void> {
    this.scanningRoots.add(root);
    try {
      await this.scanRoot(root);
    } finally {
      this.scanningRoots.delete(root);
    }
  }

  private async scanRoot(root: string): Promise<void> {
    let days: string[];
    try {
      days = (await readdir(root)).filter((d) => DAY_DIR.test(d)).sort();
    } catch {
      return; // not made yet: the store makes it with the first message
    }
    const snap = await readSnapshot(root, this.snapshotLineMax);
    // Whether the snapshot no longer says what the store holds (then a fresh one is due).
    let stale = snap === null || [...snap.days.keys()].some((d) => !days.includes(d));
    this.progress.days += days.length;
    // Newest day first: the list shows the newest messages, so those are indexed first.
    for (const day of days.reverse()) {
      if (!this.roots.includes(root)) return; // dropped while scanning
      const dir = join(root, day);
      const known = snap?.days.get(day);
      let found: IndexEntry[] = [];
      let mtime = Infinity;
      try {
        mtime = (await stat(dir)).mtimeMs;
      } catch {
        // gone meanwhile: nothing to index
      }
      if (known && snap && mtime <= snap.startedAt - SNAPSHOT_SLACK_MS) {
        // Untouched since the snapshot: no file of that day is read.
        for (const p of known) {
          const e = unpack(p, root, day);
          if (e) found.push(e);
        }
        this.fromSnapshot += found.length;
      } else {
        found = await this.scanDay(root, day, known);
        stale = true;
      }
      if (!this.roots.includes(root)) return; // dropped while this day was read
      this.merge(found);
      this.progress.done++;
    }
    // A fresh snapshot after a scan that read anything: the next start reads nothing this one
    // read. One taken wholly from the snapshot leaves it as it is (no rewrite at every start).
    if (stale) this.touch(root);
  }

  /** The records of one day directory; those the snapshot already has (`known`) are not read again. */
  private async scanDay(root: string, day: string, known: Packed[] | undefined): Promise<IndexEntry[]> {
    let names: string[];
    try {
      this.daysListed++;
      names = (await readdir(join(root, day))).filter(isRecordFile);
    } catch {
      return [];
    }
    const found: IndexEntry[] = [];
    const have = new Map<string, Packed>();
    for (const p of known ?? []) if (typeof p[0] === 'string') have.set(`${p[0]}.json`, p);
    const toRead: string[] = [];
    for (const name of names) {
      const p = have.get(name);
      const e = p ? unpack(p, root, day) : null;
      if (e) found.push(e);
      else toRead.push(name);
    }
    this.fromSnapshot += found.length;
    await pool(toRead, SCAN_CONCURRENCY, async (name) => {
      const json = join(root, day, name);
      try {
        const m = JSON.parse(await readFile(json, 'utf8')) as MessageMetadata;
        this.recordsRead++;
        // `file` is relative to the store path: <day>/<id>.eml, or a file in the day's Maildir.
        if (typeof m.file !== 'string' || m.file.split(/[\\/]/).includes('..')) return;
        const e = entryOf(m, root, join(root, m.file), json);
        setSubject(e, await readHead(e.path));
        found.push(e);
      } catch {
        // half-deleted or unreadable: not part of the corpus we can show
      }
    });
    return found;
  }

  /** A day's entries into the index (those that arrived by event meanwhile are there already). */
  private merge(found: IndexEntry[]): void {
    const fresh: IndexEntry[] = [];
    for (const e of found) {
      if (this.byId.has(e.id)) continue;
      this.byId.set(e.id, e);
      fresh.push(e);
    }
    // Sorting the whole index again per day made a scan of D days O(D × N log N); a day older
    // than all indexed (the scan goes newest first) now costs only its own sort.
    this.entries.addRun(fresh);
  }

  /** A message just stored (the server's 'message' event). */
  add(ev: MessageEvent): void {
    if (!ev.path) return;
    const root = ev.path.slice(0, ev.path.length - ev.metadata.file.length).replace(/[\\/]$/, '');
    const day = ev.metadata.file.split(/[\\/]/)[0] ?? '';
    const e = entryOf(ev.metadata, root, ev.path, join(root, day, `${ev.metadata.id}.json`));
    if (this.byId.has(e.id)) return;
    this.byId.set(e.id, e);
    this.touch(root);
    this.entries.insert(e);
    const head: Promise<void> = readHead(ev.path).then(
      (h) => setSubject(e, h),
      () => undefined,
    );
    this.heads.add(head);
    void head.finally(() => this.heads.delete(head));
  }

  /**
   * Resolves when the subjects of the messages added so far are read. A list asked for right
   * after a 250 would otherwise show (and a subject filter miss) the newest message without
   * its subject. Bounded: later additions are not waited for, and each read is one small pread.
   */
  async subjectsRead(): Promise<void> {
    if (this.heads.size > 0) await Promise.all([...this.heads]);
  }

  get(id: string): IndexEntry | undefined {
    return this.byId.get(id);
  }

  /** Forget a day of one store (store.onFull prune deleted its directory). */
  removeDay(root: string, day: string): number {
    this.touch(root);
    const gone = this.entries.retain((e) => e.root !== root || e.day !== day);
    for (const [id, e] of this.byId) if (e.root === root && e.day === day) this.byId.delete(id);
    return gone;
  }

  /** Forget a message (its files are gone). */
  remove(id: string): void {
    const e = this.byId.get(id);
    if (!e) return;
    this.touch(e.root);
    this.byId.delete(id);
    this.entries.remove(e);
  }

  /** Newest first, filtered; `total` counts every match. Filters are case-insensitive substrings except day, verdict and client. */
  query(q: CorpusQuery): CorpusPage {
    const offset = Math.max(0, Math.floor(q.offset ?? 0));
    const limit = Math.max(1, Math.min(MAX_LIMIT, Math.floor(q.limit ?? 50)));
    // Interned like the entries' values, so most comparisons are one pointer check.
    const day = q.day ? intern(q.day) : undefined;
    const verdict = q.verdict ? intern(q.verdict.toUpperCase()) : undefined;
    const helo = lc(q.helo);
    const from = lc(q.from);
    const rcpt = lc(q.rcpt);
    const subject = lc(q.subject);
    let cidr: Cidr | null = null;
    let net4 = -1;
    let mask4 = 0;
    let ipPrefix = '';
    if (q.client) {
      if (q.client.includes('/')) {
        cidr = parseCidr(q.client);
        if (cidr.family === 4) {
          mask4 = cidr.bits === 0 ? 0 : (0xffffffff << (32 - cidr.bits)) >>> 0;
          net4 = Number(cidr.net);
        }
      } else ipPrefix = q.client.toLowerCase();
    }
    const items: ListItem[] = [];
    let total = 0;
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const e = this.entries.get(i);
      if (day && e.day !== day) continue;
      if (verdict && !e.tags.includes(verdict)) continue;
      if (ipPrefix && !e.lc.ip.startsWith(ipPrefix)) continue;
      if (cidr && (net4 >= 0 ? e.ip4 < 0 || ((e.ip4 & mask4) >>> 0) !== net4 : e.ip4 >= 0 || !cidrContains(cidr, e.ip))) continue;
      if (helo && !e.lc.helo.includes(helo)) continue;
      if (from && !e.lc.from.includes(from)) continue;
      if (rcpt && !e.lc.rcpt.includes(rcpt)) continue;
      if (subject && !e.lc.subject.includes(subject)) continue;
      if (total >= offset && items.length < limit) items.push(listItem(e));
      total++;
    }
    return { total, offset, limit, items, indexing: this.indexing, indexed: this.entries.length, progress: this.scanProgress };
  }

  /** Days present, newest first, with their message counts. */
  days(): { day: string; count: number }[] {
    const m = new Map<string, number>();
    this.entries.forEach((e) => m.set(e.day, (m.get(e.day) ?? 0) + 1));
    return [...m.entries()].sort((a, b) => (a[0] < b[0] ? 1 : -1)).map(([day, count]) => ({ day, count }));
  }

  /** Verdict tags present, with how many messages carry each. */
  tags(): Record<string, number> {
    const m: Record<string, number> = {};
    this.entries.forEach((e) => {
      for (const t of e.tags) m[t] = (m[t] ?? 0) + 1;
    });
    return m;
  }
}

function listItem(e: IndexEntry): ListItem {
  return {
    id: e.id,
    day: e.day,
    receivedAt: new Date(e.at).toISOString(),
    client: e.ip,
    helo: e.helo,
    from: e.from,
    rcpt: e.rcpt.slice(0, 3),
    rcptCount: e.rcpt.length,
    subject: e.subject,
    size: e.size,
    verdicts: e.tags,
    tempfailed: e.tempfailed,
  };
}
