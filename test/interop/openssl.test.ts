// openssl s_client against the built daemon: STARTTLS on a plain listener (RFC 3207) and
// implicit TLS (RFC 8314), with a certificate made by the openssl CLI at test time.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startListening, type Daemon } from '../helpers/daemon.js';

const dir = mkdtempSync(join(tmpdir(), 'fakemx-openssl-'));
const cert = join(dir, 'cert.pem');
const key = join(dir, 'key.pem');
beforeAll(() => {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=mx.interop.test', '-addext', 'subjectAltName=DNS:mx.interop.test,IP:127.0.0.1'], { stdio: 'ignore' });
});

let d: Daemon | undefined;
afterEach(() => {
  d?.kill();
  d = undefined;
});

/** Runs s_client, writes the SMTP lines slowly (one per reply), returns its transcript. */
function sClient(args: string[], lines: string[], starttls = false): Promise<string> {
  return new Promise((resolve) => {
    const p = spawn('openssl', ['s_client', ...args, '-servername', 'mx.interop.test', '-crlf', '-ign_eof'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let i = 0;
    const kill = setTimeout(() => p.kill(), 15000);
    p.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      // After each new final reply line, send the next command. With -starttls, s_client
      // has consumed the greeting and its own EHLO: start once the handshake summary is out.
      if (starttls && !out.includes('Verify return code')) return;
      const finals = (out.match(/^\d{3} .*$/gm)?.length ?? 0) + (starttls ? 1 : 0);
      while (i < lines.length && finals > i) p.stdin.write(lines[i++] + '\n');
    });
    p.stderr.on('data', () => undefined);
    p.on('exit', () => {
      clearTimeout(kill);
      resolve(out);
    });
  });
}

describe('openssl s_client', () => {
  it('-starttls smtp: handshake, then a fresh EHLO without STARTTLS, and delivery', async () => {
    d = await startListening({ bannerDelay: 0, hostName: 'mx.interop.test', tls: { cert, key } });
    const out = await sClient(['-connect', `127.0.0.1:${d.port}`, '-starttls', 'smtp'], ['EHLO openssl.test', 'MAIL FROM:<a@example.org>', 'RCPT TO:<b@example.com>', 'DATA', 'Subject: tls\r\n\r\nvia openssl\r\n.', 'QUIT'], true);
    expect(out).toMatch(/Protocol\s*: TLSv1\.[23]|New, TLSv1\.[23]/);
    expect(out).toMatch(/^250-mx\.interop\.test Hello openssl\.test/m);
    const ehlo = out.slice(out.indexOf('250-mx.interop.test Hello openssl.test'));
    expect(ehlo.slice(0, ehlo.indexOf('\n250 '))).not.toContain('STARTTLS');
    expect(out).toMatch(/^250 2\.0\.0 Ok: queued as/m);
    expect(out).toMatch(/^221 2\.0\.0/m);
    const tls = d.lines.find((l) => l.tag === 'TLS');
    expect(tls).toMatchObject({ servername: 'mx.interop.test' });
    expect(String(tls!.protocol)).toMatch(/^TLSv1\.[23]$/);
  });

  it('implicit TLS listener: the greeting comes inside TLS', async () => {
    d = await startListening({ bannerDelay: 0, hostName: 'mx.interop.test', tls: { cert, key }, listeners: [{ address: '127.0.0.1', port: 0, tls: 'implicit' }] });
    const out = await sClient(['-connect', `127.0.0.1:${d.port}`], ['EHLO openssl.test', 'QUIT']);
    expect(out).toMatch(/^220 mx\.interop\.test ESMTP/m);
    expect(out).toMatch(/^221 2\.0\.0/m);
  });

  it('TLSv1.1 is refused with the default tls.minVersion', async () => {
    d = await startListening({ bannerDelay: 0, tls: { cert, key }, listeners: [{ address: '127.0.0.1', port: 0, tls: 'implicit' }] });
    const out = await sClient(['-connect', `127.0.0.1:${d.port}`, '-tls1_1'], ['QUIT']);
    expect(out).not.toMatch(/^220 /m);
    const failed = await d.waitFor('TLS_FAILED', 3000).catch(() => null);
    expect(failed).not.toBeNull();
  });
});
