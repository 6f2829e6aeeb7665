// Printable renderings of untrusted text: raw client bytes for logs and metadata
// (escapeBytes), and client- or DNS-supplied strings the CLI prints to an operator's terminal
// (escapeText, safeJson), so nothing a client sends can start a new line or drive a terminal.

export function escapeBytes(b: Uint8Array): string {
  let s = '';
  for (const c of b) {
    if (c === 13) s += '\\r';
    else if (c === 10) s += '\\n';
    else if (c === 92) s += '\\\\';
    else if (c >= 32 && c < 127) s += String.fromCharCode(c);
    else s += '\\x' + c.toString(16).padStart(2, '0');
  }
  return s;
}

/**
 * Code points a terminal may act on rather than show: C0 (ESC starts CSI/OSC sequences: title,
 * colours, OSC 52 clipboard writes), DEL, C1 (U+009B is an 8-bit CSI, U+009D an OSC, to
 * terminals that honour C1 in UTF-8), the bidi controls that reorder what the operator reads
 * (Trojan Source: ALM, LRM/RLM, LRE..RLO, LRI..PDI) and the Unicode line/paragraph separators.
 */
const BEYOND_C0 = '\\x7f-\\x9f\\u061c\\u200e\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069';
/** All of them, plus the backslash, so an escape is never ambiguous with text that looks like one. */
const TEXT_G = new RegExp(`[\\\\\\x00-\\x1f${BEYOND_C0}]`, 'g');
/** What JSON.stringify leaves raw (it escapes C0 itself; C0 outside strings is its own layout). */
const JSON_G = new RegExp(`[${BEYOND_C0}]`, 'g');

const NAMED: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function hex(c: string): string {
  const n = c.charCodeAt(0);
  return n <= 0xff ? '\\x' + n.toString(16).padStart(2, '0') : '\\u' + n.toString(16).padStart(4, '0');
}

/**
 * A string fit for a terminal line: every character listed above shown as \xNN (\n, \r, \t by
 * name, U+0100 and up as \uNNNN) and "\" as "\\"; everything else, other scripts included, as is.
 */
export function escapeText(s: string): string {
  return s.replace(TEXT_G, (c) => NAMED[c] ?? hex(c));
}

/**
 * JSON.stringify whose output is terminal-safe and still parses to the same value: it escapes
 * C0 already, but leaves DEL, C1 and the bidi controls raw; those become \uNNNN escapes here
 * (inside JSON strings, the only place they can occur).
 */
export function safeJson(value: unknown, space?: number): string {
  return jsonSafe(JSON.stringify(value, null, space));
}

const jsonEscape = (c: string) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0');

/** Serialised JSON (a log line) made terminal-safe the same way; text without them is returned as is. */
export function jsonSafe(json: string): string {
  return json.replace(JSON_G, jsonEscape);
}

/**
 * Everything above but TAB, as one character class: what a client-supplied value may not carry
 * into a stored header line (store/corpus.ts), where each becomes "?".
 */
export const HEADER_UNSAFE_G = new RegExp(`[\\x00-\\x08\\x0a-\\x1f${BEYOND_C0}]`, 'g');
