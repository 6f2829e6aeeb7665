// A private Postfix (Debian `postfix`) used as a client: its own config, queue and data
// directories in a temp dir, no listener (the `smtp inet` service is left out of master.cf), no
// chroot, relayhost pointing at the fakemx under test, short retry backoff. Started and stopped
// by the test with `postfix -c <dir>`; never the system's instance. Postfix logs to <dir>/maillog.
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const run = (cmd: string, args: string[], input?: string): Promise<{ code: number; out: string }> =>
  new Promise((resolve) => {
    const c = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const t = setTimeout(() => c.kill('SIGKILL'), 20_000);
    c.on('close', (code) => {
      clearTimeout(t);
      resolve({ code: code ?? -1, out });
    });
    c.stdin.end(input ?? '');
  });

/** Whether a private Postfix can run here (the binaries, the postfix user, root to start it). */
export function postfixAvailable(): boolean {
  return existsSync('/usr/sbin/postfix') && existsSync('/usr/sbin/sendmail') && process.getuid?.() === 0;
}

export class PrivatePostfix {
  constructor(readonly dir: string) {}

  get conf(): string {
    return join(this.dir, 'conf');
  }

  /** relayhost first, then the fallback relays in order (an MX sandwich without DNS). */
  static async start(dir: string, relays: string[]): Promise<PrivatePostfix> {
    const p = new PrivatePostfix(dir);
    for (const d of ['conf', 'queue', 'data']) mkdirSync(join(dir, d), { recursive: true });
    // Postfix's daemons run as the postfix user: the path down to the queue must be searchable
    // (mkdtemp makes 0700 directories).
    for (let d = dir; d !== dirname(d) && d.startsWith('/tmp/'); d = dirname(d)) chmodSync(d, 0o755);
    const master = readFileSync('/etc/postfix/master.cf', 'utf8')
      .split('\n')
      .flatMap((line) => {
        if (line.trim() === '' || line.startsWith('#') || /^\s/.test(line)) return [line];
        const f = line.split(/\s+/);
        if (f[0] === 'smtp' && f[1] === 'inet') return [];
        if (f.length >= 8) f[4] = 'n';
        return [f.join('  ')];
      })
      .join('\n');
    writeFileSync(join(p.conf, 'master.cf'), master);
    writeFileSync(
      join(p.conf, 'main.cf'),
      [
        'compatibility_level = 3.6',
        `queue_directory = ${dir}/queue`,
        `data_directory = ${dir}/data`,
        'mail_owner = postfix',
        'setgid_group = postdrop',
        'myhostname = client.test',
        'mydomain = client.test',
        'myorigin = client.test',
        'mydestination =',
        'inet_interfaces = loopback-only',
        'inet_protocols = ipv4',
        `relayhost = ${relays[0]}`,
        ...(relays.length > 1 ? [`smtp_fallback_relay = ${relays.slice(1).join(', ')}`] : []),
        'minimal_backoff_time = 2s',
        'maximal_backoff_time = 3s',
        'queue_run_delay = 1s',
        'smtp_tls_security_level = none',
        `maillog_file = ${dir}/maillog`,
        `maillog_file_prefixes = ${dir}`,
        'alias_maps =',
        'alias_database =',
        'biff = no',
        'local_transport = error:local delivery disabled',
        'smtp_connect_timeout = 5s',
        // Bounces would go to the sender's local mailbox: make them visible in the log instead.
        'bounce_queue_lifetime = 0',
        '',
      ].join('\n'),
    );
    chownSync(join(dir, 'data'), uid('postfix'), -1);
    // postfix(1) reports to syslog only; `script` gives it a terminal so errors reach the test.
    const r = await run('script', ['-q', '-c', `postfix -c ${p.conf} start`, '/dev/null']);
    if (!/starting the Postfix mail system/.test(r.out) || /fatal/.test(r.out)) throw new Error(`postfix did not start: ${r.out}\n${p.log()}`);
    return p;
  }

  async send(from: string, to: string, body: string): Promise<void> {
    const r = await run('/usr/sbin/sendmail', ['-C', this.conf, '-f', from, to], body);
    if (r.code !== 0) throw new Error(`sendmail: ${r.out}`);
  }

  log(): string {
    const f = join(this.dir, 'maillog');
    return existsSync(f) ? readFileSync(f, 'utf8') : '';
  }

  /** Messages still queued (active, deferred, incoming), by postqueue. */
  async queued(): Promise<number> {
    const r = await run('/usr/sbin/postqueue', ['-c', this.conf, '-j']);
    return r.out.split('\n').filter((l) => l.startsWith('{')).length;
  }

  async stop(): Promise<void> {
    await run('script', ['-q', '-c', `postfix -c ${this.conf} stop`, '/dev/null']);
  }
}

function uid(user: string): number {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${user}:`));
  if (!line) throw new Error(`no ${user} user`);
  return Number(line.split(':')[2]);
}

