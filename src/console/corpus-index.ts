// The console's index of the corpus: one small entry per stored message (envelope, client,
// HELO, verdict tags, subject), in memory, newest last. Built once by reading every
// <day>/<id>.json and the head of its message file (the Subject line) under each store path, then kept
// current from the server's 'message' events; a list request filters this array and never
// walks a directory. A day the store prunes (store.onFull) leaves the index with its
// 'storePruned' event; a message deleted from disk behind our back is dropped from the index
// when a view or download finds it gone.

import { open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeWords } from 'postal-mime';
import type { MessageEvent } from '../events.js';
import { cidrContains, ipv4Bytes, parseCidr, type Cidr } from '../net/ip.js';
import { DAY_DIR, isRecordFile } from '../store/layout.js';
import type { MessageMetadata } from '../store/metadata.js';

/** Octets of an .eml read to find its Subject (the trace headers come first). */
const HEAD_BYTES = 32 * 1024;
/** Files read at once while indexing. */
const SCAN_CONCURRENCY = 32;
/** Characters of a subject kept in the index. */
const SUBJECT_MAX = 300;

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
    return buf.subarray(0, bytesRead).toString('latin1');
  } finally {
    await fh.close();
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

function entryOf(m: MessageMetadata, root: string, path: string, json: string): IndexEntry {
  const tags: string[] = [];
  for (const v of m.verdicts ?? []) if (typeof v?.tag === 'string' && !tags.includes(v.tag)) tags.push(intern(v.tag));
  const at = Date.parse(m.receivedAt);
  const ip = String(m.client?.ip ?? '');
  const helo = String(m.client?.helo ?? '');
  const from = String(m.envelope?.mailFrom ?? '');
  const rcpt = Array.isArray(m.envelope?.rcptTo) ? m.envelope.rcptTo.map(String) : [];
  return {
    id: String(m.id),
    day: intern(String(m.receivedAt).slice(0, 10)),
    at: Number.isFinite(at) ? at : 0,
    root: intern(root),
    path,
    json,
    listener: intern(String(m.listener ?? '')),
    ip,
    port: Number(m.client?.port ?? 0),
    helo,
    from,
    rcpt,
    tags,
    subject: '',
    size: Number(m.sizes?.file ?? 0),
    tempfailed: m.tempfailed === true,
    lc: { helo: helo.toLowerCase(), from: from.toLowerCase(), rcpt: rcpt.join('\n').toLowerCase(), subject: '', ip: ip.toLowerCase() },
    ip4: ipv4Number(ip),
  };
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

export class CorpusIndex {
  /** Ascending by `at`. */
  private entries: IndexEntry[] = [];
  private readonly byId = new Map<string, IndexEntry>();
  private roots: string[] = [];
  private scans = 0;
  private scanning: Promise<void> = Promise.resolve();

  get size(): number {
    return this.entries.length;
  }

  get indexing(): boolean {
    return this.scans > 0;
  }

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
      this.entries = this.entries.filter((e) => !gone.includes(e.root));
      for (const [id, e] of this.byId) if (gone.includes(e.root)) this.byId.delete(id);
    }
    for (const r of added) {
      this.scans++;
      const scan = this.scan(r).finally(() => this.scans--);
      this.scanning = Promise.all([this.scanning, scan]).then(() => undefined);
    }
    return this.scanning;
  }

  private async scan(root: string): Promise<void> {
    let days: string[];
    try {
      days = (await readdir(root)).filter((d) => DAY_DIR.test(d));
    } catch {
      return; // not made yet: the store makes it with the first message
    }
    const found: IndexEntry[] = [];
    for (const day of days) {
      let names: string[];
      try {
        names = (await readdir(join(root, day))).filter(isRecordFile);
      } catch {
        continue;
      }
      await pool(names, SCAN_CONCURRENCY, async (name) => {
        const json = join(root, day, name);
        try {
          const m = JSON.parse(await readFile(json, 'utf8')) as MessageMetadata;
          // `file` is relative to the store path: <day>/<id>.eml, or a file in the day's Maildir.
          if (typeof m.file !== 'string' || m.file.split(/[\\/]/).includes('..')) return;
          const e = entryOf(m, root, join(root, m.file), json);
          setSubject(e, await readHead(e.path));
          found.push(e);
        } catch {
          // half-deleted or unreadable: not part of the corpus we can show
        }
      });
    }
    if (!this.roots.includes(root)) return; // dropped while scanning
    for (const e of found) {
      if (this.byId.has(e.id)) continue; // arrived by event during the scan
      this.byId.set(e.id, e);
      this.entries.push(e);
    }
    this.entries.sort((a, b) => a.at - b.at);
  }

  /** A message just stored (the server's 'message' event). */
  add(ev: MessageEvent): void {
    if (!ev.path) return;
    const root = ev.path.slice(0, ev.path.length - ev.metadata.file.length).replace(/[\\/]$/, '');
    const day = ev.metadata.file.split(/[\\/]/)[0] ?? '';
    const e = entryOf(ev.metadata, root, ev.path, join(root, day, `${ev.metadata.id}.json`));
    if (this.byId.has(e.id)) return;
    this.byId.set(e.id, e);
    // Usually the newest: append; otherwise insert in order.
    let i = this.entries.length;
    while (i > 0 && this.entries[i - 1]!.at > e.at) i--;
    this.entries.splice(i, 0, e);
    readHead(ev.path).then(
      (h) => setSubject(e, h),
      () => undefined,
    );
  }

  get(id: string): IndexEntry | undefined {
    return this.byId.get(id);
  }

  /** Forget a day of one store (store.onFull prune deleted its directory). */
  removeDay(root: string, day: string): number {
    const before = this.entries.length;
    this.entries = this.entries.filter((e) => e.root !== root || e.day !== day);
    for (const [id, e] of this.byId) if (e.root === root && e.day === day) this.byId.delete(id);
    return before - this.entries.length;
  }

  /** Forget a message (its files are gone). */
  remove(id: string): void {
    const e = this.byId.get(id);
    if (!e) return;
    this.byId.delete(id);
    const i = this.entries.lastIndexOf(e);
    if (i >= 0) this.entries.splice(i, 1);
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
      const e = this.entries[i]!;
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
    return { total, offset, limit, items, indexing: this.indexing, indexed: this.entries.length };
  }

  /** Days present, newest first, with their message counts. */
  days(): { day: string; count: number }[] {
    const m = new Map<string, number>();
    for (const e of this.entries) m.set(e.day, (m.get(e.day) ?? 0) + 1);
    return [...m.entries()].sort((a, b) => (a[0] < b[0] ? 1 : -1)).map(([day, count]) => ({ day, count }));
  }

  /** Verdict tags present, with how many messages carry each. */
  tags(): Record<string, number> {
    const m: Record<string, number> = {};
    for (const e of this.entries) for (const t of e.tags) m[t] = (m[t] ?? 0) + 1;
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
