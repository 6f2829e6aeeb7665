// The terminal escaper: every control character a client or a DNS answer can carry comes out
// as visible text (escapeText), and JSON output stays parseable to the same value while no
// raw DEL, C1 or bidi control reaches the terminal (safeJson). escapeBytes keeps its format.
import { describe, expect, it } from 'vitest';
import { escapeBytes, escapeText, safeJson } from '../../src/util/escape.js';

/** What must never reach a terminal raw (an oracle written apart from the code under test). */
const RAW = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

const cases: [name: string, input: string, shown: string][] = [
  ['plain ASCII unchanged', 'mail.example.org', 'mail.example.org'],
  ['other scripts unchanged', 'почта.пример', 'почта.пример'],
  ['OSC title (ESC ] ... BEL)', '\x1b]0;pwned\x07', '\\x1b]0;pwned\\x07'],
  ['SGR colour', '\x1b[31mred', '\\x1b[31mred'],
  ['OSC 52 clipboard write', '\x1b]52;c;ZWNobyBvd25lZA==\x07', '\\x1b]52;c;ZWNobyBvd25lZA==\\x07'],
  ['CR, LF and TAB by name', 'ok\rEVIL\nx\ty', 'ok\\rEVIL\\nx\\ty'],
  ['NUL', 'a\0b', 'a\\x00b'],
  ['DEL', 'a\x7fb', 'a\\x7fb'],
  ['C1 CSI (U+009B) and OSC (U+009D)', '\u009b31m\u009d0;t', '\\x9b31m\\x9d0;t'],
  ['bidi override (RLO) and isolate (RLI..PDI)', 'abc\u202edef\u2067x\u2069', 'abc\\u202edef\\u2067x\\u2069'],
  ['LRM, RLM, ALM', '\u200e\u200f\u061c', '\\u200e\\u200f\\u061c'],
  ['line and paragraph separators', 'a\u2028b\u2029', 'a\\u2028b\\u2029'],
  ['backslash doubled, so a literal "\\x1b" differs from ESC', '\\x1b', '\\\\x1b'],
];

describe('escapeText', () => {
  it.each(cases)('%s', (_n, input, shown) => {
    const out = escapeText(input);
    expect(out).toBe(shown);
    expect(out).not.toMatch(RAW);
  });
  it('every code point up to U+FFFF: none of the unsafe ones survives', () => {
    let all = '';
    for (let c = 0; c <= 0xffff; c++) if (c < 0xd800 || c > 0xdfff) all += String.fromCharCode(c);
    expect(escapeText(all)).not.toMatch(RAW);
  });
});

describe('safeJson', () => {
  it.each(cases)('%s: parses back to the input, and the text is terminal-safe', (_n, input) => {
    const value = { helo: input, list: [input], [input]: 1 };
    const text = safeJson(value, 2);
    expect(text).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/);
    expect(JSON.parse(text)).toEqual(value);
  });
  it('keeps JSON.stringify layout', () => {
    expect(safeJson({ a: [1, 'x'] }, 2)).toBe(JSON.stringify({ a: [1, 'x'] }, null, 2));
    expect(safeJson({ a: 1 })).toBe('{"a":1}');
  });
});

describe('escapeBytes (logs and metadata) keeps its format', () => {
  it.each([
    ['printable', 'EHLO x', 'EHLO x'],
    ['CR LF', 'a\r\n', 'a\\r\\n'],
    ['ESC and high bytes', '\x1b\xff', '\\x1b\\xff'],
    ['backslash', '\\', '\\\\'],
    ['tilde, the last printable, and DEL', '~\x7f', '~\\x7f'],
    ['space, the first printable, and US', ' \x1f', ' \\x1f'],
  ])('%s', (_n, input, shown) => {
    expect(escapeBytes(Buffer.from(input, 'latin1'))).toBe(shown);
  });
});
