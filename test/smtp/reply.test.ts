// Reply rendering (RFC 5321 §4.2.1 multi-line form, RFC 2034 enhanced codes on every line),
// the echo sanitiser at its length edge, and the rule that a 421 always closes (§3.8).
import { describe, expect, it } from 'vitest';
import { closes, formatReply, sanitize, teaserLine } from '../../src/smtp/reply.js';

describe('formatReply', () => {
  it('one line, with and without the enhanced code', () => {
    expect(formatReply({ code: 250, enhanced: '2.1.0', text: 'Sender ok' }, true)).toBe('250 2.1.0 Sender ok\r\n');
    expect(formatReply({ code: 250, enhanced: '2.1.0', text: 'Sender ok' }, false)).toBe('250 Sender ok\r\n');
    expect(formatReply({ code: 220, text: 'mx.test ESMTP' }, true)).toBe('220 mx.test ESMTP\r\n');
  });
  it('multi-line: "NNN-" on every line but the last, the enhanced code on each', () => {
    expect(formatReply({ code: 214, enhanced: '2.0.0', text: ['a', 'b', 'c'] }, true)).toBe('214-2.0.0 a\r\n214-2.0.0 b\r\n214 2.0.0 c\r\n');
    expect(formatReply({ code: 250, text: ['mx.test Hello x', 'PIPELINING'] }, true)).toBe('250-mx.test Hello x\r\n250 PIPELINING\r\n');
  });
});

describe('sanitize', () => {
  it('keeps a string of exactly max characters, cuts one more with "..."', () => {
    expect(sanitize('a'.repeat(10), 10)).toBe('a'.repeat(10));
    expect(sanitize('a'.repeat(11), 10)).toBe('a'.repeat(10) + '...');
    expect(sanitize('a'.repeat(200))).toBe('a'.repeat(200));
    expect(sanitize('a'.repeat(201))).toBe('a'.repeat(200) + '...');
  });
  it('replaces every control character (C0 and DEL) with "?", nothing else', () => {
    expect(sanitize('a\r\nb\x00c\x1bd\x7fe\x1f')).toBe('a??b?c?d?e?');
    expect(sanitize('caf\u00e9 ~ !')).toBe('caf\u00e9 ~ !');
  });
});

describe('closes', () => {
  it('every 421 closes (RFC 5321 §3.8), flagged or not; other replies only when flagged', () => {
    expect(closes({ code: 421, text: 'x' })).toBe(true);
    expect(closes({ code: 221, text: 'bye', close: true })).toBe(true);
    expect(closes({ code: 250, text: 'ok' })).toBe(false);
    expect(closes({ code: 554, text: 'no', close: false })).toBe(false);
  });
});

it('teaserLine is the first line of a multi-line 220', () => {
  expect(teaserLine('mx.test')).toBe('220-mx.test\r\n');
});
