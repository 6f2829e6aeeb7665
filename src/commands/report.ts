// `fakemx report`: summarises a corpus from its <id>.json metadata records (never the .eml)
// as aligned tables or JSON. The directory is streamed (opendir), each record read into one
// reused buffer, and every table is a bounded counter, so memory stays flat on any corpus.
// Records hold what clients sent (HELO, sender): every string is escaped before it is printed.

import { DAY_DIR, isRecordFile } from '../store/layout.js';
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { opendir, readdir, stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { AUTH_JOURNAL } from '../policy/auth.js';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { prefixText } from '../net/ip.js';
import { escapeText, safeJson } from '../util/escape.js';
import { plural } from '../util/plural.js';
import { parseSince } from '../util/since.js';
import { EX_NOINPUT, EX_USAGE } from '../util/sysexits.js';

export interface ReportOptions {
  /** Corpus directory (storePath); default ./var/corpus like the schema. */
  dir?: string;
  /** Only messages received at or after this date (YYYY-MM-DD = UTC midnight, or any ISO 8601 time). */
  since?: string;
  /** Rows per "top" table (1-1000); default 10. */
  top?: number;
  json?: boolean;
}

export type Writer = (s: string) => void;

export interface Row {
  key: string;
  messages: number;
}

export interface CorpusReport {
  store: string;
  since: string | null;
  /**
   * Messages delivered (each got its 250): the stored ones and, with store.dedupe, the later
   * arrivals of a stored body recorded in its metadata. The per-day, HELO, sender, network,
   * TLS and verdict tables count the same deliveries (an arrival's verdict: DUPLICATE).
   */
  messages: number;
  /** Metadata records read: messages stored on disk (bytes, sizes and the BDAT share are theirs). */
  stored: number;
  /** .json files that could not be read or parsed (or were too big to be metadata). */
  invalidFiles: number;
  bytes: number;
  first: string | null;
  last: string | null;
  /** Sessions = distinct session ids among that day's messages (sessions without a message leave no record). */
  days: { day: string; messages: number; sessions: number }[];
  /** Messages carrying each verdict tag (a tag counts once per message). */
  verdicts: Row[];
  tempfailed: number;
  /**
   * store.dedupe: stored bodies that arrived again (`messages`), how often in all (`arrivals`,
   * not counted in `messages` above), and the bodies that came back most (by message id).
   */
  duplicates: { messages: number; arrivals: number; top: Row[] };
  /** Messages whose client was listed by each block list (rblProviders) zone. */
  dnsblZones: Row[];
  /** Messages whose client was listed by each allow list (rwlProviders) zone. */
  dnswlZones: Row[];
  helo: Row[];
  senderDomains: Row[];
  /** Client networks: IPv4 /24, IPv6 /48. */
  networks: Row[];
  sizes: { min: number; max: number; mean: number; buckets: Row[] };
  tls: { messages: number; share: number; protocols: Row[] };
  /** How bodies came (RFC 3030): messages sent with BDAT, their share, their chunks in all; records without the field count as DATA. */
  transfer: { bdat: number; share: number; chunks: number };
  /**
   * AUTH honeypot attempts from the per-day AUTH journals (every attempt, also of sessions
   * that stored nothing): top user names, attempts per client address, by mechanism; `messages`
   * in these rows counts attempts.
   */
  auth: { attempts: number; sessions: number; tls: number; users: Row[]; clients: Row[]; mechanisms: Row[] };
  /** True when a bound was hit and the numbers concerned are lower bounds. */
  approximate: { sessions: boolean; tops: boolean };
}

/** A metadata record is ~2 KiB; anything past this is not one. */
const MAX_META = 1024 * 1024;
/** Distinct keys a top table tracks before pruning its long tail. */
const TOP_CAPACITY = 20_000;
/** Distinct session ids remembered per day before sessions become a lower bound. */
const SESSIONS_PER_DAY_CAP = 250_000;

const SIZE_BUCKETS: [number, string][] = [
  [1024, '< 1 KiB'],
  [4096, '1-4 KiB'],
  [16_384, '4-16 KiB'],
  [65_536, '16-64 KiB'],
  [262_144, '64-256 KiB'],
  [1_048_576, '256 KiB-1 MiB'],
  [4_194_304, '1-4 MiB'],
  [Infinity, '>= 4 MiB'],
];

/**
 * Counts per key with bounded memory: past `capacity` keys the lower half (by count) is
 * dropped (a lossy-counting scheme). Heavy hitters survive; their counts become lower bounds.
 */
export class TopCounter {
  private readonly counts = new Map<string, number>();
  pruned = false;
  constructor(private readonly capacity = TOP_CAPACITY) {}
  add(key: string, n = 1): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + n);
    if (this.counts.size > this.capacity) this.prune();
  }
  private prune(): void {
    const values = [...this.counts.values()].sort((a, b) => a - b);
    const median = values[Math.floor(values.length / 2)]!;
    for (const [k, v] of this.counts) if (v <= median) this.counts.delete(k);
    this.pruned = true;
  }
  top(n: number): Row[] {
    return [...this.counts]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, n)
      .map(([key, messages]) => ({ key, messages }));
  }
}

/**
 * "192.0.2.0/24" or "2001:db8:1::/48" (RFC 5952 text; an IPv4-mapped address is its IPv4 /24,
 * as the daemon records it); "(unknown)" for anything node:net does not call an address.
 */
export function clientNetwork(ip: string): string {
  return (isIP(ip) !== 0 ? prefixText(ip, 24, 48) : null) ?? '(unknown)';
}

function senderDomain(mailFrom: unknown): string {
  if (typeof mailFrom !== 'string') return '(unknown)';
  if (mailFrom === '') return '<>';
  const at = mailFrom.lastIndexOf('@');
  return at < 0 ? '(no domain)' : mailFrom.slice(at + 1).toLowerCase();
}

/** Loosely typed view of a record: files come from disk, so every field is checked before use. */
interface LooseMeta {
  receivedAt?: unknown;
  session?: unknown;
  client?: { ip?: unknown; helo?: unknown };
  tls?: { protocol?: unknown } | null;
  envelope?: { mailFrom?: unknown };
  sizes?: { file?: unknown };
  verdicts?: unknown;
  dns?: { zones?: unknown } | null;
  tempfailed?: unknown;
  id?: unknown;
  duplicates?: { count?: unknown; arrivals?: unknown } | null;
  transfer?: unknown;
  chunks?: unknown;
}

/** A recorded duplicate arrival (loosely typed: it comes from disk). */
interface LooseArrival {
  receivedAt?: unknown;
  session?: unknown;
  client?: { ip?: unknown; helo?: unknown };
  envelope?: { mailFrom?: unknown };
  tls?: unknown;
  tempfailed?: unknown;
}

class Aggregate {
  messages = 0;
  stored = 0;
  invalid = 0;
  bytes = 0;
  first: string | null = null;
  last: string | null = null;
  tempfailed = 0;
  dupMessages = 0;
  dupArrivals = 0;
  tlsMessages = 0;
  minSize = Infinity;
  maxSize = 0;
  sessionsApprox = false;
  readonly days = new Map<string, { messages: number; sessions: Set<string> }>();
  readonly verdicts = new TopCounter(1000);
  readonly zones = new TopCounter(1000);
  readonly allowZones = new TopCounter(1000);
  readonly helo = new TopCounter();
  readonly domains = new TopCounter();
  readonly networks = new TopCounter();
  readonly protocols = new TopCounter(100);
  readonly dups = new TopCounter();
  readonly buckets = SIZE_BUCKETS.map(() => 0);
  bdat = 0;
  chunks = 0;
  authAttempts = 0;
  authTls = 0;
  readonly authSessions = new Set<string>();
  authSessionsApprox = false;
  readonly authUsers = new TopCounter();
  readonly authClients = new TopCounter();
  readonly authMechanisms = new TopCounter(100);

  /** One line of an AUTH journal (loosely typed: it comes from disk). */
  addAuth(a: { at?: unknown; session?: unknown; ip?: unknown; user?: unknown; mechanism?: unknown; tls?: unknown }, sinceMs: number | null): void {
    const ms = typeof a.at === 'string' ? Date.parse(a.at) : NaN;
    if (!Number.isFinite(ms) || (sinceMs !== null && ms < sinceMs)) return;
    this.authAttempts++;
    if (a.tls === true) this.authTls++;
    if (typeof a.session === 'string') {
      if (this.authSessions.size < SESSIONS_PER_DAY_CAP) this.authSessions.add(a.session);
      else if (!this.authSessions.has(a.session)) this.authSessionsApprox = true;
    }
    this.authUsers.add(typeof a.user === 'string' ? a.user : '(unknown)');
    this.authClients.add(typeof a.ip === 'string' ? a.ip : '(unknown)');
    this.authMechanisms.add(typeof a.mechanism === 'string' ? a.mechanism : '(unknown)');
  }

  add(m: LooseMeta, sinceMs: number | null): void {
    const at = typeof m.receivedAt === 'string' ? m.receivedAt : '';
    const ms = Date.parse(at);
    if (!Number.isFinite(ms)) {
      this.invalid++;
      return;
    }
    const arrivals = m.duplicates && Array.isArray(m.duplicates.arrivals) ? (m.duplicates.arrivals as LooseArrival[]) : [];
    // Its later arrivals count as deliveries of their own, from their own clients.
    let counted = 0;
    for (const a of arrivals) if (a && typeof a === 'object' && this.addArrival(a, sinceMs)) counted++;
    // The Duplicates table: with --since, the arrivals since then (the body may be stored before);
    // without, the record's count, which goes on past the arrivals a record lists.
    const count = m.duplicates && typeof m.duplicates === 'object' ? m.duplicates.count : undefined;
    const again = sinceMs !== null ? counted : typeof count === 'number' && Number.isInteger(count) ? count : 0;
    if (again > 0) {
      this.dupMessages++;
      this.dupArrivals += again;
      this.dups.add(typeof m.id === 'string' ? m.id : '(unknown)', again);
    }
    if (sinceMs !== null && ms < sinceMs) return;
    this.stored++;
    this.delivery(ms, m.session);
    const size = typeof m.sizes?.file === 'number' ? m.sizes.file : 0;
    this.bytes += size;
    this.minSize = Math.min(this.minSize, size);
    this.maxSize = Math.max(this.maxSize, size);
    this.buckets[SIZE_BUCKETS.findIndex(([max]) => size < max)]!++;
    if (Array.isArray(m.verdicts)) {
      const tags = new Set<string>();
      for (const v of m.verdicts as { tag?: unknown }[]) if (v && typeof v.tag === 'string') tags.add(v.tag);
      for (const t of tags) this.verdicts.add(t);
    }
    if (m.tempfailed === true) this.tempfailed++;
    if (m.transfer === 'BDAT') {
      this.bdat++;
      if (typeof m.chunks === 'number' && Number.isInteger(m.chunks) && m.chunks > 0) this.chunks += m.chunks;
    }
    if (m.dns && Array.isArray(m.dns.zones)) {
      for (const z of m.dns.zones as { zone?: unknown; matched?: unknown; allow?: unknown; weight?: unknown }[]) {
        if (!z || z.matched !== true || typeof z.zone !== 'string') continue;
        // Allow lists apart (older records have no flag: a negative weight says the same).
        (z.allow === true || (typeof z.weight === 'number' && z.weight < 0) ? this.allowZones : this.zones).add(z.zone);
      }
    }
    this.client(m.client, m.envelope);
    if (m.tls && typeof m.tls === 'object') this.tls(m.tls.protocol);
  }

  /** A duplicate arrival: a delivery whose body is stored under the first message. Whether it counted (--since). */
  private addArrival(a: LooseArrival, sinceMs: number | null): boolean {
    const ms = typeof a.receivedAt === 'string' ? Date.parse(a.receivedAt) : NaN;
    if (!Number.isFinite(ms) || (sinceMs !== null && ms < sinceMs)) return false;
    this.delivery(ms, a.session);
    this.verdicts.add('DUPLICATE');
    if (a.tempfailed === true) this.tempfailed++;
    this.client(a.client, a.envelope);
    // The record keeps the arrival's TLS protocol as a string, or null in clear.
    if (typeof a.tls === 'string') this.tls(a.tls);
    return true;
  }

  /** One delivered message: the totals, its day and its session. */
  private delivery(ms: number, session: unknown): void {
    this.messages++;
    const iso = new Date(ms).toISOString();
    if (this.first === null || iso < this.first) this.first = iso;
    if (this.last === null || iso > this.last) this.last = iso;
    const day = iso.slice(0, 10);
    let d = this.days.get(day);
    if (!d) this.days.set(day, (d = { messages: 0, sessions: new Set() }));
    d.messages++;
    if (typeof session === 'string') {
      if (d.sessions.size < SESSIONS_PER_DAY_CAP) d.sessions.add(session);
      else if (!d.sessions.has(session)) this.sessionsApprox = true;
    }
  }

  private client(c: LooseMeta['client'], env: LooseMeta['envelope']): void {
    const helo = c?.helo;
    this.helo.add(typeof helo === 'string' && helo !== '' ? helo.toLowerCase() : '(none)');
    this.domains.add(senderDomain(env?.mailFrom));
    this.networks.add(typeof c?.ip === 'string' ? clientNetwork(c.ip) : '(unknown)');
  }

  private tls(protocol: unknown): void {
    this.tlsMessages++;
    this.protocols.add(typeof protocol === 'string' ? protocol : '(unknown)');
  }

  result(store: string, since: string | null, top: number): CorpusReport {
    const n = this.messages;
    const stored = this.stored;
    return {
      store,
      since,
      messages: n,
      stored,
      invalidFiles: this.invalid,
      bytes: this.bytes,
      first: this.first,
      last: this.last,
      days: [...this.days]
        .sort((a, b) => (a[0] < b[0] ? -1 : 1))
        .map(([day, d]) => ({ day, messages: d.messages, sessions: d.sessions.size })),
      verdicts: this.verdicts.top(1000),
      tempfailed: this.tempfailed,
      duplicates: { messages: this.dupMessages, arrivals: this.dupArrivals, top: this.dups.top(top) },
      dnsblZones: this.zones.top(top),
      dnswlZones: this.allowZones.top(top),
      helo: this.helo.top(top),
      senderDomains: this.domains.top(top),
      networks: this.networks.top(top),
      sizes: {
        min: stored ? this.minSize : 0,
        max: this.maxSize,
        mean: stored ? Math.round(this.bytes / stored) : 0,
        buckets: SIZE_BUCKETS.map(([, label], i) => ({ key: label, messages: this.buckets[i]! })),
      },
      tls: { messages: this.tlsMessages, share: n ? this.tlsMessages / n : 0, protocols: this.protocols.top(top) },
      transfer: { bdat: this.bdat, share: stored ? this.bdat / stored : 0, chunks: this.chunks },
      auth: {
        attempts: this.authAttempts,
        sessions: this.authSessions.size,
        tls: this.authTls,
        users: this.authUsers.top(top),
        clients: this.authClients.top(top),
        mechanisms: this.authMechanisms.top(top),
      },
      approximate: {
        sessions: this.sessionsApprox || this.authSessionsApprox,
        tops: [this.helo, this.domains, this.networks, this.zones, this.verdicts, this.dups, this.authUsers, this.authClients].some((t) => t.pruned),
      },
    };
  }
}

export class ReportError extends Error {
  constructor(message: string, readonly exitCode: number) {
    super(message);
  }
}

/**
 * An older day directory can still hold deliveries after --since: with store.dedupe a body
 * that arrives again is folded into its first message's record, wherever that is. Folding
 * rewrites the record (a new name in its directory), so a day directory not modified since
 * (its mtime, with this margin for clocks and timestamp granularity) holds none.
 */
const SINCE_MTIME_MARGIN_MS = 60_000;

/** Metadata file paths: <dir>/*.json and <dir>/<YYYY-MM-DD>/*.json, streamed, temporaries skipped. */
async function* metadataFiles(dir: string, since: { day: string; ms: number } | null): AsyncGenerator<string> {
  const top = await opendir(dir, { bufferSize: 256 });
  for await (const e of top) {
    if (e.isDirectory()) {
      if (!DAY_DIR.test(e.name)) continue;
      // Directories are named by the UTC day of receipt: older ones hold no message that can
      // match --since, only (store.dedupe) later arrivals folded into their records since.
      if (since !== null && e.name < since.day) {
        const mtime = await stat(join(dir, e.name)).then((s) => s.mtimeMs, () => -Infinity);
        if (mtime < since.ms - SINCE_MTIME_MARGIN_MS) continue;
      }
      let sub;
      try {
        sub = await opendir(join(dir, e.name), { bufferSize: 256 });
      } catch {
        continue;
      }
      for await (const f of sub) if (f.isFile() && isRecordFile(f.name)) yield join(dir, e.name, f.name);
    } else if (e.isFile() && isRecordFile(e.name)) {
      yield join(dir, e.name);
    }
  }
}

/**
 * One record, read synchronously into a shared buffer: for ~2 KiB files three syscalls on the
 * main thread beat the thread pool's round trips several times over (100,000 files: ~1 s vs ~7 s).
 */
function readMeta(path: string, buf: Buffer): LooseMeta | null {
  const fd = openSync(path, 'r');
  let n: number;
  try {
    n = readSync(fd, buf, 0, buf.length, 0);
  } finally {
    closeSync(fd);
  }
  // A full buffer means the file is bigger than any metadata record.
  if (n >= buf.length) return null;
  const v: unknown = JSON.parse(buf.toString('utf8', 0, n));
  return v && typeof v === 'object' && !Array.isArray(v) ? v : null;
}


function storeProblem(dir: string, e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return `store ${dir} does not exist`;
  if (code === 'EACCES' || code === 'EPERM') return `store ${dir} is not readable (permission denied)`;
  if (code === 'ENOTDIR') return `store ${dir} is not a directory`;
  return `store ${dir} cannot be read (${code ?? String(e)})`;
}

/** Reads the corpus. Throws ReportError for bad options or an unreadable store. */
export async function buildReport(opts: ReportOptions): Promise<CorpusReport> {
  const store = resolve(opts.dir || 'var/corpus');
  const top = opts.top ?? 10;
  if (!Number.isInteger(top) || top < 1 || top > 1000) throw new ReportError(`--top must be a whole number from 1 to 1000`, EX_USAGE);
  let sinceMs: number | null = null;
  if (opts.since !== undefined) {
    sinceMs = parseSince(opts.since);
    if (sinceMs === null) throw new ReportError(`--since "${opts.since}" is not a date (YYYY-MM-DD or ISO 8601 time)`, EX_USAGE);
  }
  const sinceIso = sinceMs === null ? null : new Date(sinceMs).toISOString();
  const agg = new Aggregate();
  let files: AsyncGenerator<string>;
  try {
    files = metadataFiles(store, sinceIso !== null && sinceMs !== null ? { day: sinceIso.slice(0, 10), ms: sinceMs } : null);
    // Open the directory now, so an unreadable store is an error and not an empty report.
    const first = await files.next();
    if (first.done) {
      await readAuthJournals(store, sinceIso ? sinceIso.slice(0, 10) : null, sinceMs, agg);
      return agg.result(store, sinceIso, top);
    }
    files = prepend(first.value, files);
  } catch (e) {
    throw new ReportError(storeProblem(store, e), EX_NOINPUT);
  }
  const buf = Buffer.allocUnsafe(MAX_META + 1);
  try {
    for await (const path of files) {
      try {
        const m = readMeta(path, buf);
        if (m) agg.add(m, sinceMs);
        else agg.invalid++;
      } catch {
        // Removed while we read it, unreadable, or not JSON: count it, go on.
        agg.invalid++;
      }
    }
  } catch (e) {
    throw new ReportError(storeProblem(store, e), EX_NOINPUT);
  }
  await readAuthJournals(store, sinceIso ? sinceIso.slice(0, 10) : null, sinceMs, agg);
  return agg.result(store, sinceIso, top);
}

/** The AUTH journals (<day>/.auth, one JSON object a line), streamed line by line; a bad line is skipped. */
async function readAuthJournals(dir: string, sinceDay: string | null, sinceMs: number | null, agg: Aggregate): Promise<void> {
  let days: string[];
  try {
    days = (await readdir(dir)).filter((d) => DAY_DIR.test(d) && (sinceDay === null || d >= sinceDay)).sort();
  } catch {
    return;
  }
  for (const day of days) {
    const stream = createReadStream(join(dir, day, AUTH_JOURNAL), { encoding: 'utf8' });
    const lines = createInterface({ input: stream, crlfDelay: Infinity });
    try {
      for await (const line of lines) {
        if (line.length === 0 || line.length > MAX_META) continue;
        try {
          const v: unknown = JSON.parse(line);
          if (v && typeof v === 'object' && !Array.isArray(v)) agg.addAuth(v, sinceMs);
        } catch {
          /* a torn last line (killed mid-append) */
        }
      }
    } catch {
      /* no journal that day (ENOENT) or unreadable: nothing to count */
    } finally {
      lines.close();
      stream.destroy();
    }
  }
}

async function* prepend(first: string, rest: AsyncGenerator<string>): AsyncGenerator<string> {
  yield first;
  yield* rest;
}

// ---- text output ------------------------------------------------------------------------

function table(title: string, headers: string[], rows: (string | number)[][]): string {
  // Escaped before the widths are taken, so columns line up on what the terminal shows.
  const cells = rows.map((r) => r.map((c) => escapeText(String(c))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)));
  // Numbers right-aligned, the first (label) column left-aligned.
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  const out = [title, line(headers), widths.map((w) => '-'.repeat(w)).join('  ')];
  if (cells.length === 0) out.push('(none)');
  for (const r of cells) out.push(line(r));
  return out.join('\n') + '\n';
}

function pct(n: number, of: number): string {
  return of ? `${((100 * n) / of).toFixed(1)}%` : '-';
}

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

export function formatReport(r: CorpusReport): string {
  const n = r.messages;
  const rows = (list: Row[]) => list.map((x) => [x.key, x.messages, pct(x.messages, n)]);
  const parts: string[] = [];
  parts.push(
    `Corpus ${escapeText(r.store)}${r.since ? ` since ${r.since}` : ''}\n` +
      `${plural(n, 'message')}${r.stored !== n ? ` (${r.stored} stored, ${n - r.stored} duplicate ${n - r.stored === 1 ? 'arrival' : 'arrivals'} folded into them)` : ''}, ${bytes(r.bytes)}${r.first !== null ? `, ${r.first} .. ${r.last}` : ''}` +
      (r.invalidFiles ? `; ${plural(r.invalidFiles, 'unreadable metadata file')} skipped` : '') +
      '\n',
  );
  parts.push(table('Per day (UTC)', ['day', 'messages', 'sessions'], r.days.map((d) => [d.day, d.messages, d.sessions])));
  parts.push(table('Verdicts (messages carrying the tag)', ['tag', 'messages', 'share'], rows(r.verdicts)));
  parts.push(`Tempfailed: ${r.tempfailed} (${pct(r.tempfailed, n)})\n`);
  if (r.duplicates.arrivals > 0) {
    parts.push(
      table(
        `Duplicates (store.dedupe): ${plural(r.duplicates.messages, 'stored body', 'stored bodies')} arrived again ${plural(r.duplicates.arrivals, 'time')}`,
        ['first message', 'arrivals'],
        r.duplicates.top.map((x) => [x.key, x.messages]),
      ),
    );
  }
  parts.push(table('DNS block lists that listed the client', ['zone', 'messages', 'share'], rows(r.dnsblZones)));
  if (r.dnswlZones.length > 0) parts.push(table('DNS allow lists that listed the client', ['zone', 'messages', 'share'], rows(r.dnswlZones)));
  parts.push(table('Top HELO names', ['helo', 'messages', 'share'], rows(r.helo)));
  parts.push(table('Top sender domains', ['domain', 'messages', 'share'], rows(r.senderDomains)));
  parts.push(table('Top client networks', ['network', 'messages', 'share'], rows(r.networks)));
  const storedRows = (list: Row[]) => list.map((x) => [x.key, x.messages, pct(x.messages, r.stored)]);
  parts.push(table(`Sizes of the stored files (min ${bytes(r.sizes.min)}, mean ${bytes(r.sizes.mean)}, max ${bytes(r.sizes.max)})`, ['size', 'messages', 'share'], storedRows(r.sizes.buckets)));
  parts.push(table(`TLS: ${plural(r.tls.messages, 'message')} (${pct(r.tls.messages, n)})`, ['protocol', 'messages', 'share'], rows(r.tls.protocols)));
  parts.push(`BDAT (CHUNKING): ${plural(r.transfer.bdat, 'stored message')} (${pct(r.transfer.bdat, r.stored)}), ${plural(r.transfer.chunks, 'chunk')}; DATA: ${r.stored - r.transfer.bdat}\n`);
  if (r.auth.attempts > 0) {
    const a = r.auth.attempts;
    const arows = (list: Row[]) => list.map((x) => [x.key, x.messages, pct(x.messages, a)]);
    parts.push(`AUTH attempts: ${a} in ${plural(r.auth.sessions, 'session')}, ${r.auth.tls} under TLS (${pct(r.auth.tls, a)})\n`);
    parts.push(table('AUTH mechanisms', ['mechanism', 'attempts', 'share'], arows(r.auth.mechanisms)));
    parts.push(table('Top AUTH user names', ['user', 'attempts', 'share'], arows(r.auth.users)));
    parts.push(table('AUTH attempts per client', ['client', 'attempts', 'share'], arows(r.auth.clients)));
  }
  const approx: string[] = [];
  if (r.approximate.sessions) approx.push('session counts');
  if (r.approximate.tops) approx.push('top tables');
  if (approx.length) parts.push(`Note: ${approx.join(' and ')} hit their memory bound; those numbers are lower bounds.\n`);
  return parts.join('\n');
}

/**
 * The CLI command: 0 (also for an empty store, said plainly), 64 bad options, 66 store missing
 * or unreadable. `err` gets diagnostics; default `out` (pass stderr so --json stays clean).
 */
export async function reportCommand(opts: ReportOptions, out: Writer, err: Writer = out): Promise<number> {
  let r: CorpusReport;
  try {
    r = await buildReport(opts);
  } catch (e) {
    if (e instanceof ReportError) {
      err(`fakemx: error: report: ${escapeText(e.message)}`);
      return e.exitCode;
    }
    throw e;
  }
  if (opts.json) {
    out(safeJson(r, 2) + '\n');
    if (r.messages === 0 && err !== out) err(`fakemx: report: no messages in ${escapeText(r.store)}${r.since ? ` since ${r.since}` : ''}`);
    return 0;
  }
  if (r.messages === 0 && r.auth.attempts === 0) {
    out(`fakemx report: no messages in ${escapeText(r.store)}${r.since ? ` since ${r.since}` : ''}` + (r.invalidFiles ? ` (${r.invalidFiles} unreadable metadata files skipped)` : '') + '\n');
    return 0;
  }
  out(formatReport(r));
  return 0;
}
