// Runs the built daemon through the package bin (`node dist/fakemx.cjs run`, which sizes the
// thread pool and loads dist/cli.js, as npm, systemd and Docker run it) as a child process on a
// temp config, reads its pino lines, and finds the port from the LISTENING line. Every wait is
// bounded. CLI is dist/cli.js itself (the command tests run it directly and compare the bin).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MessageMetadata } from '../../src/store/metadata.js';

export const CLI = join(process.cwd(), 'dist', 'cli.js');
/** package.json's bin. */
export const BIN = join(process.cwd(), 'dist', 'fakemx.cjs');

export interface CliResult { code: number; stdout: string; stderr: string }

/** Runs one `fakemx` command to its end (dist/cli.js, or `entry`), bounded at 60 s. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, entry = [CLI]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...entry, ...args], { env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

export interface Daemon {
  child: ChildProcess;
  dir: string;
  configPath: string;
  port: number;
  /** The admin HTTP port in use (startListening may have moved it off a taken one). */
  httpPort?: number;
  lines: Record<string, unknown>[];
  /** stdout as written, before parsing (what a terminal following the journal would show). */
  stdout: string;
  stderr: string;
  /** Resolve when a log line with this tag (and matching fields) appears. */
  waitFor(tag: string, ms?: number, match?: (l: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  /** Resolve with the exit code. */
  exited(ms?: number): Promise<number | null>;
  writeConfig(cfg: Record<string, unknown>): void;
  kill(): void;
}

export async function startDaemon(cfg: Record<string, unknown>, opts: { env?: NodeJS.ProcessEnv; args?: string[]; configFile?: string } = {}): Promise<Daemon> {
  const dir = mkdtempSync(join(tmpdir(), 'fakemx-daemon-'));
  const configPath = join(dir, 'fakemx.json');
  // Log lines at once (by default a session's lines wait up to 50 ms for a batch): tests read
  // the log as the daemon's account of what happened, and an assertion that a line is absent
  // must not pass because the line is still buffered. test/log/logger.test.ts covers batching.
  const writeConfig = (c: Record<string, unknown>) => writeFileSync(configPath, JSON.stringify({ storePath: join(dir, 'corpus'), logFlushInterval: 0, ...c }));
  writeConfig(cfg);
  const child = spawn(process.execPath, [BIN, 'run', '--config', opts.configFile ?? configPath, ...(opts.args ?? [])], {
    env: { ...process.env, ...(opts.env ?? {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  let buf = '';
  let stderr = '';
  let stdout = '';
  let exitCode: number | null | undefined;
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        lines.push({ raw: line });
      }
    }
    for (const w of waiters.splice(0)) w();
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  child.on('exit', (code) => {
    exitCode = code;
    for (const w of waiters.splice(0)) w();
  });
  const d: Daemon = {
    child,
    dir,
    configPath,
    port: 0,
    lines,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    async waitFor(tag, ms = 5000, match = () => true) {
      const end = Date.now() + ms;
      for (;;) {
        const hit = lines.find((l) => l.tag === tag && match(l));
        if (hit) return hit;
        if (exitCode !== undefined) throw new Error(`daemon exited (${exitCode}) before ${tag}; stderr: ${stderr}`);
        const left = end - Date.now();
        if (left <= 0) throw new Error(`no ${tag} line within ${ms} ms; got ${JSON.stringify(lines.map((l) => l.tag))}; stderr: ${stderr}`);
        await new Promise<void>((r) => {
          const t = setTimeout(r, left);
          waiters.push(() => {
            clearTimeout(t);
            r();
          });
        });
      }
    },
    async exited(ms = 10000) {
      const end = Date.now() + ms;
      while (exitCode === undefined && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      if (exitCode === undefined) throw new Error('daemon did not exit');
      return exitCode;
    },
    writeConfig,
    kill() {
      if (exitCode === undefined) child.kill('SIGKILL');
    },
  };
  return d;
}

/** A port that was free a moment ago (another process may take it before it is used). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export async function startListening(cfg: Record<string, unknown>, opts: { env?: NodeJS.ProcessEnv; configFile?: string } = {}): Promise<Daemon> {
  let config = cfg;
  for (let attempt = 1; ; attempt++) {
    const d = await startDaemon({ listenAddress: '127.0.0.1', listenPort: 0, ...config }, opts);
    // A cold start on a loaded machine (module loading, a log-file worker thread) can take
    // seconds; the wait is bounded, not a timing assertion. A daemon that never says LISTENING
    // is killed here: the test never got it, so its cleanup cannot (it outlived the run before).
    const l = await d.waitFor('LISTENING', 15_000).catch((e: unknown) => {
      d.kill();
      throw e;
    });
    d.port = l.port as number;
    // The admin HTTP listener opens after the SMTP one: with a port from freePort(), another
    // daemon's listener (port 0) can take it in between, and the start fails after LISTENING
    // (seen once in a clean-clone .ci/run as ECONNREFUSED). READY says both are open.
    const http = config.http as { port?: number } | undefined;
    const level = typeof config.logLevel === 'string' ? config.logLevel : 'info';
    if (http?.port) d.httpPort = http.port;
    if (!http?.port || !['trace', 'debug', 'info'].includes(level)) return d;
    try {
      await d.waitFor('READY', 15_000);
      return d;
    } catch (e) {
      const taken = d.lines.some((x) => x.tag === 'START_FAILED' && String(x.err).includes('EADDRINUSE'));
      d.kill();
      if (!taken || attempt >= 3) throw e;
      config = { ...config, http: { ...http, port: await freePort() } };
    }
  }
}

/** The messages a daemon stored under <dir>/corpus (.eml format), by day then name, each with its metadata record. */
export function stored(d: Daemon): { eml: string; meta: MessageMetadata }[] {
  const root = join(d.dir, 'corpus');
  if (!existsSync(root)) return [];
  const out = [];
  for (const day of readdirSync(root)) {
    for (const f of readdirSync(join(root, day)).filter((x) => x.endsWith('.eml') && !x.startsWith('.tmp-')).sort()) {
      const p = join(root, day, f);
      out.push({ eml: readFileSync(p, 'utf8'), meta: JSON.parse(readFileSync(p.replace(/\.eml$/, '.json'), 'utf8')) as MessageMetadata });
    }
  }
  return out;
}
