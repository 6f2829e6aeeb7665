// TLS and listeners end to end: STARTTLS (RFC 3207) with nodemailer and raw sockets,
// the command-injection case, handshake failure and timeout, implicit TLS (RFC 8314),
// several listeners with their own profiles, IPv6 loopback, and the PROXY protocol.
// Certificates are generated at test time; no private key is committed.
import { afterAll, beforeAll, afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import nodemailer from 'nodemailer';
import selfsigned from 'selfsigned';
import { RawClient, greeted, sessionWaitsForClientClose } from './helpers/client.js';
import { FAST, startServer, type TestServer } from './helpers/server.js';
import type { VerdictEvent } from '../src/events.js';
import { ConfigError, loadConfig } from '../src/config/load.js';

let certFile = '';
let keyFile = '';
beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fakemx-tls-'));
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'mx.test' }], {
    keySize: 2048,
    notAfterDate: new Date(Date.now() + 2 * 24 * 3600 * 1000),
    algorithm: 'sha256',
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'mx.test' }, { type: 7, ip: '127.0.0.1' }] }],
  });
  certFile = join(dir, 'cert.pem');
  keyFile = join(dir, 'key.pem');
  writeFileSync(certFile, pems.cert);
  writeFileSync(keyFile, pems.private);
});

let srv: TestServer | undefined;
afterEach(async () => {
  await srv?.close();
  srv = undefined;
});
const tls = () => ({ tls: { cert: certFile, key: keyFile, handshakeTimeout: 400 } });

/** Upgrade a RawClient's socket after "220 Ready to start TLS". */
function upgrade(c: RawClient): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ socket: c.socket, rejectUnauthorized: false, servername: 'mx.test' }, () => resolve(new RawClient(s)));
    s.once('error', reject);
  });
}

describe('reload (SIGHUP) and listeners', () => {
  const cfgFor = (listeners: unknown[], hostName = 'after.test') =>
    loadConfig({ env: {}, overrides: { ...FAST, storePath: srv!.store, hostName, ...tls(), listeners } });
  const freePort = async () => {
    const s = createNetServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    return port;
  };

  it('a change of TLS mode on the same port re-binds it; a session open on the old socket finishes', async () => {
    srv = await startServer({ ...tls(), listeners: [{ address: '127.0.0.1', port: 0, name: 'mx' }] });
    const port = srv.port;
    const old = await greeted(port);
    await srv.server.reload(cfgFor([{ address: '127.0.0.1', port, name: 'mx', tls: 'implicit' }]));
    // The old session carries on in clear on its socket.
    expect((await old.cmd('NOOP')).code).toBe(250);
    old.close();
    // New connections get TLS from the first byte.
    const t = await new Promise<RawClient>((resolve, reject) => {
      const sock = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, servername: 'mx.test' }, () => resolve(new RawClient(sock)));
      sock.once('error', reject);
    });
    expect((await t.reply()).text).toMatch(/^after\.test /);
    t.close();
  });

  it('a reload that fails binds nothing of the new file, changes nothing, and the next one succeeds', async () => {
    srv = await startServer({ listeners: [{ address: '127.0.0.1', port: 0, name: 'a' }], hostName: 'before.test' });
    const a = srv.port;
    const fresh = await freePort();
    const blocker = createNetServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const taken = (blocker.address() as AddressInfo).port;
    try {
      const bad = cfgFor([{ address: '127.0.0.1', port: a, name: 'a' }, { address: '127.0.0.1', port: fresh, name: 'new' }, { address: '127.0.0.1', port: taken, name: 'clash' }]);
      await expect(srv.server.reload(bad)).rejects.toThrow(/EADDRINUSE/);
      // Nothing of the refused file: its first new listener is gone again, the old one unchanged.
      await expect(RawClient.connect(fresh)).rejects.toThrow(/ECONNREFUSED/);
      const c = await RawClient.connect(a);
      expect((await c.reply()).text).toMatch(/^before\.test /);
      c.close();
      expect(srv.server.listening.map((l) => l.name)).toEqual(['a']);
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
    // The file fixed: the port the failed attempt had bound is free for it.
    await srv.server.reload(cfgFor([{ address: '127.0.0.1', port: a, name: 'a' }, { address: '127.0.0.1', port: fresh, name: 'new' }]));
    const n = await RawClient.connect(fresh);
    expect((await n.reply()).text).toMatch(/^after\.test /);
    n.close();
  });

  it('a PROXY setting changes in place, without a new bind', async () => {
    srv = await startServer({ listeners: [{ address: '127.0.0.1', port: 0, name: 'p', proxyProtocol: { trusted: ['127.0.0.1/32'], timeout: 5000 } }] });
    const port = srv.port;
    await srv.server.reload(cfgFor([{ address: '127.0.0.1', port, name: 'p', proxyProtocol: { trusted: ['127.0.0.1/32'], timeout: 3000 } }]));
    const c = await RawClient.connect(port);
    c.send('PROXY TCP4 192.0.2.5 192.0.2.6 4000 25\r\n');
    expect((await c.reply()).text).toMatch(/^after\.test /);
    c.close();
  });
});

describe('a tls.* setting that cannot be used is named, not pinned on tls.cert', () => {
  const junk = () => {
    const f = join(mkdtempSync(join(tmpdir(), 'fakemx-tls-bad-')), 'junk.pem');
    writeFileSync(f, 'not a PEM file\n');
    return f;
  };
  it.each([
    ['tls.ca: no such file', () => ({ ca: '/nonexistent/ca.pem' }), 'tls.ca', /cannot read \/nonexistent\/ca\.pem: ENOENT/],
    ['tls.ca: not a CA bundle', () => ({ ca: junk() }), 'tls.ca', /cannot use the CA bundle/],
    ['tls.ciphers: nothing OpenSSL knows', () => ({ ciphers: 'NOPE-NOPE' }), 'tls.ciphers', /cannot use the cipher list: .*no cipher match/],
    ['tls.key: no such file', () => ({ key: '/nonexistent/key.pem' }), 'tls.key', /cannot read \/nonexistent\/key\.pem: ENOENT/],
    ['tls.cert: not a certificate', () => ({ cert: junk() }), 'tls.cert', /cannot use the certificate\/key/],
  ] as const)('%s', (_n, bad, key, reason) => {
    let e: unknown;
    try {
      loadConfig({ env: {}, overrides: { tls: { cert: certFile, key: keyFile, ...bad() } } });
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).key).toBe(key);
    expect((e as ConfigError).reason).toMatch(reason);
  });
});

describe('STARTTLS', () => {
  it('is advertised with a certificate, and not after TLS is up', async () => {
    srv = await startServer(tls());
    const c = await RawClient.connect(srv.port);
    await c.reply();
    expect((await c.cmd('EHLO a.test')).lines.map((l) => l.slice(4))).toContain('STARTTLS');
    expect((await c.cmd('STARTTLS')).raw).toBe('220 2.0.0 Ready to start TLS\r\n');
    const t = await upgrade(c);
    const e = await t.cmd('EHLO a.test');
    expect(e.text).not.toContain('STARTTLS');
    expect((await t.cmd('STARTTLS')).code).toBe(503);
    t.close();
  });

  it('STARTTLS inside a mail transaction is 503; after RSET it goes ahead', async () => {
    srv = await startServer(tls());
    const c = await greeted(srv.port);
    await c.cmd('MAIL FROM:<a@example.org>');
    expect((await c.cmd('STARTTLS')).raw).toBe('503 5.5.1 Error: MAIL transaction in progress\r\n');
    await c.cmd('RSET');
    expect((await c.cmd('STARTTLS')).code).toBe(220);
    c.close();
  });

  it('HELP lists the extension commands the session takes now: STARTTLS, AUTH, BDAT as EHLO offers them', async () => {
    srv = await startServer({ ...tls(), chunking: true, auth: { enabled: true } });
    const c = await RawClient.connect(srv.port);
    await c.reply();
    await c.cmd('EHLO a.test');
    // AUTH only after TLS (auth.allowPlaintext is off).
    expect((await c.cmd('HELP')).lines[0]).toBe('214-2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY EXPN HELP STARTTLS BDAT');
    await c.cmd('STARTTLS');
    const t = await upgrade(c);
    await t.cmd('EHLO a.test');
    expect((await t.cmd('HELP')).lines[0]).toBe('214-2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY EXPN HELP AUTH BDAT');
    t.close();
  });

  it('is not advertised without a certificate', async () => {
    srv = await startServer();
    const c = await greeted(srv.port);
    expect((await c.cmd('EHLO a.test')).text).not.toContain('STARTTLS');
    c.close();
  });

  it('STARTTLS with an argument is 501', async () => {
    srv = await startServer(tls());
    const c = await greeted(srv.port);
    expect((await c.cmd('STARTTLS now')).code).toBe(501);
    c.close();
  });

  it('injection: commands pipelined after STARTTLS in plaintext are discarded', async () => {
    srv = await startServer(tls());
    const cmds: string[] = [];
    srv.server.on('command', (_s, l) => cmds.push(l));
    const c = await greeted(srv.port);
    c.send('STARTTLS\r\nRSET\r\nMAIL FROM:<evil@example.org>\r\n');
    expect((await c.reply()).code).toBe(220);
    const t = await upgrade(c);
    // Nothing may answer the injected RSET/MAIL; HELO state is gone (§4.2).
    await new Promise((r) => setTimeout(r, 100));
    expect(t.pending).toBe('');
    expect((await t.cmd('MAIL FROM:<a@example.org>')).code).toBe(503);
    expect(cmds).not.toContain('RSET');
    t.close();
  });

  it('nodemailer with requireTLS: stored with TLS facts and "with ESMTPS"', async () => {
    srv = await startServer(tls());
    const tr = nodemailer.createTransport({ host: '127.0.0.1', port: srv.port, requireTLS: true, tls: { rejectUnauthorized: false, servername: 'mx.test' }, name: 'tls.test' });
    const info = await tr.sendMail({ from: 'a@example.org', to: 'b@example.com', subject: 'tls', text: 'secret' });
    tr.close();
    expect(info.response).toMatch(/^250 /);
    const [m] = srv.messages();
    expect(m!.meta.tls).toMatchObject({ protocol: expect.stringMatching(/^TLSv1\.[23]$/) as unknown, servername: 'mx.test' });
    expect(m!.eml.toString()).toMatch(/with ESMTPS id/);
  });

  it('a handshake that never comes: closed after tls.handshakeTimeout, TLS_FAILED, server fine', async () => {
    srv = await startServer(tls());
    const v: VerdictEvent[] = [];
    srv.server.on('verdict', (e) => v.push(e));
    const c = await greeted(srv.port);
    expect((await c.cmd('STARTTLS')).code).toBe(220);
    expect(await c.waitClose(2000)).toBe(true);
    expect(v.map((x) => x.tag)).toEqual(['TLS_FAILED']);
    const ok = await greeted(srv.port);
    expect((await ok.cmd('NOOP')).code).toBe(250);
    ok.close();
  });

  it('garbage instead of a ClientHello: closed, TLS_FAILED', async () => {
    srv = await startServer(tls());
    const v: VerdictEvent[] = [];
    srv.server.on('verdict', (e) => v.push(e));
    const c = await greeted(srv.port);
    expect((await c.cmd('STARTTLS')).code).toBe(220);
    c.send('this is not TLS at all\r\n'.repeat(20));
    expect(await c.waitClose(2000)).toBe(true);
    expect(v.map((x) => x.tag)).toEqual(['TLS_FAILED']);
    // OpenSSL's reason, one short line (not its multi-line error string with a source path).
    expect(v[0]!.details.reason).toMatch(/^[a-z][a-z ]+$/);
  });
});

describe('implicit TLS (RFC 8314)', () => {
  it('nodemailer secure: true delivers; the greeting comes after the handshake', async () => {
    srv = await startServer({ ...tls(), listeners: [{ address: '127.0.0.1', port: 0, tls: 'implicit' }] });
    const tr = nodemailer.createTransport({ host: '127.0.0.1', port: srv.port, secure: true, tls: { rejectUnauthorized: false } });
    const info = await tr.sendMail({ from: 'a@example.org', to: 'b@example.com', subject: 'x', text: 'y' });
    tr.close();
    expect(info.response).toMatch(/^250 /);
    expect(srv.messages()[0]!.meta.tls?.protocol).toMatch(/^TLSv1/);
  });

  it('STARTTLS on the implicit-TLS port is 503 (TLS already active), as after an upgrade', async () => {
    srv = await startServer({ ...tls(), listeners: [{ address: '127.0.0.1', port: 0, tls: 'implicit' }] });
    const t = await new Promise<RawClient>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port: srv!.port, rejectUnauthorized: false, servername: 'mx.test' }, () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
    expect((await t.reply()).code).toBe(220);
    await t.cmd('EHLO a.test');
    expect((await t.cmd('STARTTLS')).raw).toBe('503 5.5.1 Error: TLS already active\r\n');
    t.close();
  });

  // After QUIT a plain socket is closed at once; a TLS session ends with end(), so its
  // close_notify goes out and the session waits for the client's side (session.ts closeSoon).
  it('after QUIT the session waits for a half-open TLS client to close its side', async () => {
    srv = await startServer({ ...tls(), listeners: [{ address: '127.0.0.1', port: 0, tls: 'implicit' }] });
    const s = srv;
    let goneAt = 0;
    s.server.once('disconnect', () => (goneAt = Date.now()));
    // allowHalfOpen reaches the TLSSocket's own net.Socket; @types/node leaves it out of ConnectionOptions.
    const opts: ConnectionOptions & { allowHalfOpen: boolean } = { host: '127.0.0.1', port: s.port, rejectUnauthorized: false, servername: 'mx.test', allowHalfOpen: true };
    const t = tlsConnect(opts);
    t.on('error', () => {});
    let text = '';
    const ended = new Promise<void>((r) => t.once('end', r));
    t.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (/^220 [^\n]*\r\n$/.test(text)) t.write('HELO a.test\r\n');
      else if (/\r\n250 [^\n]*\r\n$/.test(text)) t.write('QUIT\r\n');
    });
    await Promise.race([ended, new Promise((r) => setTimeout(r, 3000))]);
    expect(text).toMatch(/\r\n221 2\.0\.0 [^\n]*\r\n$/);
    expect(await sessionWaitsForClientClose(t, () => goneAt)).toEqual({ heldWhileOpen: true, goneAfterClose: true });
  });

  it('a plaintext client on the implicit port is closed; the server carries on', async () => {
    srv = await startServer({ ...tls(), listeners: [{ address: '127.0.0.1', port: 0, tls: 'implicit' }] });
    const outcomes: string[] = [];
    srv.server.on('connection', (e) => outcomes.push(e.outcome));
    const v: VerdictEvent[] = [];
    srv.server.on('verdict', (e) => v.push(e));
    const c = await RawClient.connect(srv.port);
    c.send('EHLO plain.test\r\n');
    expect(await c.waitClose(2000)).toBe(true);
    expect(outcomes).toEqual(['tls_failed']);
    // OpenSSL's reason in one line, not "…:error:0A00010B:SSL routines:…:ssl3_record.c:350:\n".
    expect(v.map((x) => [x.tag, x.details.reason])).toEqual([['TLS_FAILED', 'wrong version number']]);
    const s = tlsConnect({ port: srv.port, host: '127.0.0.1', rejectUnauthorized: false });
    const t = await new Promise<RawClient>((r) => s.once('secureConnect', () => r(new RawClient(s))));
    expect((await t.reply()).code).toBe(220);
    t.close();
  });
  it('a client that sends its FIN before the handshake is let go at once, not after tls.handshakeTimeout', async () => {
    srv = await startServer({ ...tls(), tls: { ...tls().tls, handshakeTimeout: 10_000 }, listeners: [{ address: '127.0.0.1', port: 0, tls: 'implicit' }] });
    const outcomes: string[] = [];
    srv.server.on('connection', (e) => outcomes.push(e.outcome));
    const sock = netConnect({ host: '127.0.0.1', port: srv.port, allowHalfOpen: true });
    sock.on('error', () => {});
    await new Promise((r) => sock.once('connect', r));
    const t0 = Date.now();
    const closed = new Promise<boolean>((r) => {
      sock.once('end', () => r(true));
      setTimeout(() => r(false), 3000);
    });
    sock.end();
    expect(await closed).toBe(true);
    expect(Date.now() - t0).toBeLessThan(2000);
    sock.destroy();
    const until = Date.now() + 2000;
    while (outcomes.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    expect(outcomes).toEqual(['tls_failed']);
  });

  it('a client that connects and never starts the handshake is closed after tls.handshakeTimeout', async () => {
    srv = await startServer({ ...tls(), tls: { ...tls().tls, handshakeTimeout: 300 }, listeners: [{ address: '127.0.0.1', port: 0, tls: 'implicit' }] });
    const outcomes: string[] = [];
    srv.server.on('connection', (e) => outcomes.push(e.outcome));
    const c = await RawClient.connect(srv.port);
    const t0 = Date.now();
    // Node reports the stalled handshake; the socket must not stay open after it.
    expect(await c.waitClose(3000)).toBe(true);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(outcomes).toEqual(['tls_failed']);
  });
});

// Before a session there is no maxSessions: a TLS handshake or a PROXY header is waited for
// first. Idle connections to such a listener are held to 3 x maxSessions (Node closes one more
// at accept, LIMIT maxConnections), not one descriptor each until the process runs out.
describe('connections waiting for a handshake or a PROXY header are bounded', () => {
  const cases: [name: string, config: () => Record<string, unknown>][] = [
    ['implicit TLS', () => ({ ...tls(), tls: { ...tls().tls, handshakeTimeout: 1500 }, listeners: [{ address: '127.0.0.1', port: 0, tls: 'implicit' }] })],
    ['PROXY protocol', () => ({ listeners: [{ address: '127.0.0.1', port: 0, proxyProtocol: { trusted: ['127.0.0.0/8'], timeout: 1500 } }] })],
  ];
  it.each(cases)('%s: 10 idle connections with maxSessions 2: 6 held, 4 closed at once', async (_name, config) => {
    srv = await startServer({ ...config(), maxSessions: 2 });
    const v: VerdictEvent[] = [];
    srv.server.on('verdict', (e) => v.push(e));
    const port = srv.server.listening[0]!.port;
    const socks: Socket[] = [];
    let closed = 0;
    for (let i = 0; i < 10; i++) {
      const s = netConnect(port, '127.0.0.1');
      s.on('error', () => undefined);
      s.on('close', () => closed++);
      socks.push(s);
      await new Promise((r) => s.once('connect', r));
    }
    const end = Date.now() + 2000;
    while (closed < 4 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 100));
    expect(closed).toBe(4);
    expect(v.filter((e) => e.tag === 'LIMIT').map((e) => e.details.limit)).toEqual(Array<string>(4).fill('maxConnections'));
    for (const s of socks) s.destroy();
  });
});

describe('listeners and profiles', () => {
  it('two listeners, two profiles, one process: MX sandwich and capture port', async () => {
    srv = await startServer({
      listeners: [
        { address: '127.0.0.1', port: 0, name: 'mx', profile: { doTempFail: true, storeData: false } },
        { address: '127.0.0.1', port: 0, name: 'capture', profile: { storeData: true, hostName: 'capture.test' } },
      ],
    });
    const [mx, cap] = srv.server.listening;
    expect(mx!.name).toBe('mx');
    const a = await greeted(mx!.port);
    await a.cmd('MAIL FROM:<a@example.org>');
    await a.cmd('RCPT TO:<b@example.com>');
    expect((await a.cmd('DATA')).code).toBe(421);
    const b = await RawClient.connect(cap!.port);
    expect((await b.reply()).text).toMatch(/^capture\.test /);
    await b.cmd('EHLO c.test');
    await b.cmd('MAIL FROM:<a@example.org>');
    await b.cmd('RCPT TO:<b@example.com>');
    await b.cmd('DATA');
    expect((await b.cmd('hi\r\n.')).code).toBe(250);
    expect(srv.messages().map((m) => m.meta.listener)).toEqual(['capture']);
    a.close();
    b.close();
  });

  it('IPv6 loopback session', async () => {
    srv = await startServer({ listeners: [{ address: '::1', port: 0 }] });
    const c = await RawClient.connect(srv.server.listening[0]!.port, { host: '::1' });
    await c.reply();
    await c.cmd('EHLO v6.test');
    await c.cmd('MAIL FROM:<a@example.org>');
    await c.cmd('RCPT TO:<b@example.com>');
    await c.cmd('DATA');
    expect((await c.cmd('x\r\n.')).code).toBe(250);
    const [m] = srv.messages();
    expect(m!.meta.client.ip).toBe('::1');
    expect(m!.eml.toString()).toContain('([IPv6:::1])');
    // The listener's name (logs, metric labels, the record) brackets the address, as for clients.
    const port = srv.server.listening[0]!.port;
    expect([srv.server.listening[0]!.name, m!.meta.listener]).toEqual([`[::1]:${port}`, `[::1]:${port}`]);
    c.close();
  });

  it('dual stack "::": an IPv4 client is seen as a.b.c.d, never ::ffff:a.b.c.d', async () => {
    srv = await startServer({ listeners: [{ address: '::', port: 0 }] });
    const ips: string[] = [];
    srv.server.on('connect', (s) => ips.push(s.remoteAddress));
    const c = await greeted(srv.server.listening[0]!.port);
    expect(ips).toEqual(['127.0.0.1']);
    c.close();
  });
});

describe('PROXY protocol', () => {
  const proxied = (trusted = ['127.0.0.0/8']) => ({ listeners: [{ address: '127.0.0.1', port: 0, proxyProtocol: { trusted, timeout: 300 } }] });
  const raw = (port: number) => new Promise<Socket>((r) => {
    const s = netConnect(port, '127.0.0.1', () => r(s));
    s.on('error', () => undefined);
  });

  it('v1 from a trusted peer: the header source is the client everywhere', async () => {
    srv = await startServer(proxied());
    const s = await raw(srv.server.listening[0]!.port);
    const c = new RawClient(s);
    c.send('PROXY TCP4 203.0.113.7 192.0.2.1 40000 25\r\n');
    expect((await c.reply()).code).toBe(220);
    expect((await c.cmd('EHLO behind.test')).code).toBe(250);
    await c.cmd('MAIL FROM:<a@example.org>');
    await c.cmd('RCPT TO:<b@example.com>');
    await c.cmd('DATA');
    expect((await c.cmd('x\r\n.')).code).toBe(250);
    const [m] = srv.messages();
    expect(m!.meta.client).toMatchObject({ ip: '203.0.113.7', port: 40000 });
    expect(m!.eml.toString()).toContain('X-FakeMX-Client: 203.0.113.7:40000');
    c.close();
  });

  it('bytes after the header are the client\'s: EHLO in the same write is a pregreet', async () => {
    srv = await startServer({ ...proxied(), bannerDelay: 200 });
    const v: VerdictEvent[] = [];
    srv.server.on('verdict', (e) => v.push(e));
    const c = new RawClient(await raw(srv.server.listening[0]!.port));
    c.send('PROXY TCP6 2001:db8::5 2001:db8::1 40000 25\r\nEHLO early.test\r\n');
    expect((await c.reply()).code).toBe(554);
    expect(v.map((x) => [x.tag, x.session?.remoteAddress, x.details.sample])).toEqual([['PREGREET', '2001:db8::5', 'EHLO early.test\\r\\n']]);
    c.close();
  });

  it('v2 LOCAL keeps the peer address', async () => {
    srv = await startServer(proxied());
    const s = await raw(srv.server.listening[0]!.port);
    const c = new RawClient(s);
    const ips: string[] = [];
    srv.server.on('connect', (x) => ips.push(x.remoteAddress));
    c.send(Buffer.concat([Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x20, 0x00, 0x00, 0x00])]));
    expect((await c.reply()).code).toBe(220);
    expect(ips).toEqual(['127.0.0.1']);
    c.close();
  });

  it.each([
    ['untrusted peer', ['10.0.0.0/8'], 'PROXY TCP4 203.0.113.7 192.0.2.1 40000 25\r\n'],
    ['no header at all', undefined, 'EHLO direct.test\r\n'],
    ['malformed header', undefined, 'PROXY TCP4 203.0.113.7 192.0.2.1 99999 25\r\n'],
    ['header never completes (timeout)', undefined, 'PROXY TCP4 203.0'],
  ])('%s: closed, PROXY_INVALID', async (_n, trusted, bytes) => {
    srv = await startServer(proxied(trusted));
    const outcomes: string[] = [];
    srv.server.on('connection', (e) => outcomes.push(e.outcome));
    const s = await raw(srv.server.listening[0]!.port);
    const c = new RawClient(s);
    c.send(bytes);
    expect(await c.waitClose(2000)).toBe(true);
    expect(c.pending).toBe('');
    expect(outcomes).toEqual(['proxy_invalid']);
  });
});

afterAll(() => undefined);
