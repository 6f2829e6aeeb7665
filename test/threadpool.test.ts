// libuv's thread pool is sized where it takes effect: `fakemx run` started through the package's
// bin (what npm, systemd and Docker run) has 16 pool threads, counted in /proc/<pid>/task after
// it has stored a message; an operator's UV_THREADPOOL_SIZE wins. The units and the image set
// it in the environment too. (A size set by an ES module came too late: 4 threads either way.)
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { greeted } from './helpers/client.js';

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { bin: Record<string, string> };
const BIN = join(process.cwd(), pkg.bin.fakemx!);
const root = mkdtempSync(join(tmpdir(), 'fakemx-threads-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Starts `fakemx run` through the bin, stores one message, and returns the process's thread count. */
async function threadsAfterWork(name: string, poolEnv: string | undefined): Promise<number> {
  const dir = join(root, name);
  const cfg = join(root, `${name}.json`);
  writeFileSync(cfg, JSON.stringify({ listenAddress: '127.0.0.1', listenPort: 0, bannerDelay: 0, storePath: dir, logLevel: 'info' }));
  const env = { ...process.env };
  delete env.UV_THREADPOOL_SIZE;
  if (poolEnv !== undefined) env.UV_THREADPOOL_SIZE = poolEnv;
  const child: ChildProcess = spawn(process.execPath, [BIN, 'run', '--config', cfg], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let out = '';
    const seen = (tag: string) => new Promise<Record<string, unknown>>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ${tag} within 30 s: ${out}`)), 30_000);
      const look = () => {
        const line = out.split('\n').find((l) => l.includes(`"tag":"${tag}"`));
        if (!line) return;
        clearTimeout(t);
        child.stdout!.off('data', look);
        resolve(JSON.parse(line) as Record<string, unknown>);
      };
      child.stdout!.on('data', look);
      look();
    });
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    const listening = await seen('LISTENING');
    // fs work through the pool: mkdir, open, write, fsync, rename of a stored message.
    const c = await greeted(listening.port as number);
    await c.cmd('MAIL FROM:<a@example.org>');
    await c.cmd('RCPT TO:<b@example.com>');
    await c.cmd('DATA');
    expect((await c.cmd('Subject: t\r\n\r\nbody\r\n.')).code).toBe(250);
    await c.cmd('QUIT');
    await seen('STORED');
    return readdirSync(`/proc/${child.pid}/task`).length;
  } finally {
    child.kill('SIGKILL');
  }
}

describe.skipIf(!existsSync('/proc/self/task'))('thread pool size of `fakemx run`', () => {
  // The threads that are not the pool's are the same in every run: the run with an explicit 4
  // (libuv's default) is the baseline, so pool = threads - baseline + 4.
  let baseline = 0;
  const cases: [name: string, pool: number, env: string | undefined][] = [
    ['unset: the bin sets 16', 16, undefined],
    ['empty counts as unset', 16, ''],
    ['the operator\'s 8 wins', 8, '8'],
    ['the operator\'s 24 wins', 24, '24'],
  ];
  it('baseline: UV_THREADPOOL_SIZE=4 explicitly', async () => {
    baseline = await threadsAfterWork('baseline', '4');
    expect(baseline).toBeGreaterThan(4);
  });
  it.each(cases)('%s -> %i pool threads', async (name, pool, env) => {
    expect(baseline).toBeGreaterThan(0);
    const threads = await threadsAfterWork(name.replace(/\W+/g, '-'), env);
    expect(threads - baseline + 4).toBe(pool);
  });
});

describe('deployments set it in the environment too', () => {
  it.each([
    ['systemd/fakemx.service', /^Environment=UV_THREADPOOL_SIZE=16$/m],
    ['systemd/fakemx-activated.service', /^Environment=UV_THREADPOOL_SIZE=16$/m],
    ['Dockerfile', /^ENV UV_THREADPOOL_SIZE=16$/m],
    ['Dockerfile', new RegExp(`ln -s /opt/fakemx/${pkg.bin.fakemx!.replace(/\./g, '\\.')} /usr/local/bin/fakemx`)],
  ])('%s: %s', (file, re) => {
    expect(readFileSync(file, 'utf8')).toMatch(re);
  });
});
