// A private redis-server for the interop tests: loopback only, a free port, no persistence,
// started and killed by the test (never a system service).
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, connect } from 'node:net';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export class RedisServer {
  private child: ChildProcess | null = null;
  private constructor(
    readonly port: number,
    /** A directory for an append-only file (fsync every second, Redis's default), so a SIGKILL keeps the data; none = no persistence. */
    private readonly persistDir?: string,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(port?: number, persistDir?: string): Promise<RedisServer> {
    const r = new RedisServer(port ?? (await freePort()), persistDir);
    await r.start();
    return r;
  }

  /** Starts (again) on the same port; resolves once it answers PING. */
  async start(): Promise<void> {
    const persist = this.persistDir ? ['--appendonly', 'yes', '--appendfsync', 'everysec', '--dir', this.persistDir] : ['--appendonly', 'no'];
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', ...persist, '--protected-mode', 'yes'], { stdio: 'ignore' });
    const end = Date.now() + 5000;
    while (Date.now() < end) {
      if (await ping(this.port)) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`redis-server on ${this.port} did not start`);
  }

  /** SIGKILL, as a crash would. */
  async kill(): Promise<void> {
    const c = this.child;
    this.child = null;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((r) => {
      c.once('exit', () => r());
      c.kill('SIGKILL');
    });
  }

  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    this.resume();
    await this.kill();
  }
}

/** One PING over a raw socket, bounded by 500 ms. */
export function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    const t = setTimeout(() => done(false), 500);
    let buf = '';
    const done = (v: boolean) => {
      clearTimeout(t);
      s.destroy();
      resolve(v);
    };
    s.on('error', () => done(false));
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
  });
}
