// A scripted raw SMTP client for tests: real TCP (or TLS) to loopback, exact bytes out,
// replies parsed per RFC 5321 §4.2.1 (multi-line "250-" ... "250 "), every wait bounded.
import { connect, type Socket } from 'node:net';
import { expect } from 'vitest';

export interface ParsedReply {
  code: number;
  lines: string[];
  /** All lines' text after "NNN-"/"NNN ", joined with "\n". */
  text: string;
  /** Enhanced code of the last line, if any. */
  enhanced: string | undefined;
  raw: string;
}

export class RawClient {
  private buf = '';
  private waiters: (() => void)[] = [];
  closed = false;
  readonly received: string[] = [];

  constructor(readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buf += d;
      this.received.push(d);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number, opts: { host?: string; localAddress?: string } = {}): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host: opts.host ?? '127.0.0.1', ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
      s.once('connect', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private waitChange(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), ms);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  /** Take one complete reply from the input, waiting at most `ms`. */
  async reply(ms = 3000): Promise<ParsedReply> {
    const deadline = Date.now() + ms;
    for (;;) {
      const r = this.take();
      if (r) return r;
      if (this.closed) throw new Error(`connection closed; pending ${JSON.stringify(this.buf)}`);
      const left = deadline - Date.now();
      if (left <= 0 || !(await this.waitChange(left))) {
        if (this.closed) continue;
        throw new Error(`no reply within ${ms} ms; pending ${JSON.stringify(this.buf)}`);
      }
    }
  }

  private take(): ParsedReply | null {
    let pos = 0;
    const lines: string[] = [];
    for (;;) {
      const nl = this.buf.indexOf('\r\n', pos);
      if (nl < 0) return null;
      const line = this.buf.slice(pos, nl);
      pos = nl + 2;
      lines.push(line);
      if (!/^\d{3}[ -]/.test(line)) throw new Error(`malformed reply line ${JSON.stringify(line)}`);
      if (line[3] === ' ') break;
    }
    const raw = this.buf.slice(0, pos);
    this.buf = this.buf.slice(pos);
    const texts = lines.map((l) => l.slice(4));
    const last = texts[texts.length - 1]!;
    const m = /^([245]\.\d{1,3}\.\d{1,3}) /.exec(last);
    return { code: Number(lines[0]!.slice(0, 3)), lines, text: texts.join('\n'), enhanced: m?.[1], raw };
  }

  /** Bytes received but not yet taken as replies. */
  get pending(): string {
    return this.buf;
  }

  send(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  async cmd(line: string, ms = 3000): Promise<ParsedReply> {
    this.send(line + '\r\n');
    return this.reply(ms);
  }

  /** Resolve when the server closes the connection (true) or after `ms` (false). */
  async waitClose(ms = 3000): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await this.waitChange(left);
    }
    return true;
  }

  close(): void {
    this.socket.destroy();
  }
}

/**
 * Connect, read the greeting, EHLO. Set-up, not a measurement: the waits are wide (100
 * sessions greeted at once on a busy 2-core machine take seconds).
 */
export async function greeted(port: number, ehlo = 'client.test', opts: { localAddress?: string } = {}): Promise<RawClient> {
  const c = await RawClient.connect(port, opts);
  const g = await c.reply(15_000);
  if (g.code !== 220) throw new Error(`greeting ${g.raw}`);
  const e = await c.cmd(`EHLO ${ehlo}`, 15_000);
  if (e.code !== 250) throw new Error(`EHLO ${e.raw}`);
  return c;
}

/**
 * A half-open client (allowHalfOpen, its side still open) that has its last reply: the server's
 * session must still be there `holdMs` later, and gone within 3 s of the client closing its
 * side. `goneAt()` is when the server reported the session gone (0: not yet).
 */
export async function sessionWaitsForClientClose(sock: { end(): unknown; destroy(): unknown }, goneAt: () => number, holdMs = 300): Promise<{ heldWhileOpen: boolean; goneAfterClose: boolean }> {
  await new Promise((r) => setTimeout(r, holdMs));
  const heldWhileOpen = goneAt() === 0;
  const t0 = Date.now();
  sock.end();
  for (const end = Date.now() + 3000; goneAt() === 0 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
  sock.destroy();
  return { heldWhileOpen, goneAfterClose: goneAt() >= t0 };
}

/**
 * The end of a scripted case: the server closed (when the case says it does), or the next reply
 * is the one to our QUIT, so no reply was left unread and none is missing; no bytes after it.
 */
export async function endCase(cl: RawClient, closes: boolean): Promise<void> {
  if (closes) {
    expect(await cl.waitClose(2000)).toBe(true);
  } else {
    expect(cl.closed).toBe(false);
    const q = await cl.cmd('QUIT');
    expect(q.raw, `the next reply after the last step must be QUIT's 221 (then ${JSON.stringify(cl.pending)})`).toMatch(/^221 /);
    expect(await cl.waitClose(2000)).toBe(true);
  }
  expect(cl.pending, 'bytes after the last reply').toBe('');
}
