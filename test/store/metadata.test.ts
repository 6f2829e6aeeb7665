// store/metadata.ts: the record built from a session and the policy's facts.
import { describe, expect, it } from 'vitest';
import type { SessionInfo } from '../../src/smtp/hooks.js';
import { buildMetadata } from '../../src/store/metadata.js';

const s = {
  id: 's1', listener: 'l', remoteAddress: '192.0.2.1', remotePort: 4711, localAddress: '127.0.0.1', localPort: 25,
  helo: 'h', esmtp: true, tls: undefined, openedAt: Date.UTC(2026, 0, 1), mailFrom: { address: 'a@example.org' }, mailParams: undefined,
  rcptTo: [{ address: 'b@example.com' }],
} as unknown as SessionInfo;
const v = { tag: 'TRAP', atMs: 1 };

describe('buildMetadata', () => {
  it.each([
    { name: 'all verdicts kept: no verdictsOmitted field', omitted: undefined, field: undefined },
    { name: 'none omitted', omitted: 0, field: undefined },
    { name: 'some past the session cap', omitted: 150, field: 150 },
  ])('$name', ({ omitted, field }) => {
    const m = buildMetadata(s, 'mx.test', new Date(), { verdicts: [v], ...(omitted === undefined ? {} : { verdictsOmitted: omitted }), dns: null, tempfailed: false });
    expect(m.verdicts).toEqual([v]);
    expect(m.verdictsOmitted).toBe(field);
    expect('verdictsOmitted' in m).toBe(field !== undefined);
  });
});
