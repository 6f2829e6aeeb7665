// Real clients against the built daemon (`node dist/cli.js run`): swaks (plain and
// --pipeline) and Python's smtplib deliver and are never flagged; under the MX-sandwich
// profile they see a 4xx at DATA, never a 5xx, so a real MTA would retry the real MX.
import { afterEach, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { startListening, stored, type Daemon } from '../helpers/daemon.js';

function exec(cmd: string, args: string[], input?: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const p = execFile(cmd, args, { timeout: 30000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
    });
    if (input !== undefined) p.stdin!.end(input);
  });
}

const verdictTags = (d: Daemon) =>
  d.lines.filter((l) => typeof l.tag === 'string' && ['PREGREET', 'PIPELINING', 'TARPIT', 'LIMIT', 'NONSMTP', 'TIMEOUT'].includes(l.tag)).map((l) => l.tag);

let d: Daemon | undefined;
afterEach(() => {
  d?.kill();
  d = undefined;
});

const guarded = { bannerDelay: 200, doEarlyTalk: true, hostName: 'mx.interop.test' };

describe('swaks', () => {
  it.each([
    ['plain', []],
    ['--pipeline', ['--pipeline']],
  ])('%s: delivered, stored, not flagged', async (_n, extra) => {
    d = await startListening(guarded);
    const r = await exec('swaks', ['--server', `127.0.0.1:${d.port}`, '--helo', 'swaks.test', '--from', 'sender@example.org', '--to', 'rcpt@example.com', '--body', 'hello from swaks', ...extra]);
    expect(r.out).toMatch(/<- {2}250 2\.0\.0 Ok: queued as [0-9a-z]{17}/);
    expect(r.code).toBe(0);
    const [m] = stored(d);
    expect(m!.meta.envelope).toMatchObject({ mailFrom: 'sender@example.org', rcptTo: ['rcpt@example.com'] });
    expect(m!.eml).toContain('hello from swaks');
    expect(m!.eml).toMatch(/^Received: from swaks\.test \(\[127\.0\.0\.1\]\)/);
    expect(verdictTags(d)).toEqual([]);
  });

  it('MX sandwich profile: 421 4.3.2 at DATA, never a 5xx', async () => {
    d = await startListening({ ...guarded, storeData: false, doTempFail: true, errorDelay: 50 });
    const r = await exec('swaks', ['--server', `127.0.0.1:${d.port}`, '--from', 'sender@example.org', '--to', 'rcpt@example.com', '--pipeline']);
    expect(r.out).toMatch(/<\*\* 421 4\.3\.2 Service temporarily unavailable/);
    expect(r.out).not.toMatch(/<\*+ +5\d\d/);
    expect(r.code).not.toBe(0);
    expect(stored(d)).toEqual([]);
    expect(d.lines.some((l) => l.tag === 'TEMPFAIL')).toBe(true);
  });

  it('corpus profile: stored, then 421 after the final dot', async () => {
    d = await startListening({ ...guarded, storeData: true, doTempFail: true });
    const r = await exec('swaks', ['--server', `127.0.0.1:${d.port}`, '--from', 'spammer@example.net', '--to', 'victim@example.com', '--body', 'buy now']);
    expect(r.out).toMatch(/<\*\* 421 4\.3\.2/);
    const [m] = stored(d);
    expect(m!.meta.tempfailed).toBe(true);
    expect(m!.eml).toContain('buy now');
  });
});

const PY = `
import smtplib, sys
from email.message import EmailMessage
port = int(sys.argv[1]); mode = sys.argv[2]
s = smtplib.SMTP('127.0.0.1', port, local_hostname='python.test', timeout=10)
if mode == 'helo':
    s.helo('python.test')
    r = s.sendmail('a@example.org', ['b@example.com'], b'Subject: helo\\r\\n\\r\\nvia HELO\\r\\n.dot line\\r\\n')
elif mode.startswith('utf8'):
    s.ehlo()
    msg = EmailMessage(); msg['From'] = 'a@example.org'; msg['To'] = 'δοκιμή@παράδειγμα.δοκιμή'; msg['Subject'] = 'utf8'; msg.set_content('ünïcode')
    # send_message adds SMTPUTF8 and BODY=8BITMIME itself; a caller who also asks for SMTPUTF8
    # makes it say SMTPUTF8 twice.
    r = s.send_message(msg, mail_options=['SMTPUTF8'] if mode == 'utf8-asked' else [])
else:
    s.ehlo()
    msg = EmailMessage(); msg['From'] = 'a@example.org'; msg['To'] = 'b@example.com, c@example.com'; msg['Subject'] = 'hi'; msg.set_content('hello from python')
    r = s.send_message(msg)
code, text = s.noop()
s.quit()
print('OK', r, code)
`;

describe("Python's smtplib", () => {
  it.each(['ehlo', 'helo', 'utf8', 'utf8-asked'])('%s: delivered and not flagged', async (mode) => {
    d = await startListening(guarded);
    const r = await exec('python3', ['-c', PY, String(d.port), mode]);
    expect(r.out).toMatch(/^OK \{\} 250/m);
    const [m] = stored(d);
    expect(m).toBeDefined();
    if (mode === 'helo') {
      expect(m!.meta.client.esmtp).toBe(false);
      expect(m!.eml).toContain('\r\n.dot line\r\n');
      expect(m!.eml).toMatch(/with SMTP id/);
    }
    if (mode.startsWith('utf8')) {
      expect(m!.meta.envelope.smtputf8).toBe(true);
      expect(m!.meta.envelope.rcptTo).toEqual(['δοκιμή@παράδειγμα.δοκιμή']);
      expect(m!.eml).toMatch(/with UTF8SMTP id/);
    }
    expect(verdictTags(d)).toEqual([]);
  });
});
