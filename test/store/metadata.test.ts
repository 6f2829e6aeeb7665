// The message record as pure functions: buildMetadata from a session, arrivalOf for a
// duplicate, addArrivals folding later arrivals into the first copy's record.
import { describe, expect, it } from 'vitest';
import { addArrivals, arrivalOf, buildMetadata, MAX_ARRIVALS, type MessageMetadata } from '../../src/store/metadata.js';
import type { SessionInfo } from '../../src/smtp/hooks.js';

const OPENED = Date.UTC(2026, 11, 3, 12, 0, 0);

function session(over: Partial<SessionInfo> = {}): SessionInfo {
  return {
    id: 's1', remoteAddress: '192.0.2.1', remotePort: 4711, localAddress: '127.0.0.1', localPort: 25, listener: 'l',
    openedAt: OPENED, helo: 'client.test', esmtp: true, tls: undefined, mailFrom: undefined, mailParams: undefined,
    rcptTo: [], counts: { commands: 0, errors: 0, noop: 0, vrfy: 0, rcpt: 0, messages: 0, junk: 0, overshoot: 0, deferred: 0 },
    ...over,
  };
}

const facts = (tempfailed: boolean) => ({ verdicts: [], dns: null, tempfailed });
const started = new Date(OPENED + 5_000);
const ended = new Date(OPENED + 7_500);

describe('buildMetadata', () => {
  it.each<[string, Partial<SessionInfo>, Partial<ReturnType<typeof buildMetadata>>]>([
    ['DATA: no chunk count', { transfer: 'DATA', chunks: 3 }, { transfer: 'DATA', chunks: undefined }],
    ['BDAT: the chunk count', { transfer: 'BDAT', chunks: 3 }, { transfer: 'BDAT', chunks: 3 }],
  ])('%s', (_n, over, want) => {
    const m = buildMetadata(session(over), 'mx.test', started, facts(false), ended);
    expect({ transfer: m.transfer, chunks: m.chunks }).toEqual(want);
  });

  it.each([
    { name: 'all verdicts kept: no verdictsOmitted field', omitted: undefined, field: undefined },
    { name: 'none omitted', omitted: 0, field: undefined },
    { name: 'some past the session cap', omitted: 150, field: 150 },
  ])('verdictsOmitted: $name', ({ omitted, field }) => {
    const v = { tag: 'TRAP', atMs: 1 };
    const m = buildMetadata(session(), 'mx.test', started, { verdicts: [v], ...(omitted === undefined ? {} : { verdictsOmitted: omitted }), dns: null, tempfailed: false }, ended);
    expect(m.verdicts).toEqual([v]);
    expect(m.verdictsOmitted).toBe(field);
    expect('verdictsOmitted' in m).toBe(field !== undefined);
  });

  it('timings: the DATA phase from its start, not from the session open', () => {
    const m = buildMetadata(session(), 'mx.test', started, facts(false), ended);
    expect(m.timings).toEqual({
      sessionOpenedAt: new Date(OPENED).toISOString(),
      dataStartedAt: started.toISOString(),
      dataEndedAt: ended.toISOString(),
      dataMs: 2_500,
    });
  });
});

describe('arrivals of a duplicate body', () => {
  const meta = (tempfailed: boolean, at: number) => buildMetadata(session(), 'mx.test', started, facts(tempfailed), new Date(at));

  it.each([
    ['tempfailed, as the first copy was: flagged', true],
    ['not tempfailed: no flag at all', false],
  ] as const)('arrivalOf: %s', (_n, tempfailed) => {
    const a = arrivalOf('m2', meta(tempfailed, OPENED));
    expect([a.id, 'tempfailed' in a, a.tempfailed]).toEqual(['m2', tempfailed, tempfailed ? true : undefined]);
  });

  it('addArrivals counts every arrival, keeps the last time, and keeps the first MAX_ARRIVALS in full', () => {
    const first = { ...meta(false, OPENED), id: 'm1', file: 'm1.eml', sizes: { body: 1, headers: 1, file: 2 } } as MessageMetadata;
    const arrivals = Array.from({ length: MAX_ARRIVALS + 2 }, (_, i) => arrivalOf(`a${i}`, meta(false, OPENED + (i + 1) * 1000)));
    const once = addArrivals(first, arrivals.slice(0, MAX_ARRIVALS - 1));
    const all = addArrivals(once, arrivals.slice(MAX_ARRIVALS - 1));
    expect(all.duplicates!.count).toBe(MAX_ARRIVALS + 2);
    expect(all.duplicates!.lastAt).toBe(new Date(OPENED + (MAX_ARRIVALS + 2) * 1000).toISOString());
    expect(all.duplicates!.arrivals.map((a) => a.id)).toEqual(arrivals.slice(0, MAX_ARRIVALS).map((a) => a.id));
    // The input record is not changed.
    expect(once.duplicates!.count).toBe(MAX_ARRIVALS - 1);
    expect(addArrivals(first, [])).toBe(first);
  });
});
