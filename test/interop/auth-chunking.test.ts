// Issue 15 against real clients and the built daemon: swaks --auth PLAIN and LOGIN and
// Python's smtplib.login see 535 5.7.8 (each attempt an AUTH verdict in the log); and a real
// Postfix SMTP client (Debian's postfix, run privately by this test in a temp directory:
// its own config, queue and master, an smtpd on a loopback port only to take the message in,
// never the system service) relays through fakemx with DATA while CHUNKING is offered
// (Postfix's client does not send BDAT), and the record says "transfer": "DATA".
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startListening, stored, type Daemon } from '../helpers/daemon.js';

function exec(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 30000, env: { ...process.env, ...(opts.env ?? {}) } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
    });
  });
}

const authLines = (d: Daemon) => d.lines.filter((l) => l.tag === 'AUTH');

let d: Daemon | undefined;
afterEach(() => {
  d?.kill();
  d = undefined;
});

const honeypot = { bannerDelay: 0, errorDelay: 100, hostName: 'mx.interop.test', auth: { enabled: true, allowPlaintext: true, salt: 'interop' } };

describe('AUTH honeypot with real clients', () => {
  it.each(['PLAIN', 'LOGIN'])('swaks --auth %s sees 535 5.7.8; the attempt is logged', async (mech) => {
    d = await startListening(honeypot);
    const r = await exec('swaks', ['--server', `127.0.0.1:${d.port}`, '--helo', 'swaks.test', '--from', 'a@example.org', '--to', 'b@example.com', '--auth', mech, '--auth-user', 'admin@example.com', '--auth-password', 'Winter2024!', '--quit-after', 'AUTH']);
    expect(r.out).toMatch(/<~?\*\* +535 5\.7\.8 Authentication credentials invalid/);
    expect(r.code).not.toBe(0);
    const [a] = authLines(d);
    expect(a).toMatchObject({ mechanism: mech, user: 'admin@example.com', tls: false, passwordFormat: 'sha256' });
    expect(a!.password).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(d.lines)).not.toContain('Winter2024!');
  });

  it("Python's smtplib.login raises SMTPAuthenticationError 535", async () => {
    d = await startListening(honeypot);
    const py = `
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), local_hostname='python.test', timeout=10)
s.ehlo()
print('FEATURES', s.esmtp_features.get('auth'))
try:
    s.login('root', 'toor')
    print('LOGGED IN')
except smtplib.SMTPAuthenticationError as e:
    print('AUTHFAIL', e.smtp_code, e.smtp_error.decode())
s.quit()
`;
    const r = await exec('python3', ['-c', py, String(d.port)]);
    expect(r.out).toMatch(/^FEATURES +PLAIN LOGIN$/m);
    expect(r.out).toMatch(/^AUTHFAIL 535 5\.7\.8 Authentication credentials invalid$/m);
    // smtplib tries each offered mechanism it knows (CRAM-MD5, PLAIN, LOGIN) until one succeeds.
    expect(authLines(d).map((l) => l.mechanism)).toEqual(expect.arrayContaining(['PLAIN']));
    for (const l of authLines(d)) expect(l.user).toBe('root');
  });
});

/** A free loopback port (closed again before Postfix binds it). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

const havePostfix = existsSync('/usr/sbin/postfix') && existsSync('/usr/lib/postfix/sbin/smtp') && process.getuid?.() === 0;

describe.skipIf(!havePostfix)('Postfix SMTP client with CHUNKING offered', () => {
  it('delivers through fakemx with DATA; the record says transfer DATA', async () => {
    d = await startListening({ bannerDelay: 0, hostName: 'mx.interop.test' });
    const ehlo = await exec('swaks', ['--server', `127.0.0.1:${d.port}`, '--quit-after', 'EHLO']);
    expect(ehlo.out).toMatch(/<- {2}250 CHUNKING/);
    const dir = mkdtempSync(join(tmpdir(), 'fakemx-postfix-'));
    const inPort = await freePort();
    for (const sub of ['queue', 'data']) mkdirSync(join(dir, sub));
    chmodSync(dir, 0o755);
    execFileSync('chown', ['postfix', join(dir, 'data')]);
    writeFileSync(
      join(dir, 'main.cf'),
      [
        'compatibility_level = 3.6',
        `queue_directory = ${dir}/queue`,
        `data_directory = ${dir}/data`,
        'mail_owner = postfix',
        'setgid_group = postdrop',
        'myhostname = postfix-client.interop.test',
        'mydomain = interop.test',
        'myorigin = $myhostname',
        'mydestination =',
        'inet_interfaces = 127.0.0.1',
        'inet_protocols = ipv4',
        'mynetworks = 127.0.0.0/8',
        `relayhost = [127.0.0.1]:${d.port}`,
        'smtpd_relay_restrictions = permit_mynetworks, reject',
        'smtp_tls_security_level = none',
        'smtp_address_preference = ipv4',
        'alias_maps =',
        'alias_database =',
        'local_recipient_maps =',
        `maillog_file = ${dir}/maillog`,
        `maillog_file_prefixes = ${dir}`,
        'syslog_name = postfix-fakemx-interop',
        'smtp_connect_timeout = 10s',
        'queue_run_delay = 1s',
        'minimal_backoff_time = 1s',
        'maximal_backoff_time = 2s',
        '',
      ].join('\n'),
    );
    const svc = (name: string, type: string, priv: string, wakeup: string, limit: string, cmd: string) => `${name} ${type} ${priv} - n ${wakeup} ${limit} ${cmd}`;
    writeFileSync(
      join(dir, 'master.cf'),
      [
        // Only to take the test message in, on a loopback port of its own.
        svc(`127.0.0.1:${inPort}`, 'inet', 'n', '-', '-', 'smtpd'),
        svc('pickup', 'unix', 'n', '60', '1', 'pickup'),
        svc('cleanup', 'unix', 'n', '-', '0', 'cleanup'),
        svc('qmgr', 'unix', 'n', '300', '1', 'qmgr'),
        svc('rewrite', 'unix', '-', '-', '-', 'trivial-rewrite'),
        svc('bounce', 'unix', '-', '-', '0', 'bounce'),
        svc('defer', 'unix', '-', '-', '0', 'bounce'),
        svc('trace', 'unix', '-', '-', '0', 'bounce'),
        svc('verify', 'unix', '-', '-', '1', 'verify'),
        svc('flush', 'unix', 'n', '1000?', '0', 'flush'),
        svc('proxymap', 'unix', '-', '-', '-', 'proxymap'),
        svc('smtp', 'unix', '-', '-', '-', 'smtp'),
        svc('relay', 'unix', '-', '-', '-', 'smtp'),
        svc('showq', 'unix', 'n', '-', '-', 'showq'),
        svc('error', 'unix', '-', '-', '-', 'error'),
        svc('retry', 'unix', '-', '-', '-', 'error'),
        svc('discard', 'unix', '-', '-', '-', 'discard'),
        svc('anvil', 'unix', '-', '-', '1', 'anvil'),
        svc('scache', 'unix', '-', '-', '1', 'scache'),
        svc('postlog', 'unix-dgram', 'n', '-', '1', 'postlogd'),
        '',
      ].join('\n'),
    );
    const pf = (args: string[]) => exec('/usr/sbin/postfix', ['-c', dir, ...args]);
    let log = '';
    try {
      const started = await pf(['start']);
      expect(started.code, started.out).toBe(0);
      // Give the message to the private Postfix (its smtpd on the loopback port).
      let r = { code: 1, out: '' };
      for (let i = 0; i < 50 && r.code !== 0; i++) {
        r = await exec('swaks', ['--server', `127.0.0.1:${inPort}`, '--helo', 'submit.test', '--from', 'sender@example.org', '--to', 'rcpt@example.com', '--body', 'relayed by postfix', '--header', 'Subject: via postfix']);
        if (r.code !== 0) await new Promise((res) => setTimeout(res, 200));
      }
      expect(r.code, r.out).toBe(0);
      const deadline = Date.now() + 30_000;
      while (stored(d).length === 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 200));
      log = existsSync(join(dir, 'maillog')) ? readFileSync(join(dir, 'maillog'), 'utf8') : '';
      const [m] = stored(d);
      expect(m, log).toBeDefined();
      expect(m!.meta.transfer).toBe('DATA');
      expect(m!.meta.chunks).toBeUndefined();
      expect(m!.meta.client.helo).toBe('postfix-client.interop.test');
      expect(m!.meta.envelope).toMatchObject({ mailFrom: 'sender@example.org', rcptTo: ['rcpt@example.com'] });
      expect(m!.eml).toContain('relayed by postfix');
      // Postfix logs the delivery as sent, with fakemx's queued-as reply.
      const deadline2 = Date.now() + 5000;
      while (!/status=sent/.test(log) && Date.now() < deadline2) {
        await new Promise((res) => setTimeout(res, 100));
        log = readFileSync(join(dir, 'maillog'), 'utf8');
      }
      expect(log).toMatch(/relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+.*status=sent \(250 2\.0\.0 Ok: queued as [0-9a-z]{17}\)/);
    } finally {
      await pf(['stop']);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
