// PROXY protocol v1/v2: a table of headers in the style of aiosmtpd's proxy tests, run once
// through the pure parser and once over a real 127.0.0.1 socket (chunking, trailing bytes,
// timeout, no listeners or timers left behind).
import { createServer, connect, type Server, type Socket, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseProxyHeader, readProxyHeader, type ProxyHeader } from '../../src/net/proxy-protocol.js';

const SIG2 = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** Build a v2 header: version/command byte, family/transport byte, address block. */
function v2(verCmd: number, famProto: number, body: Buffer | number[] = []): Buffer {
  const b = Buffer.from(body);
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([SIG2, Buffer.from([verCmd, famProto]), len, b]);
}
const v4block = (src: number[], dst: number[], sp: number, dp: number) => {
  const b = Buffer.alloc(12);
  Buffer.from(src).copy(b, 0);
  Buffer.from(dst).copy(b, 4);
  b.writeUInt16BE(sp, 8);
  b.writeUInt16BE(dp, 10);
  return b;
};
const v6block = (src: string, dst: string, sp: number, dp: number) => {
  const b = Buffer.alloc(36);
  Buffer.from(src.replace(/:/g, ''), 'hex').copy(b, 0);
  Buffer.from(dst.replace(/:/g, ''), 'hex').copy(b, 16);
  b.writeUInt16BE(sp, 32);
  b.writeUInt16BE(dp, 34);
  return b;
};
const ascii = (s: string) => Buffer.from(s, 'latin1');

interface Good {
  name: string;
  input: Buffer;
  header: ProxyHeader;
  rest?: string;
}
const GOOD: Good[] = [
  {
    name: 'v1 TCP4',
    input: ascii('PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\n'),
    header: { command: 'PROXY', version: 1, source: { address: '192.0.2.1', port: 56324 }, destination: { address: '198.51.100.2', port: 25 } },
  },
  {
    name: 'v1 TCP6',
    input: ascii('PROXY TCP6 2001:db8::1 2001:db8::25 65535 0\r\n'),
    header: { command: 'PROXY', version: 1, source: { address: '2001:db8::1', port: 65535 }, destination: { address: '2001:db8::25', port: 0 } },
  },
  {
    name: 'v1 TCP6 longest line (107 bytes)',
    input: ascii(`PROXY TCP6 ${'ffff:'.repeat(7)}ffff ${'ffff:'.repeat(7)}ffff 65535 65535\r\n`),
    header: {
      command: 'PROXY',
      version: 1,
      source: { address: `${'ffff:'.repeat(7)}ffff`, port: 65535 },
      destination: { address: `${'ffff:'.repeat(7)}ffff`, port: 65535 },
    },
  },
  { name: 'v1 UNKNOWN bare', input: ascii('PROXY UNKNOWN\r\n'), header: { command: 'UNKNOWN', version: 1 } },
  { name: 'v1 UNKNOWN with ignored fields', input: ascii('PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n'), header: { command: 'UNKNOWN', version: 1 } },
  {
    name: 'v1 trailing bytes preserved',
    input: ascii('PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\nEHLO x\r\n'),
    header: { command: 'PROXY', version: 1, source: { address: '192.0.2.1', port: 1 }, destination: { address: '192.0.2.2', port: 2 } },
    rest: 'EHLO x\r\n',
  },
  {
    name: 'v2 PROXY AF_INET STREAM',
    input: v2(0x21, 0x11, v4block([192, 0, 2, 7], [198, 51, 100, 1], 40000, 25)),
    header: { command: 'PROXY', version: 2, source: { address: '192.0.2.7', port: 40000 }, destination: { address: '198.51.100.1', port: 25 } },
  },
  {
    name: 'v2 PROXY AF_INET6 STREAM',
    input: v2(0x21, 0x21, v6block('2001:0db8:0000:0000:0000:0000:0000:0001', '2001:0db8:0001:0000:0000:0000:0000:0025', 1234, 587)),
    header: { command: 'PROXY', version: 2, source: { address: '2001:db8::1', port: 1234 }, destination: { address: '2001:db8:1::25', port: 587 } },
  },
  {
    name: 'v2 PROXY v4-mapped IPv6 in mixed notation',
    input: v2(0x21, 0x21, v6block('0000:0000:0000:0000:0000:ffff:c000:0201', '0000:0000:0000:0000:0000:0000:0000:0001', 5, 25)),
    header: { command: 'PROXY', version: 2, source: { address: '::ffff:192.0.2.1', port: 5 }, destination: { address: '::1', port: 25 } },
  },
  {
    name: 'v2 PROXY AF_INET with TLVs skipped, trailing bytes preserved',
    input: Buffer.concat([v2(0x21, 0x11, Buffer.concat([v4block([10, 0, 0, 1], [10, 0, 0, 2], 1, 2), Buffer.from([0x04, 0x00, 0x01, 0x00])])), ascii('QUIT\r\n')]),
    header: { command: 'PROXY', version: 2, source: { address: '10.0.0.1', port: 1 }, destination: { address: '10.0.0.2', port: 2 } },
    rest: 'QUIT\r\n',
  },
  { name: 'v2 LOCAL (no addresses)', input: v2(0x20, 0x00), header: { command: 'LOCAL', version: 2 } },
  { name: 'v2 LOCAL with AF_INET6 block ignored', input: v2(0x20, 0x21, Buffer.alloc(36)), header: { command: 'LOCAL', version: 2 } },
  { name: 'v2 PROXY UNSPEC is UNKNOWN', input: v2(0x21, 0x00), header: { command: 'UNKNOWN', version: 2 } },
  { name: 'v2 PROXY AF_UNIX is UNKNOWN', input: v2(0x21, 0x31, Buffer.alloc(216)), header: { command: 'UNKNOWN', version: 2 } },
  { name: 'v2 PROXY AF_INET DGRAM is UNKNOWN', input: v2(0x21, 0x12, v4block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), header: { command: 'UNKNOWN', version: 2 } },
];

interface Bad {
  name: string;
  input: Buffer;
  reason: RegExp;
}
const BAD: Bad[] = [
  { name: 'bad signature (SMTP instead of PROXY)', input: ascii('EHLO example.com\r\n'), reason: /bad signature/ },
  { name: 'bad signature (lower case)', input: ascii('proxy TCP4 1.2.3.4 1.2.3.5 1 2\r\n'), reason: /bad signature/ },
  { name: 'bad signature (v2 garbled)', input: Buffer.concat([SIG2.subarray(0, 11), Buffer.from([0x0b, 0x21, 0x11, 0, 0])]), reason: /bad signature/ },
  { name: 'v1 bad family TCP5', input: ascii('PROXY TCP5 1.2.3.4 1.2.3.5 1 2\r\n'), reason: /bad protocol family "TCP5"/ },
  { name: 'v1 bad family UDP4', input: ascii('PROXY UDP4 1.2.3.4 1.2.3.5 1 2\r\n'), reason: /bad protocol family/ },
  { name: 'v1 over-long line', input: ascii(`PROXY UNKNOWN ${'x'.repeat(100)}\r\n`), reason: /longer than 107/ },
  { name: 'v1 over-long line, no LF yet', input: ascii(`PROXY TCP4 ${'1'.repeat(120)}`), reason: /longer than 107/ },
  { name: 'v1 LF without CR', input: ascii('PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n'), reason: /LF without CR/ },
  { name: 'v1 CR without LF', input: ascii('PROXY TCP4 192.0.2.1\r192.0.2.2 1 2\r\n'), reason: /CR without LF/ },
  { name: 'v1 port out of range', input: ascii('PROXY TCP4 192.0.2.1 192.0.2.2 65536 25\r\n'), reason: /source port out of range/ },
  { name: 'v1 port with leading zero', input: ascii('PROXY TCP4 192.0.2.1 192.0.2.2 025 25\r\n'), reason: /bad source port/ },
  { name: 'v1 port not a number', input: ascii('PROXY TCP4 192.0.2.1 192.0.2.2 1 smtp\r\n'), reason: /bad destination port/ },
  { name: 'v1 negative port', input: ascii('PROXY TCP4 192.0.2.1 192.0.2.2 -1 25\r\n'), reason: /bad source port/ },
  { name: 'v1 IPv6 address under TCP4', input: ascii('PROXY TCP4 2001:db8::1 192.0.2.2 1 2\r\n'), reason: /bad TCP4 source address/ },
  { name: 'v1 IPv4 address under TCP6', input: ascii('PROXY TCP6 2001:db8::1 192.0.2.2 1 2\r\n'), reason: /bad TCP6 destination address/ },
  { name: 'v1 IPv4 octet out of range', input: ascii('PROXY TCP4 192.0.2.256 192.0.2.2 1 2\r\n'), reason: /bad TCP4 source address/ },
  { name: 'v1 IPv4 leading zero', input: ascii('PROXY TCP4 192.0.2.01 192.0.2.2 1 2\r\n'), reason: /bad TCP4 source address/ },
  { name: 'v1 IPv6 zone index', input: ascii('PROXY TCP6 fe80::1%eth0 fe80::2 1 2\r\n'), reason: /bad TCP6 source address/ },
  { name: 'v1 double space', input: ascii('PROXY TCP4 192.0.2.1  192.0.2.2 1 2\r\n'), reason: /field count or spacing/ },
  { name: 'v1 missing field', input: ascii('PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n'), reason: /field count/ },
  { name: 'v1 extra field', input: ascii('PROXY TCP4 192.0.2.1 192.0.2.2 1 2 3\r\n'), reason: /field count/ },
  { name: 'v1 NUL byte', input: ascii('PROXY TCP4 192.0.2.1\x00'), reason: /non-printable/ },
  // UNKNOWN's fields are ignored, not its bytes: the whole line is printable US-ASCII.
  { name: 'v1 UNKNOWN with DEL', input: ascii('PROXY UNKNOWN \x7f\r\n'), reason: /non-printable/ },
  { name: 'v1 UNKNOWN with an 8-bit byte', input: Buffer.from([...ascii('PROXY UNKNOWN '), 0xe9, 0x0d, 0x0a]), reason: /non-printable/ },
  { name: 'v1 CR CR LF', input: ascii('PROXY UNKNOWN\r\r\n'), reason: /CR without LF/ },
  { name: 'v1 CR mid-line before any LF has come', input: ascii('PROXY TCP4 192.0.2.1\r192'), reason: /CR without LF/ },
  { name: 'v2 bad version', input: v2(0x11, 0x11, v4block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), reason: /bad version 1/ },
  { name: 'v2 bad command', input: v2(0x22, 0x11, v4block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), reason: /bad command 2/ },
  { name: 'v2 bad family', input: v2(0x21, 0x41, v4block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), reason: /bad address family 4/ },
  { name: 'v2 bad transport', input: v2(0x21, 0x13, v4block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), reason: /bad transport protocol 3/ },
  { name: 'v2 AF_INET block too short', input: v2(0x21, 0x11, Buffer.alloc(8)), reason: /too short for AF_INET/ },
  { name: 'v2 AF_INET6 block too short', input: v2(0x21, 0x21, Buffer.alloc(12)), reason: /too short for AF_INET6/ },
  { name: 'v2 over-long header', input: v2(0x21, 0x11, Buffer.alloc(217)), reason: /longer than 232/ },
];

describe('parseProxyHeader', () => {
  it.each(GOOD)('$name', ({ input, header, rest }) => {
    const r = parseProxyHeader(input);
    expect(r).not.toBe('incomplete');
    if (r === 'incomplete') return;
    expect(r.header).toEqual(header);
    expect(input.subarray(r.consumed).toString('latin1')).toBe(rest ?? '');
  });

  it.each(BAD)('$name', ({ input, reason }) => {
    expect(() => parseProxyHeader(input)).toThrow(reason);
  });

  it.each(GOOD)('every strict prefix of "$name" is incomplete', ({ input, rest }) => {
    const headerLen = input.length - (rest?.length ?? 0);
    for (let n = 0; n < headerLen; n++) expect(parseProxyHeader(input.subarray(0, n))).toBe('incomplete');
  });

  it('names the failure for a partial bad signature at once', () => {
    expect(() => parseProxyHeader(ascii('PROX!'))).toThrow(/bad signature/);
    expect(() => parseProxyHeader(Buffer.from([0x0d, 0x0a, 0x0d, 0x0b]))).toThrow(/bad signature/);
  });
});

// ---- over a real socket ---------------------------------------------------------------------

let server: Server;
let port: number;
const accepted: Socket[] = [];
const waiters: ((s: Socket) => void)[] = [];

beforeAll(async () => {
  server = createServer((s) => {
    const w = waiters.shift();
    if (w) w(s);
    else accepted.push(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

/** Connect a client and return [client, server-side socket]. */
async function pair(): Promise<[Socket, Socket]> {
  const serverSide = new Promise<Socket>((r) => {
    const s = accepted.shift();
    if (s) r(s);
    else waiters.push(r);
  });
  const client = connect(port, '127.0.0.1');
  await new Promise<void>((r, j) => client.once('connect', r).once('error', j));
  return [client, await serverSide];
}

const listenerCounts = (s: Socket) => ['data', 'end', 'close', 'error'].map((e) => s.listenerCount(e));

/** Read what the server side receives after the header, until `want` bytes arrived (2 s cap). */
function readMore(s: Socket, want: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const t = setTimeout(() => reject(new Error(`only got ${JSON.stringify(got)}`)), 2000);
    s.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      if (got.length >= want) {
        clearTimeout(t);
        resolve(got);
      }
    });
    s.resume();
  });
}

describe('readProxyHeader on a socket', () => {
  // `tail`: what the client sends after the header; the session must see it exactly once,
  // first as `rest` (bytes read together with the header), then from the paused socket.
  const cases: { name: string; chunks: Buffer[]; header?: ProxyHeader; tail?: string; rest?: string; error?: RegExp }[] = [
    {
      name: 'v1 in one write with pipelined SMTP after it',
      chunks: [ascii('PROXY TCP4 192.0.2.9 192.0.2.10 4711 25\r\nEHLO a\r\n'), ascii('QUIT\r\n')],
      header: { command: 'PROXY', version: 1, source: { address: '192.0.2.9', port: 4711 }, destination: { address: '192.0.2.10', port: 25 } },
      rest: 'EHLO a\r\n',
      tail: 'EHLO a\r\nQUIT\r\n',
    },
    {
      name: 'v1 split across chunks (inside the signature and before LF)',
      chunks: [ascii('PRO'), ascii('XY TCP6 2001:db8::9 2001:db8::a 1 2\r'), ascii('\n'), ascii('EHLO b\r\n')],
      header: { command: 'PROXY', version: 1, source: { address: '2001:db8::9', port: 1 }, destination: { address: '2001:db8::a', port: 2 } },
      rest: '',
      tail: 'EHLO b\r\n',
    },
    {
      name: 'v2 split byte by byte, then SMTP',
      chunks: [...v2(0x21, 0x11, v4block([203, 0, 113, 5], [203, 0, 113, 6], 999, 25))].map((b) => Buffer.from([b])).concat([ascii('HELO c\r\n')]),
      header: { command: 'PROXY', version: 2, source: { address: '203.0.113.5', port: 999 }, destination: { address: '203.0.113.6', port: 25 } },
      rest: '',
      tail: 'HELO c\r\n',
    },
    {
      name: 'v2 LOCAL with SMTP in the same write',
      chunks: [Buffer.concat([v2(0x20, 0x00), ascii('NOOP\r\n')])],
      header: { command: 'LOCAL', version: 2 },
      rest: 'NOOP\r\n',
      tail: 'NOOP\r\n',
    },
    { name: 'bad v1 header rejects', chunks: [ascii('PROXY TCP4 192.0.2.1 192.0.2.2 1 99999\r\n')], error: /port out of range/ },
    { name: 'plain SMTP client rejects', chunks: [ascii('EHLO spam\r\n')], error: /bad signature/ },
  ];

  it.each(cases)('$name', async ({ chunks, header, tail, rest, error }) => {
    const [client, sock] = await pair();
    const before = listenerCounts(sock);
    // Observe the outcome at once so an early rejection is never "unhandled".
    const outcome = readProxyHeader(sock, { timeoutMs: 2000 }).then(
      (v) => ({ ok: true as const, v }),
      (e: Error) => ({ ok: false as const, e }),
    );
    try {
      // Each chunk arrives as its own read: the next is written only once the server side has
      // read the ones before (a fixed 5 ms gap let two writes merge on a busy machine).
      let sent = 0;
      let settled = false;
      void outcome.then(() => (settled = true));
      for (const c of chunks) {
        client.write(c);
        sent += c.length;
        for (let i = 0; i < 2000 && sock.bytesRead < sent && !settled; i++) await new Promise((r) => setTimeout(r, 1));
      }
      const r = await outcome;
      if (error) {
        expect(r.ok).toBe(false);
        if (!r.ok) expect(r.e.message).toMatch(error);
        expect(listenerCounts(sock)).toEqual(before);
        return;
      }
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      expect(r.v.header).toEqual(header);
      expect(r.v.rest.toString('latin1')).toBe(rest);
      expect(listenerCounts(sock)).toEqual(before);
      const want = (tail ?? '').length - r.v.rest.length;
      const more = want > 0 ? await readMore(sock, want) : '';
      expect(r.v.rest.toString('latin1') + more).toBe(tail ?? '');
    } finally {
      client.destroy();
      sock.destroy();
    }
  });

  it('leaves the socket paused so input after the header waits for the session', async () => {
    const [client, sock] = await pair();
    client.write(ascii('PROXY UNKNOWN\r\n'));
    const r = await readProxyHeader(sock, { timeoutMs: 2000 });
    expect(r.header.command).toBe('UNKNOWN');
    expect(sock.isPaused()).toBe(true);
    client.write('NOOP\r\n');
    await new Promise((res) => setTimeout(res, 30));
    expect(await readMore(sock, 6)).toBe('NOOP\r\n');
    client.destroy();
    sock.destroy();
  });

  it('rejects on timeout and removes its listeners and timer', async () => {
    const [client, sock] = await pair();
    const before = listenerCounts(sock);
    client.write(ascii('PROXY TCP4 192.0.2.1')); // never finished
    const t0 = Date.now();
    await expect(readProxyHeader(sock, { timeoutMs: 100 })).rejects.toThrow(/within 100 ms/);
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(listenerCounts(sock)).toEqual(before);
    client.destroy();
    sock.destroy();
  });

  it('rejects when the client closes before the header is complete', async () => {
    const [client, sock] = await pair();
    client.end(ascii('PROXY TCP4'));
    await expect(readProxyHeader(sock, { timeoutMs: 2000 })).rejects.toThrow(/closed inside PROXY header/);
    sock.destroy();
  });

  it('rejects at once on an already destroyed socket', async () => {
    const [client, sock] = await pair();
    sock.destroy();
    await expect(readProxyHeader(sock, { timeoutMs: 2000 })).rejects.toThrow(/closed before PROXY header/);
    client.destroy();
  });
});
