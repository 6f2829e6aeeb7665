// The log file transport: one file per UTC period, rolled at the boundary (also when the
// boundary is further off than a Node timer can wait), the newest `keep` files kept.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import rollFile, { MAX_TIMER_MS, nextBoundary, periodOf, pruneLogs, rollDelay, type RollFrequency } from '../../src/log/roll-file.js';

const at = (iso: string): number => Date.parse(iso);
const dir = (): string => mkdtempSync(join(tmpdir(), 'fakemx-roll-'));

async function end(s: Awaited<ReturnType<typeof rollFile>>): Promise<void> {
  const d = s as unknown as NodeJS.WritableStream & { end(): void; once(e: string, f: () => void): void };
  await new Promise<void>((r) => {
    d.once('close', r);
    d.end();
  });
}

// The suite shares a worker between files (isolate: false): fake timers must not outlive a test.
afterEach(() => {
  vi.useRealTimers();
});

describe('periods', () => {
  it.each<[string, RollFrequency, string, string, string]>([
    ['monthly, mid-month', 'monthly', '2026-12-03T00:05:00Z', '2026-12', '2027-01-01T00:00:00.000Z'],
    ['monthly, last millisecond', 'monthly', '2026-12-31T23:59:59.999Z', '2026-12', '2027-01-01T00:00:00.000Z'],
    ['monthly, February of a leap year', 'monthly', '2028-02-29T12:00:00Z', '2028-02', '2028-03-01T00:00:00.000Z'],
    ['daily, month end', 'daily', '2026-11-30T23:00:00Z', '2026-11-30', '2026-12-01T00:00:00.000Z'],
    ['daily, at the boundary', 'daily', '2026-12-03T00:00:00Z', '2026-12-03', '2026-12-04T00:00:00.000Z'],
    ['hourly, year end', 'hourly', '2026-12-31T23:30:00Z', '2026-12-31T23', '2027-01-01T00:00:00.000Z'],
  ])('%s', (_n, f, now, period, next) => {
    expect(periodOf(f, at(now))).toBe(period);
    expect(new Date(nextBoundary(f, at(now))).toISOString()).toBe(next);
  });

  it('a wait longer than a Node timer holds is armed in steps', () => {
    // Early in a 31-day month the boundary is 30 days off: more than 2^31-1 ms.
    expect(at('2027-01-01T00:00:00Z') - at('2026-12-01T00:05:00Z')).toBeGreaterThan(MAX_TIMER_MS);
    expect(rollDelay('monthly', at('2026-12-01T00:05:00Z'))).toBe(MAX_TIMER_MS);
    expect(rollDelay('hourly', at('2026-12-03T02:59:59Z'))).toBe(1000);
  });
});

describe('pruneLogs', () => {
  it('keeps the newest files, the current one always, and leaves other names alone', async () => {
    const d = dir();
    const ours = ['2026-01', '2026-02', '2026-03', '2026-04', '2026-05-06', '2026-05-07T08'].map((p) => `fakemx.${p}.log`);
    // Not ours: pino-roll's numbers, another base (of the same length too), another extension,
    // and periods with something before or after them.
    const others = ['fakemx.3.log', 'other.2026-01.log', 'foobar.2026-01.log', 'fakemx.2026-01.log.bak', 'fakemx.2026-01.txt', 'fakemx.x.log', 'fakemx.x2026-01.log', 'fakemx.2026-01-xx.log'];
    for (const n of [...ours, ...others]) writeFileSync(join(d, n), 'x\n');
    // The current file is the oldest name here (a clock set back): still kept.
    const removed = await pruneLogs({ dir: d, base: 'fakemx', keep: 3 }, 'fakemx.2026-01.log');
    expect(removed).toEqual(['fakemx.2026-02.log', 'fakemx.2026-03.log', 'fakemx.2026-04.log']);
    expect(readdirSync(d).sort()).toEqual([...others, 'fakemx.2026-01.log', 'fakemx.2026-05-06.log', 'fakemx.2026-05-07T08.log'].sort());
  });

  it('after a change of frequency the period that ended first goes first, whatever its name sorts as', async () => {
    const d = dir();
    // hourly until 05:59 on the 2nd, then daily: "...T05" sorts after "2026-12-02" by name but ended first.
    for (const p of ['2026-12-02T04', '2026-12-02T05', '2026-12-02', '2026-12-03']) writeFileSync(join(d, `fakemx.${p}.log`), 'x\n');
    const removed = await pruneLogs({ dir: d, base: 'fakemx', keep: 2 }, 'fakemx.2026-12-03.log');
    expect(removed).toEqual(['fakemx.2026-12-02T04.log', 'fakemx.2026-12-02T05.log']);
    expect(readdirSync(d).sort()).toEqual(['fakemx.2026-12-02.log', 'fakemx.2026-12-03.log']);
  });

  it('a file it cannot delete is an error, not swallowed', async () => {
    const d = dir();
    mkdirSync(join(d, 'fakemx.2020-01.log'));
    writeFileSync(join(d, 'fakemx.2026-12.log'), '');
    await expect(pruneLogs({ dir: d, base: 'fakemx', keep: 1 }, 'fakemx.2026-12.log')).rejects.toMatchObject({ code: expect.stringMatching(/^(EISDIR|EPERM)$/) as unknown });
  });
});

describe('rollFile', () => {
  it('writes to the period\'s file and prunes at start', async () => {
    const d = dir();
    for (let m = 1; m <= 9; m++) writeFileSync(join(d, `fakemx.2020-0${m}.log`), 'old\n');
    const s = await rollFile({ dir: d, base: 'fakemx', frequency: 'monthly', keep: 2 }, () => at('2026-12-03T00:05:00Z'));
    s.write('{"tag":"A"}\n');
    await vi.waitFor(() => expect(readdirSync(d).sort()).toEqual(['fakemx.2020-09.log', 'fakemx.2026-12.log']), { timeout: 5000 });
    await end(s);
    expect(readFileSync(join(d, 'fakemx.2026-12.log'), 'utf8')).toBe('{"tag":"A"}\n');
    // Not world-readable, whatever the umask (client addresses and senders are in it).
    expect(statSync(join(d, 'fakemx.2026-12.log')).mode & 0o777).toBe(0o640);
  });

  it('rolls at the month boundary and not before, 30 days off included', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    vi.setSystemTime(at('2026-12-01T00:05:00Z'));
    const d = dir();
    let looks = 0;
    const s = await rollFile({ dir: d, base: 'fakemx', frequency: 'monthly', keep: 12 }, () => (looks++, Date.now()));
    s.write('{"tag":"A"}\n');
    // A timer armed with the whole 30 days would fire after 1 ms, and again, once a millisecond.
    vi.advanceTimersByTime(60_000);
    expect(looks).toBeLessThan(10);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(at('2027-01-01T00:00:00Z') - Date.now() - 1);
    s.write('{"tag":"B"}\n');
    vi.advanceTimersByTime(2);
    s.write('{"tag":"C"}\n');
    vi.useRealTimers();
    // sonic-boom loses its close when end() comes while a reopen waits for a write: let the roll finish.
    const read = (n: string): string => readFileSync(join(d, n), 'utf8');
    // B was still buffered behind A's write at the roll: it may land in either file, but once.
    await vi.waitFor(() => {
      expect(readdirSync(d).sort()).toEqual(['fakemx.2026-12.log', 'fakemx.2027-01.log']);
      expect(read('fakemx.2026-12.log')).toMatch(/^\{"tag":"A"\}\n/);
      expect(read('fakemx.2027-01.log')).toMatch(/\{"tag":"C"\}\n$/);
      expect(read('fakemx.2026-12.log') + read('fakemx.2027-01.log')).toBe('{"tag":"A"}\n{"tag":"B"}\n{"tag":"C"}\n');
    }, { timeout: 5000 });
    await end(s);
  });

  it('leaves the real timers behind', async () => {
    expect(await new Promise((r) => setTimeout(() => r('fired'), 5))).toBe('fired');
  });
});
