// Disk full: the store on a filesystem that fills. As root, a real 1 MB tmpfs; always (and as
// the only path without mount privilege) an injected one: node:fs/promises and node:fs are
// wrapped so that file handles and descriptors opened under the store share a byte budget and
// fail like a full disk does (a short write, then ENOSPC). Either way: 451 4.3.0, no partial file, the server keeps
// serving, and once space returns messages are stored again.
import { afterAll, describe, expect, it, vi } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { greeted, type RawClient } from '../helpers/client.js';
import { noTemporaries } from '../helpers/temporaries.js';
import { createServer, type FakemxServer } from '../../src/server.js';
import type { MessageMetadata } from '../../src/store/metadata.js';
import { idOfMaildirName } from '../../src/store/layout.js';

// ---- the injected filesystem ---------------------------------------------------------------

const inject = vi.hoisted(() => ({
  /** Only handles opened under this path are affected. */
  root: '\0none',
  /** Bytes the "filesystem" still takes (Infinity = not full). */
  budget: Infinity,
  /** 'short': the next writev writes half and reports it, without an error (space freed meanwhile). */
  shortOnce: false,
}));

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  type FH = Awaited<ReturnType<typeof real.open>>;
  const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
  /** Like write(2) on a full disk: what fits is written and reported; nothing fits is ENOSPC. */
  function take(want: number): number {
    if (inject.budget <= 0 && want > 0) throw enospc();
    const n = Math.min(want, inject.budget);
    inject.budget -= n;
    return n;
  }
  function clip(bufs: readonly NodeJS.ArrayBufferView[], n: number): Buffer[] {
    const out: Buffer[] = [];
    for (const b of bufs) {
      if (n <= 0) break;
      const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
      out.push(buf.subarray(0, n));
      n -= Math.min(n, buf.length);
    }
    return out;
  }
  function wrap(fh: FH): FH {
    return new Proxy(fh, {
      get(target, prop) {
        if (prop === 'writev') {
          return async (bufs: NodeJS.ArrayBufferView[], pos?: number) => {
            const want = bufs.reduce((a, b) => a + b.byteLength, 0);
            let n = inject.shortOnce ? Math.floor(want / 2) : take(want);
            if (inject.shortOnce) inject.shortOnce = false;
            if (n < want) {
              const r = await target.writev(clip(bufs, n), pos);
              n = r.bytesWritten;
              return { bytesWritten: n, buffers: bufs };
            }
            return target.writev(bufs, pos);
          };
        }
        if (prop === 'writeFile') {
          return async (data: string | Uint8Array) => {
            const buf = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data);
            const n = take(buf.length);
            await target.writeFile(buf.subarray(0, n));
            if (n < buf.length) throw enospc();
          };
        }
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  }
  const open = async (...args: Parameters<typeof real.open>): Promise<FH> => {
    const fh = await real.open(...args);
    return String(args[0]).startsWith(inject.root) ? wrap(fh) : fh;
  };
  return { ...real, open, default: { ...real, open } };
});

// The store's hot path writes through node:fs callbacks on raw descriptors (journal.ts,
// corpus.ts): descriptors opened under the store share the same budget, with the same short
// write and ENOSPC.
vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  const mine = new Set<number>();
  type Cb<T> = (err: NodeJS.ErrnoException | null, v: T) => void;
  const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
  const open = (path: string, flags: string | number, mode: number, cb: Cb<number>) =>
    real.open(path, flags, mode, (err, fd) => {
      if (!err && String(path).startsWith(inject.root)) mine.add(fd);
      cb(err, fd);
    });
  const close = (fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
    mine.delete(fd);
    real.close(fd, cb);
  };
  const writev = (fd: number, bufs: NodeJS.ArrayBufferView[], ...rest: unknown[]) => {
    const cb = rest.pop() as Cb<number>;
    const pos = rest[0] as number | null | undefined;
    if (!mine.has(fd)) return real.writev(fd, bufs, pos ?? null, cb);
    const want = bufs.reduce((a, b) => a + b.byteLength, 0);
    let n: number;
    if (inject.shortOnce) {
      inject.shortOnce = false;
      n = Math.floor(want / 2);
    } else {
      if (inject.budget <= 0 && want > 0) return process.nextTick(() => cb(enospc(), 0));
      n = Math.min(want, inject.budget);
      inject.budget -= n;
    }
    const out: Buffer[] = [];
    let left = n;
    for (const b of bufs) {
      if (left <= 0) break;
      const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
      out.push(buf.subarray(0, left));
      left -= Math.min(left, buf.length);
    }
    real.writev(fd, out, pos ?? null, cb);
  };
  const fake = { ...real, open, close, writev };
  return { ...fake, default: fake };
});

// ---- helpers -------------------------------------------------------------------------------

const base = mkdtempSync(join(tmpdir(), 'fakemx-diskfull-'));
/** One 1 MB tmpfs per store.format. */
const mnts = { eml: join(base, 'mnt-eml'), maildir: join(base, 'mnt-maildir') };
let mounted = false;
try {
  // A tmpfs needs CAP_SYS_ADMIN; without it (an unprivileged container) mount fails and only the injected path runs.
  for (const m of Object.values(mnts)) {
    mkdirSync(m);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', m], { stdio: 'ignore' });
    mounted = true;
  }
} catch {
  mounted = false;
}

const servers: FakemxServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.close(500);
  for (const m of Object.values(mnts)) {
    try {
      execFileSync('umount', ['-l', m], { stdio: 'ignore' });
    } catch {
      // not mounted
    }
  }
  rmSync(base, { recursive: true, force: true });
});

async function start(storePath: string, format: 'eml' | 'maildir' = 'eml'): Promise<{ server: FakemxServer; port: number }> {
  const server = createServer({
    config: {
      listenAddress: '127.0.0.1', listenPort: 0, hostName: 'mx.test', bannerDelay: 0, errorDelay: 0, receiveTimeout: 5000,
      maxSessions: 50, maxSessionsPerIp: 50, storeData: true, storePath, maxDataSize: 4 * 2 ** 20, maxMessages: 1000,
      store: { format },
    },
  });
  servers.push(server);
  const [l] = await server.listen();
  return { server, port: l!.port };
}

const STORE_FAILED = '451 4.3.0 Requested action aborted: local error in processing\r\n';

function body(tag: string, size: number): { wire: Buffer; stored: Buffer } {
  const line = `${tag} ${'x'.repeat(70)}`.slice(0, 76) + '\r\n';
  const stored = Buffer.from(`Subject: ${tag}\r\n\r\n` + line.repeat(Math.ceil(size / line.length)), 'latin1');
  return { wire: Buffer.concat([stored, Buffer.from('.\r\n')]), stored };
}

async function send(c: RawClient, tag: string, size: number): Promise<{ raw: string; stored: Buffer; id: string | null }> {
  expect((await c.cmd('MAIL FROM:<a@full.example>')).code).toBe(250);
  expect((await c.cmd('RCPT TO:<b@mx.test>')).code).toBe(250);
  expect((await c.cmd('DATA')).code).toBe(354);
  const b = body(tag, size);
  c.send(b.wire);
  const r = await c.reply(10_000);
  return { raw: r.raw, stored: b.stored, id: /queued as ([0-9a-z]+)/.exec(r.text)?.[1] ?? null };
}

/** Every file of the store; a Maildir's tmp/ entries are named .tmp- here (temporaries either way). */
function listStore(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root).flatMap((d) =>
    readdirSync(join(root, d)).flatMap((f) => {
      const p = join(root, d, f);
      if (f === 'tmp') return readdirSync(p).map((t) => join(root, d, `.tmp-maildir-${t}`));
      if (f === 'new' || f === 'cur') return readdirSync(p).map((m) => join(p, m));
      return [p];
    }),
  );
}

/** The id of a finished message file (.eml or Maildir new/), or null. */
function messageId(f: string): string | null {
  const name = f.slice(f.lastIndexOf('/') + 1);
  if (name.endsWith('.eml') && !name.startsWith('.tmp-')) return name.slice(0, -4);
  return /\/(new|cur)\/[^/]+$/.test(f) ? idOfMaildirName(name) : null;
}

/** Every finished message has its .json, its declared size, and exactly the body sent. */
function checkStore(root: string, sent: Map<string, Buffer>): void {
  const files = listStore(root);
  expect(files.filter((f) => f.includes('.tmp-'))).toEqual([]);
  for (const f of files.filter((x) => messageId(x) !== null)) {
    const id = messageId(f)!;
    const eml = readFileSync(f);
    const meta = JSON.parse(readFileSync(join(root, meta0Day(f, root), `${id}.json`), 'utf8')) as MessageMetadata;
    expect(meta.sizes.file, `${id} size`).toBe(eml.length);
    expect(sent.has(id), `${id} was acknowledged`).toBe(true);
    expect(eml.subarray(meta.sizes.headers).equals(sent.get(id)!), `${id} body`).toBe(true);
  }
}

/** The day directory a message file is in (a Maildir file is one level deeper). */
function meta0Day(f: string, root: string): string {
  return f.slice(root.length + 1).split('/')[0]!;
}

const waitNoTmp = (root: string) => noTemporaries(() => listStore(root));

/**
 * The scenario on a store that fills after roughly 1 MB: fill it (250s, then 451 4.3.0),
 * check nothing partial is left and the session and server still work, give space back, store again.
 */
async function scenario(root: string, giveSpaceBack: () => void, format: 'eml' | 'maildir' = 'eml'): Promise<{ stored: number }> {
  const { port } = await start(root, format);
  const sent = new Map<string, Buffer>();
  const c = await greeted(port);
  let full: string | null = null;
  for (let i = 0; i < 12 && !full; i++) {
    const r = await send(c, `m${i}`, 200_000);
    if (r.raw.startsWith('250 ')) sent.set(r.id!, r.stored);
    else full = r.raw;
  }
  expect(full, 'the store never filled').toBe(STORE_FAILED);
  expect(sent.size).toBeGreaterThan(0);
  await waitNoTmp(root);
  checkStore(root, sent);
  // The session goes on (451 is not the client's fault: no error counted) and so does the server.
  expect((await c.cmd('NOOP')).code).toBe(250);
  expect((await send(c, 'still-full', 200_000)).raw).toBe(STORE_FAILED);
  const other = await greeted(port, 'other.example');
  expect((await other.cmd('QUIT')).code).toBe(221);
  other.close();
  // Space returns: the same session stores again, byte-exact.
  giveSpaceBack();
  const again = await send(c, 'after-space', 200_000);
  expect(again.raw).toMatch(/^250 2\.0\.0 Ok: queued as /);
  sent.set(again.id!, again.stored);
  await waitNoTmp(root);
  checkStore(root, sent);
  expect((await c.cmd('QUIT')).code).toBe(221);
  c.close();
  return { stored: sent.size };
}

describe.each(['eml', 'maildir'] as const)('disk full, store.format %s', (format) => {
  it.runIf(mounted)('a real 1 MB tmpfs: 451 4.3.0, nothing partial, still serving, stores again after remount', { timeout: 30_000 }, async () => {
    const mnt = mnts[format];
    const r = await scenario(join(mnt, 'corpus'), () => execFileSync('mount', ['-o', 'remount,size=8m', mnt]), format);
    console.log(`disk-full tmpfs (${format}): ${r.stored} messages stored around the full disk`);
  });

  it('an injected full disk (short write, then ENOSPC): the same, without mount privilege', { timeout: 30_000 }, async () => {
    const root = join(base, `injected-${format}`);
    inject.root = root;
    inject.budget = 1_000_000;
    try {
      const r = await scenario(root, () => (inject.budget = Infinity), format);
      expect(r.stored).toBeGreaterThan(1);
    } finally {
      inject.root = '\0none';
      inject.budget = Infinity;
    }
  });

  // Found here (reported): FileHandle.writev() reports a short write as a success with a
  // smaller bytesWritten; src/store/corpus.ts MessageWriter.flush() ignores it. When the space
  // is back by the time the metadata is written (another message's temporary removed
  // meanwhile), the truncated .eml is renamed into place and acknowledged with 250.
  // Fix: in flush(), loop until every byte is written (a further write then fails with ENOSPC
  // on a full disk), or treat bytesWritten < n as a StoreError('write').
  it('a short write is never acknowledged as a stored message', async () => {
    const root = join(base, `short-${format}`);
    const { port } = await start(root, format);
    inject.root = root;
    try {
      const c = await greeted(port);
      inject.shortOnce = true;
      const r = await send(c, 'short', 10_000);
      await waitNoTmp(root);
      if (r.raw.startsWith('250 ')) checkStore(root, new Map([[r.id!, r.stored]]));
      else expect(r.raw).toBe(STORE_FAILED);
      c.close();
    } finally {
      inject.root = '\0none';
      inject.shortOnce = false;
    }
  });
});
