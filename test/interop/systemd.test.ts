// Deployment under systemd, measured with Debian's own tools: systemd-analyze security (overall
// exposure ≤ 2.0, printed) and verify for the units in systemd/; socket activation through
// systemd-socket-activate (fd 3, FileDescriptorName matching); readiness via systemd-notify.
//
// `systemd-analyze verify` checks that ExecStart's binary exists, and /usr/bin/fakemx is only
// there after installation, so the units are copied to a temp dir with ExecStart pointing at
// `/usr/bin/env node <repo>/dist/fakemx.cjs` (the package bin, same arguments). FAKEMX_CLI
// overrides the path.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import selfsigned from 'selfsigned';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from '../helpers/client.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = process.env.FAKEMX_CLI ?? join(ROOT, 'dist/fakemx.cjs');
const UNITS = join(ROOT, 'systemd');
const MAX_EXPOSURE = 2.0;

function run(cmd: string, args: string[], timeout = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/** Resolve when `pred` holds (checked every 20 ms), or reject after `ms`. */
async function waitFor(what: string, pred: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function requireCli(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} missing: run \`npm run build\` first (npm run test:interop does)`);
}

// ---- systemd-analyze --------------------------------------------------------------------------

describe('systemd units', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'fakemx-units-'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it.each(['fakemx.service', 'fakemx-activated.service'])(`%s: systemd-analyze security exposure <= ${MAX_EXPOSURE}`, async (unit) => {
    const r = await run('systemd-analyze', ['security', '--offline=yes', '--no-pager', join(UNITS, unit)]);
    const m = /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(r.stdout + r.stderr);
    expect(m, r.stdout + r.stderr).not.toBeNull();
    const exposure = Number(m![1]);
    console.log(`systemd-analyze security --offline=yes systemd/${unit}: overall exposure ${exposure}`);
    expect(exposure).toBeLessThanOrEqual(MAX_EXPOSURE);
  });

  it('systemd-analyze verify reports no error for the service, activated service and socket', async () => {
    const files = ['fakemx.service', 'fakemx-activated.service', 'fakemx.socket'];
    for (const f of files) {
      const text = readFileSync(join(UNITS, f), 'utf8');
      // Same arguments, a binary that exists on this machine (see the file comment).
      writeFileSync(join(tmp, f), text.replace(/^ExecStart=\/usr\/bin\/fakemx /m, `ExecStart=/usr/bin/env node ${CLI} `));
    }
    expect(readFileSync(join(tmp, 'fakemx.service'), 'utf8')).toMatch(/^ExecStart=\/usr\/bin\/env node \S+ run --config \/etc\/fakemx\/fakemx\.json$/m);
    const r = await run('systemd-analyze', ['verify', ...files.map((f) => join(tmp, f))]);
    // Lines about other units of the host are not ours to judge.
    const ours = (r.stdout + r.stderr).split('\n').filter((l) => /fakemx/.test(l));
    expect(ours, r.stdout + r.stderr).toEqual([]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  it('the units say what issue 6 asks for', () => {
    const svc = readFileSync(join(UNITS, 'fakemx.service'), 'utf8');
    const act = readFileSync(join(UNITS, 'fakemx-activated.service'), 'utf8');
    const sock = readFileSync(join(UNITS, 'fakemx.socket'), 'utf8');
    for (const line of [
      'Type=notify',
      'NotifyAccess=all',
      'ExecStart=/usr/bin/fakemx run --config /etc/fakemx/fakemx.json',
      'ExecReload=/bin/kill -HUP $MAINPID',
      'Restart=on-failure',
      'StateDirectory=fakemx',
      'LogsDirectory=fakemx',
      'AmbientCapabilities=CAP_NET_BIND_SERVICE',
      'CapabilityBoundingSet=CAP_NET_BIND_SERVICE',
      'UMask=0027',
      'SystemCallFilter=@system-service',
      'SystemCallArchitectures=native',
    ]) {
      expect(svc.split('\n')).toContain(line);
    }
    expect(svc).toMatch(/^LimitNOFILE=\d+$/m);
    expect(act.split('\n')).toContain('CapabilityBoundingSet=');
    expect(act).not.toMatch(/^AmbientCapabilities=\S/m);
    expect(sock.split('\n')).toEqual(expect.arrayContaining(['ListenStream=25', '#ListenStream=587', '#ListenStream=465', 'FileDescriptorName=smtp']));
  });
});

// ---- socket activation --------------------------------------------------------------------------

interface Daemon {
  proc: ChildProcess;
  lines: () => Record<string, unknown>[];
  stop(): Promise<number | null>;
}

/** systemd-socket-activate -l 127.0.0.1:<port>… --fdname=… -E PATH [-E NOTIFY_SOCKET] node cli run. */
function activate(ports: number[], fdnames: string, config: string, env: Record<string, string> = {}): Daemon {
  const args = [...ports.flatMap((p) => ['-l', `127.0.0.1:${p}`]), `--fdname=${fdnames}`, '-E', 'PATH', ...Object.keys(env).flatMap((k) => ['-E', k]), process.execPath, CLI, 'run', '--config', config];
  const proc = spawn('systemd-socket-activate', args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return {
    proc,
    lines: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(t);
      if (code !== 0) console.log(`daemon exit ${code}\nstdout:\n${out}\nstderr:\n${err}`);
      return code;
    },
  };
}

describe('socket activation (systemd-socket-activate)', () => {
  let tmp: string;
  const daemons: Daemon[] = [];
  beforeAll(() => {
    requireCli();
    tmp = mkdtempSync(join(tmpdir(), 'fakemx-activate-'));
  });
  afterAll(async () => {
    for (const d of daemons) await d.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  const config = (name: string, body: Record<string, unknown>) => {
    const p = join(tmp, name);
    writeFileSync(p, JSON.stringify({ hostName: 'mx.test', bannerDelay: 0, errorDelay: 0, storeData: false, storePath: join(tmp, 'corpus'), ...body }));
    return p;
  };

  it('serves SMTP on the inherited socket (fd 3), not on the configured port', async () => {
    const [port, configured] = [await freePort(), await freePort()];
    const cfg = config('one.json', { listeners: [{ name: 'smtp', address: '127.0.0.1', port: configured, tls: 'none' }] });
    const d = activate([port], 'smtp', cfg);
    daemons.push(d);
    // systemd-socket-activate execs fakemx on the first connection; the greeting comes after start-up.
    const c = await connectRetry(port);
    const greeting = await c.reply(15_000);
    expect(greeting.code).toBe(220);
    expect(greeting.text).toMatch(/^mx\.test /);
    expect((await c.cmd('EHLO client.test')).code).toBe(250);
    expect((await c.cmd('QUIT')).code).toBe(221);
    c.close();
    const listening = d.lines().filter((l) => l.tag === 'LISTENING');
    expect(listening).toEqual([expect.objectContaining({ name: 'smtp', address: '127.0.0.1', port })]);
    // Nothing bound the configured port: the socket really came from fd 3.
    await expect(RawClient.connect(configured)).rejects.toThrow(/ECONNREFUSED/);
    expect(await d.stop()).toBe(0);
  });

  it('SIGHUP keeps the inherited socket whatever port the file names; a change of its tls is refused', async () => {
    const [port, configured, other] = [await freePort(), await freePort(), await freePort()];
    const cfg = config('hup.json', { listeners: [{ name: 'smtp', address: '127.0.0.1', port: configured, tls: 'none' }] });
    const d = activate([port], 'smtp', cfg);
    daemons.push(d);
    const c = await connectRetry(port);
    expect((await c.reply(15_000)).code).toBe(220);
    c.close();
    const waitTag = async (tag: string, n: number) => {
      for (let i = 0; i < 100 && d.lines().filter((l) => l.tag === tag).length < n; i++) await new Promise((r) => setTimeout(r, 50));
      return d.lines().filter((l) => l.tag === tag);
    };
    // The file names another port: the socket from systemd stays, nothing is bound there.
    writeFileSync(cfg, JSON.stringify({ hostName: 'after.test', bannerDelay: 0, errorDelay: 0, storeData: false, storePath: join(tmp, 'corpus'), listeners: [{ name: 'smtp', address: '127.0.0.1', port: other, tls: 'none' }] }));
    d.proc.kill('SIGHUP');
    expect(await waitTag('CONFIG_RELOADED', 1)).toHaveLength(1);
    const c2 = await RawClient.connect(port);
    expect((await c2.reply()).text).toMatch(/^after\.test /);
    c2.close();
    await expect(RawClient.connect(other)).rejects.toThrow(/ECONNREFUSED/);
    // Its TLS mode cannot change without a new socket: refused, the old config runs on.
    const pems = await selfsigned.generate([{ name: 'commonName', value: 'mx.test' }], { keySize: 2048, algorithm: 'sha256' });
    writeFileSync(join(tmp, 'cert.pem'), pems.cert);
    writeFileSync(join(tmp, 'key.pem'), pems.private);
    const tlsFiles = { cert: join(tmp, 'cert.pem'), key: join(tmp, 'key.pem') };
    writeFileSync(cfg, JSON.stringify({ hostName: 'tls.test', bannerDelay: 0, storeData: false, storePath: join(tmp, 'corpus'), tls: tlsFiles, listeners: [{ name: 'smtp', address: '127.0.0.1', port, tls: 'implicit' }] }));
    d.proc.kill('SIGHUP');
    const failed = await waitTag('CONFIG_RELOAD_FAILED', 1);
    expect(String(failed[0]?.reason)).toMatch(/listener smtp: its socket comes from systemd; a change of tls \(none -> implicit\) needs a restart/);
    const c3 = await RawClient.connect(port);
    expect((await c3.reply()).text).toMatch(/^after\.test /);
    c3.close();
    expect(await d.stop()).toBe(0);
  });

  it('matches sockets to listeners by FileDescriptorName, not by order', async () => {
    const [pa, pb] = [await freePort(), await freePort()];
    const cfg = config('two.json', {
      // Listed in the opposite order of the fds, with different banners (profiles).
      listeners: [
        { name: 'submission', address: '127.0.0.1', port: 1, tls: 'none', profile: { hostName: 'submission.test' } },
        { name: 'smtp', address: '127.0.0.1', port: 2, tls: 'none', profile: { hostName: 'smtp.test' } },
      ],
    });
    const d = activate([pa, pb], 'smtp:submission', cfg);
    daemons.push(d);
    const a = await connectRetry(pa);
    expect((await a.reply(15_000)).text).toMatch(/^smtp\.test /);
    a.close();
    const b = await connectRetry(pb);
    expect((await b.reply(5000)).text).toMatch(/^submission\.test /);
    b.close();
    const listening = d.lines().filter((l) => l.tag === 'LISTENING');
    expect(listening).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: 'smtp', port: pa }), expect.objectContaining({ name: 'submission', port: pb })]),
    );
    expect(await d.stop()).toBe(0);
  });

  it('tells systemd READY=1 once listening, RELOADING=1 on SIGHUP, STOPPING=1 on SIGTERM (real systemd-notify)', async () => {
    const sockPath = join(tmp, 'notify.sock');
    const rx = notifyReceiver(sockPath);
    try {
      await rx.ready;
      const port = await freePort();
      const cfg = config('notify.json', { listeners: [{ name: 'smtp', address: '127.0.0.1', port: 1, tls: 'none' }] });
      const d = activate([port], 'smtp', cfg, { NOTIFY_SOCKET: sockPath });
      daemons.push(d);
      const c = await connectRetry(port);
      expect((await c.reply(15_000)).code).toBe(220);
      await waitFor('READY=1', () => rx.messages().some((m) => m.includes('READY=1')));
      const ready = rx.messages().find((m) => m.includes('READY=1'))!;
      expect(ready).toContain(`MAINPID=${d.proc.pid}`);
      expect(ready).toMatch(/STATUS=listening on 127\.0\.0\.1:\d+/);
      // Readiness is sent after LISTENING is logged, i.e. after the socket is served.
      expect(d.lines().some((l) => l.tag === 'LISTENING')).toBe(true);
      // At once: systemd may send `systemctl reload` the moment READY=1 arrives, so the
      // daemon's signal handlers must be in place before it notifies.
      d.proc.kill('SIGHUP');
      await waitFor('RELOADING=1 then READY=1', () => {
        const ms = rx.messages();
        const i = ms.findIndex((m) => m.includes('RELOADING=1'));
        return i >= 0 && ms.slice(i + 1).some((m) => m.includes('READY=1'));
      });
      c.close();
      expect(await d.stop()).toBe(0);
      expect(rx.messages().some((m) => m.includes('STOPPING=1'))).toBe(true);
    } finally {
      rx.stop();
    }
  });
});

/** The socket may not accept yet right after spawn; retry connecting for up to 5 s. */
async function connectRetry(port: number): Promise<RawClient> {
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      return await RawClient.connect(port);
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/**
 * A stand-in for PID 1's notify socket: python3 binds an AF_UNIX datagram socket (Node
 * cannot), prints each message as a JSON string, and closes passed fds so systemd-notify's
 * barrier (BARRIER=1 with a pipe fd) completes.
 */
function notifyReceiver(path: string): { ready: Promise<void>; messages: () => string[]; stop: () => void } {
  const py = [
    'import socket, os, sys, json',
    's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
    's.bind(sys.argv[1])',
    'print(json.dumps("LISTENING"), flush=True)',
    'while True:',
    '    msg, fds, flags, addr = socket.recv_fds(s, 65536, 16)',
    '    for fd in fds: os.close(fd)',
    '    print(json.dumps(msg.decode("utf-8", "replace")), flush=True)',
  ].join('\n');
  const p = spawn('python3', ['-c', py, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  let buf = '';
  const msgs: string[] = [];
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((r) => (onReady = r));
  p.stdout.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const m = JSON.parse(buf.slice(0, nl)) as string;
      buf = buf.slice(nl + 1);
      if (m === 'LISTENING') onReady();
      else if (!m.startsWith('BARRIER=')) msgs.push(m);
    }
  });
  return { ready, messages: () => msgs, stop: () => p.kill('SIGKILL') };
}

// ---- what the Dockerfile and the production configs name ---------------------------------------

describe('deploy artifacts', () => {
  it('Dockerfile: multi-stage, non-root, CMD resolves to the built cli, copied paths exist', () => {
    requireCli();
    const df = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    expect(df.match(/^FROM /gm)!.length).toBeGreaterThanOrEqual(2);
    expect(df).toMatch(/^USER fakemx$/m);
    expect(df).toMatch(/^EXPOSE 25\b/m);
    expect(df).toMatch(/^VOLUME \/var\/lib\/fakemx$/m);
    expect(df).toMatch(/^STOPSIGNAL SIGTERM$/m);
    expect(df).toMatch(/^HEALTHCHECK .*\n?.*CMD \["node"/m);
    expect(df).toMatch(/^CMD \["fakemx", "run", "--config", "\/etc\/fakemx\/fakemx\.json"\]$/m);
    // `fakemx` is package.json's bin, i.e. dist/fakemx.cjs (sizes the thread pool, then loads
    // dist/cli.js), which the image links into /usr/local/bin.
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(pkg.bin.fakemx).toBe('dist/fakemx.cjs');
    expect(df).toContain('ln -s /opt/fakemx/dist/fakemx.cjs /usr/local/bin/fakemx');
    // Every COPY source from the build context exists and is not excluded by .dockerignore.
    const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8');
    for (const m of df.matchAll(/^COPY (?!--from)(.+)$/gm)) {
      const srcs = m[1]!.trim().split(/\s+/).slice(0, -1);
      for (const s of srcs) {
        expect(existsSync(join(ROOT, s)), s).toBe(true);
        const top = s.split('/')[0]!;
        const entry = `!${top}${statSync(join(ROOT, top)).isDirectory() ? '/' : ''}`;
        expect(ignore.split('\n'), `${s} must be re-included in .dockerignore`).toContain(entry);
      }
    }
  });

  it.each(['config/docker.json', 'systemd/fakemx.json'])('%s passes `fakemx check-config`', async (file) => {
    requireCli();
    const r = await run(process.execPath, [CLI, 'check-config', '--config', join(ROOT, file)]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/: ok$/m);
  });
});
