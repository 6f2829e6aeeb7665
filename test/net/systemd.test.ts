// systemd glue: LISTEN_* parsing (sd_listen_fds(3) rules) and sd_notify through a stand-in
// `systemd-notify` placed first on PATH, so the exact arguments, the no-op without
// NOTIFY_SOCKET, the missing-tool fallback and the 2 s bound are checked without systemd.
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { listenFds, notifyReady, notifyReloading, notifyStopping, setNotifyDebug } from '../../src/net/systemd.js';

const VARS = ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES', 'NOTIFY_SOCKET', 'FAKE_NOTIFY_OUT', 'FAKE_NOTIFY_SLEEP'] as const;
const saved: Record<string, string | undefined> = {};
const savedPath = process.env.PATH;
let bin: string;

beforeAll(() => {
  for (const v of VARS) saved[v] = process.env[v];
  bin = mkdtempSync(join(tmpdir(), 'fakemx-notify-'));
  // Records its argv (one per line) and whether it inherited LISTEN_FDS.
  writeFileSync(
    join(bin, 'systemd-notify'),
    '#!/bin/sh\n[ -n "$FAKE_NOTIFY_SLEEP" ] && exec sleep "$FAKE_NOTIFY_SLEEP"\n{ printf "%s\\n" "$@"; echo "inherited=${LISTEN_FDS:-none}"; } > "$FAKE_NOTIFY_OUT"\n',
  );
  chmodSync(join(bin, 'systemd-notify'), 0o755);
});
afterEach(() => {
  for (const v of VARS) {
    if (saved[v] === undefined) delete process.env[v];
    else process.env[v] = saved[v];
  }
  process.env.PATH = savedPath;
  setNotifyDebug(null);
});
afterAll(() => rmSync(bin, { recursive: true, force: true }));

describe('listenFds', () => {
  const me = String(process.pid);
  const cases: { name: string; env: Partial<Record<'LISTEN_PID' | 'LISTEN_FDS' | 'LISTEN_FDNAMES', string>>; want: { fd: number; name: string }[] | null }[] = [
    { name: 'nothing set', env: {}, want: null },
    { name: 'LISTEN_PID of another process', env: { LISTEN_PID: String(process.pid + 1), LISTEN_FDS: '1' }, want: null },
    { name: 'LISTEN_PID not a number', env: { LISTEN_PID: `${me}x`, LISTEN_FDS: '1' }, want: null },
    { name: 'LISTEN_FDS missing', env: { LISTEN_PID: me }, want: null },
    { name: 'LISTEN_FDS zero', env: { LISTEN_PID: me, LISTEN_FDS: '0' }, want: null },
    { name: 'LISTEN_FDS garbage', env: { LISTEN_PID: me, LISTEN_FDS: '-2' }, want: null },
    { name: 'one fd, no names', env: { LISTEN_PID: me, LISTEN_FDS: '1' }, want: [{ fd: 3, name: 'unknown' }] },
    {
      name: 'three fds with names',
      env: { LISTEN_PID: me, LISTEN_FDS: '3', LISTEN_FDNAMES: 'smtp:submission:smtps' },
      want: [
        { fd: 3, name: 'smtp' },
        { fd: 4, name: 'submission' },
        { fd: 5, name: 'smtps' },
      ],
    },
    {
      name: 'name count mismatch falls back to unknown',
      env: { LISTEN_PID: me, LISTEN_FDS: '2', LISTEN_FDNAMES: 'smtp' },
      want: [
        { fd: 3, name: 'unknown' },
        { fd: 4, name: 'unknown' },
      ],
    },
    {
      name: 'empty name in the list becomes unknown',
      env: { LISTEN_PID: me, LISTEN_FDS: '2', LISTEN_FDNAMES: ':smtp' },
      want: [
        { fd: 3, name: 'unknown' },
        { fd: 4, name: 'smtp' },
      ],
    },
  ];

  it.each(cases)('$name', ({ env, want }) => {
    Object.assign(process.env, env);
    expect(listenFds()).toEqual(want);
    // Unset after reading, even when not ours, so children never inherit them.
    expect(process.env.LISTEN_PID).toBeUndefined();
    expect(process.env.LISTEN_FDS).toBeUndefined();
    expect(process.env.LISTEN_FDNAMES).toBeUndefined();
    expect(listenFds()).toBeNull();
  });
});

describe('notify', () => {
  const calls: { name: string; fn: () => Promise<void>; lines: string[] }[] = [
    { name: 'notifyReady with status', fn: () => notifyReady('listening on 0.0.0.0:25'), lines: ['READY=1', 'STATUS=listening on 0.0.0.0:25'] },
    { name: 'notifyReady without status', fn: () => notifyReady(), lines: ['READY=1'] },
    { name: 'notifyReady strips newlines', fn: () => notifyReady('a\nMAINPID=1'), lines: ['READY=1', 'STATUS=a MAINPID=1'] },
    { name: 'notifyReloading', fn: () => notifyReloading(), lines: ['RELOADING=1', 'STATUS=reloading configuration'] },
    { name: 'notifyStopping', fn: () => notifyStopping(), lines: ['STOPPING=1', 'STATUS=stopping: draining sessions'] },
  ];

  it.each(calls)('$name runs systemd-notify --pid=<our pid> with the assignments', async ({ fn, lines }) => {
    const out = join(bin, 'out-' + Math.random().toString(36).slice(2));
    process.env.PATH = `${bin}:${savedPath}`;
    process.env.NOTIFY_SOCKET = '/run/systemd/notify-test';
    process.env.FAKE_NOTIFY_OUT = out;
    process.env.LISTEN_PID = String(process.pid);
    process.env.LISTEN_FDS = '1';
    listenFds(); // as the daemon does at start: the child must not see LISTEN_FDS
    await fn();
    expect(readFileSync(out, 'utf8').trimEnd().split('\n')).toEqual([`--pid=${process.pid}`, ...lines, 'inherited=none']);
  });

  it.each(calls)('$name is a no-op without NOTIFY_SOCKET', async ({ fn }) => {
    const out = join(bin, 'never-' + Math.random().toString(36).slice(2));
    process.env.PATH = `${bin}:${savedPath}`;
    delete process.env.NOTIFY_SOCKET;
    process.env.FAKE_NOTIFY_OUT = out;
    await fn();
    expect(existsSync(out)).toBe(false);
  });

  it('resolves quietly (debug line only) when systemd-notify is missing', async () => {
    const seen: { tag: string; reason: string; state: string }[] = [];
    setNotifyDebug((m) => seen.push(m));
    process.env.PATH = join(bin, 'empty-dir-not-there');
    process.env.NOTIFY_SOCKET = '/run/systemd/notify-test';
    await expect(notifyReady('x')).resolves.toBeUndefined();
    expect(seen).toEqual([{ tag: 'SYSTEMD_NOTIFY_FAILED', state: 'ready', reason: 'systemd-notify not installed' }]);
  });

  it('gives up after 2 s when systemd-notify hangs', async () => {
    const seen: string[] = [];
    setNotifyDebug((m) => seen.push(m.reason));
    process.env.PATH = `${bin}:${savedPath}`;
    process.env.NOTIFY_SOCKET = '/run/systemd/notify-test';
    process.env.FAKE_NOTIFY_OUT = join(bin, 'slow');
    process.env.FAKE_NOTIFY_SLEEP = '10';
    const t0 = Date.now();
    await notifyStopping();
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(1900);
    expect(took).toBeLessThan(4000);
    expect(seen).toEqual(['timed out after 2000 ms']);
  });

  it('a throwing debug sink does not escape', async () => {
    setNotifyDebug(() => {
      throw new Error('logger gone');
    });
    process.env.PATH = join(bin, 'nowhere');
    process.env.NOTIFY_SOCKET = '/run/systemd/notify-test';
    await expect(notifyReloading()).resolves.toBeUndefined();
  });
});
