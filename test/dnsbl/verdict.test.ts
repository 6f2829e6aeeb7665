// dnsVerdict() without a server: the records per failed zone, DNSWL, DNSBL with the effective
// action, and the exact replies (421 and close for drop, 550 per RCPT for enforce).

import { describe, expect, it } from 'vitest';
import { dnsblDropReply, dnsblRcptReply, dnsVerdict, effectiveAction } from '../../src/dnsbl/verdict.js';
import type { DnsListResult, DnsZoneResult } from '../../src/store/metadata.js';

const z = (zone: string, matched: boolean, weight = 1, extra: Partial<DnsZoneResult> = {}): DnsZoneResult => ({
  zone, answers: matched ? ['127.0.0.2'] : [], matched, weight, ...extra,
});
const listed = (zones: DnsZoneResult[], score: number): DnsListResult => ({ score, listed: true, allowed: false, zones });
const IP = '192.0.2.7';

describe('replies', () => {
  it('drop: 421 4.7.1, closes, outcome dnsbl', () => {
    expect(dnsblDropReply(IP, 'bl.test')).toEqual({
      code: 421, enhanced: '4.7.1', text: 'Service unavailable; client [192.0.2.7] blocked using bl.test', close: true, outcome: 'dnsbl',
    });
  });
  it('enforce: 550 5.7.1, does not close', () => {
    expect(dnsblRcptReply(IP, 'bl.test')).toEqual({ code: 550, enhanced: '5.7.1', text: 'Service unavailable; client [192.0.2.7] blocked using bl.test' });
  });
});

describe('effectiveAction', () => {
  it.each([
    ['auto', false, 'drop'], ['auto', true, 'ignore'],
    ['drop', true, 'drop'], ['enforce', false, 'enforce'], ['ignore', false, 'ignore'],
  ] as const)('%s with storeData %s -> %s', (action, storeData, want) => expect(effectiveAction(action, storeData)).toBe(want));
});

describe('dnsVerdict', () => {
  it('a failed check fails open with one DNS_ERROR', () => {
    const v = dnsVerdict({ error: new Error('boom') }, IP, { action: 'drop', storeData: false });
    expect(v).toEqual({ result: null, verdicts: [{ tag: 'DNS_ERROR', details: { error: 'boom' } }], reply: undefined, rcptReject: undefined });
    expect(dnsVerdict({ error: 'odd' }, IP, { action: 'drop', storeData: false }).verdicts).toEqual([{ tag: 'DNS_ERROR', details: { error: 'odd' } }]);
  });

  it('one record per failed zone, tagged by error, in zone order; not listed: no reply', () => {
    const r: DnsListResult = {
      score: 0, listed: false, allowed: false,
      zones: [
        z('t.test', false, 1, { error: 'timeout' }),
        z('b.test', false, 1, { error: 'bad_answer', answers: ['127.255.255.254'] }),
        z('s.test', false, 1, { error: 'servfail' }),
        z('ok.test', false),
      ],
    };
    const v = dnsVerdict(r, IP, { action: 'drop', storeData: false });
    expect(v.result).toBe(r);
    expect(v.verdicts).toEqual([
      { tag: 'DNS_TIMEOUT', details: { zone: 't.test', error: 'timeout', answers: [] } },
      { tag: 'DNSBL_ERROR', details: { zone: 'b.test', error: 'bad_answer', answers: ['127.255.255.254'] } },
      { tag: 'DNS_ERROR', details: { zone: 's.test', error: 'servfail', answers: [] } },
    ]);
    expect([v.reply, v.rcptReject]).toEqual([undefined, undefined]);
  });

  it('allowed: DNSWL with the matched zones and the score, no reply', () => {
    const r: DnsListResult = { score: 5, listed: false, allowed: true, zones: [z('wl.test', true), z('bl.test', true, 5)] };
    const v = dnsVerdict(r, IP, { action: 'drop', storeData: false });
    expect(v.verdicts).toEqual([{ tag: 'DNSWL', details: { zones: ['wl.test', 'bl.test'], score: 5 } }]);
    expect([v.reply, v.rcptReject]).toEqual([undefined, undefined]);
  });

  const actions = [
    { action: 'auto', storeData: false, effective: 'drop', reply: true, rcpt: false },
    { action: 'auto', storeData: true, effective: 'ignore', reply: false, rcpt: false },
    { action: 'drop', storeData: true, effective: 'drop', reply: true, rcpt: false },
    { action: 'enforce', storeData: false, effective: 'enforce', reply: false, rcpt: true },
    { action: 'ignore', storeData: false, effective: 'ignore', reply: false, rcpt: false },
  ] as const;
  for (const c of actions) {
    it(`listed, action ${c.action} (storeData ${c.storeData}): DNSBL ${c.effective}`, () => {
      const r = listed([z('a.test', true, 1), z('b.test', true, 4), z('c.test', false, 9, { error: 'timeout' })], 5);
      const v = dnsVerdict(r, IP, { action: c.action, storeData: c.storeData });
      expect(v.verdicts).toEqual([
        { tag: 'DNS_TIMEOUT', details: { zone: 'c.test', error: 'timeout', answers: [] } },
        { tag: 'DNSBL', details: { zones: ['a.test', 'b.test'], score: 5, action: c.effective } },
      ]);
      expect(v.reply).toEqual(c.reply ? dnsblDropReply(IP, 'b.test') : undefined);
      expect(v.rcptReject).toEqual(c.rcpt ? dnsblRcptReply(IP, 'b.test') : undefined);
    });
  }

  it('the reply names the matched zone with the largest weight, the first on a tie', () => {
    const v = dnsVerdict(listed([z('a.test', true, 2), z('b.test', true, 2)], 4), '2001:db8::1', { action: 'drop', storeData: false });
    expect(v.reply!.text).toBe('Service unavailable; client [2001:db8::1] blocked using a.test');
  });
});
