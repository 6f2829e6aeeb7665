// Pure parsers for SMTP command lines: the verb split, RFC 5321 §4.1.2 paths
// (quoted local parts, address literals, source routes) and ESMTP parameters
// (RFC 1870 SIZE, RFC 6152 BODY, RFC 6531 SMTPUTF8). No I/O, no policy.

import { isIPv4, isIPv6 } from 'node:net';
import type { Address, MailParams } from './hooks.js';

export type ParseResult<T> = { ok: true; value: T } | { ok: false; code: 'syntax' | 'address' | 'param'; text: string };

const ok = <T>(value: T): ParseResult<T> => ({ ok: true, value });
const fail = <T>(code: 'syntax' | 'address' | 'param', text: string): ParseResult<T> => ({ ok: false, code, text });

/** Split "VERB args" — the verb is case-insensitive (RFC 5321 §2.4). */
export function splitCommand(line: string): { verb: string; args: string } {
  const sp = line.indexOf(' ');
  if (sp < 0) return { verb: line.toUpperCase(), args: '' };
  return { verb: line.slice(0, sp).toUpperCase(), args: line.slice(sp + 1) };
}

// RFC 5321 §4.1.2 / RFC 5322 atext; RFC 6531 §3.3 adds UTF8-non-ascii.
const ATEXT_UTF8 = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\u{10FFFF}]+$/u;
const SUBDOMAIN_UTF8 = /^[A-Za-z0-9\u0080-\u{10FFFF}](?:[A-Za-z0-9\u0080-\u{10FFFF}-]*[A-Za-z0-9\u0080-\u{10FFFF}])?$/u;
const NON_ASCII = /[^\x00-\x7f]/;
// The common case, plain ASCII, in one test each (no split, no regex per atom or label):
// a Dot-string, and a Domain of 1-63 octet labels (§4.1.2, §4.5.3.1.2).
const DOT_STRING = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*$/;
const DOMAIN = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** RFC 5321 §4.1.2 Domain, or an address literal (§4.1.3). */
export function isDomainOrLiteral(s: string, utf8 = false): boolean {
  if (s.startsWith('[')) return isAddressLiteral(s);
  if (s.length === 0 || s.length > 255) return false; // §4.5.3.1.2
  if (!utf8) return DOMAIN.test(s);
  for (const l of s.split('.')) if (!SUBDOMAIN_UTF8.test(l) || l.length > 63) return false;
  return true;
}

function isAddressLiteral(s: string): boolean {
  if (!s.endsWith(']')) return false;
  const inner = s.slice(1, -1);
  if (/^ipv6:/i.test(inner)) return isIPv6(inner.slice(5));
  if (isIPv4(inner)) return true;
  // General-address-literal = Standardized-tag ":" 1*dcontent
  const m = /^([A-Za-z0-9-]*[A-Za-z0-9]):([\x21-\x5a\x5e-\x7e]+)$/.exec(inner);
  return m !== null && !/^ipv6$/i.test(m[1]!);
}

/** Local-part = Dot-string / Quoted-string. Returns false when malformed. */
function isLocalPart(s: string, utf8: boolean): boolean {
  if (s.length === 0) return false;
  if (s.startsWith('"')) {
    if (s.length < 2 || !s.endsWith('"')) return false;
    const body = s.slice(1, -1);
    for (let i = 0; i < body.length; i++) {
      const c = body.charCodeAt(i);
      if (c === 92) {
        // quoted-pairSMTP = %d92 %d32-126
        const n = body.charCodeAt(++i);
        if (!(n >= 32 && n <= 126)) return false;
      } else if (c === 34) {
        return false;
      } else if (!((c >= 32 && c <= 126) || (utf8 && c >= 128))) {
        return false;
      }
    }
    return true;
  }
  if (!utf8) return DOT_STRING.test(s);
  for (const atom of s.split('.')) if (!ATEXT_UTF8.test(atom)) return false;
  return true;
}

/** Index of the '@' that separates local part and domain (outside quotes), or -1. */
function splitAt(mailbox: string): number {
  if (mailbox.startsWith('"')) {
    for (let i = 1; i < mailbox.length; i++) {
      const c = mailbox[i];
      if (c === '\\') i++;
      else if (c === '"') return mailbox[i + 1] === '@' ? i + 1 : -1;
    }
    return -1;
  }
  return mailbox.lastIndexOf('@');
}

/**
 * Parse `<path> [params]` after "FROM:" / "TO:". Accepts the common lenient form with a
 * space after the colon, as Postfix does; a missing "<...>" is a syntax error.
 */
export function parsePathArg(
  arg: string,
  opts: { allowNull: boolean; allowPostmaster: boolean },
): ParseResult<{ address: Address; params: string }> {
  const s = arg.charCodeAt(0) === 32 ? arg.replace(/^ +/, '') : arg;
  if (!s.startsWith('<')) return fail('syntax', 'address must be enclosed in <>');
  const close = findPathEnd(s);
  if (close < 0) return fail('syntax', 'missing > after address');
  const inner = s.slice(1, close);
  const rest = s.slice(close + 1);
  if (rest.length > 0 && !rest.startsWith(' ')) return fail('syntax', 'junk after address');
  const params = rest.trim();
  if (inner === '') {
    if (!opts.allowNull) return fail('address', '<> not allowed here');
    return ok({ address: { address: '', local: '', domain: '', utf8: false }, params });
  }
  // RFC 5321 §4.5.3.1.3: a path is at most 256 octets including the brackets.
  if (octetsOver(inner, 254)) return fail('address', 'path too long');
  let mailbox = inner;
  // A-d-l ":" — a source route: accept and ignore it (§4.1.2, Appendix C).
  if (mailbox.startsWith('@')) {
    const colon = mailbox.indexOf(':');
    if (colon < 0) return fail('address', 'malformed source route');
    const route = mailbox.slice(0, colon).split(',');
    for (const hop of route) {
      if (!hop.startsWith('@') || !isDomainOrLiteral(hop.slice(1))) return fail('address', 'malformed source route');
    }
    mailbox = mailbox.slice(colon + 1);
  }
  const utf8 = NON_ASCII.test(mailbox);
  if (opts.allowPostmaster && /^postmaster$/i.test(mailbox)) {
    // RFC 5321 §4.5.1: <Postmaster> without a domain must be accepted.
    return ok({ address: { address: mailbox, local: mailbox, domain: '', utf8: false }, params });
  }
  const at = splitAt(mailbox);
  if (at <= 0) return fail('address', 'missing or misplaced @');
  const local = mailbox.slice(0, at);
  const domain = mailbox.slice(at + 1);
  if (octetsOver(local, 64)) return fail('address', 'local part too long'); // §4.5.3.1.1
  if (!isLocalPart(local, utf8)) return fail('address', 'malformed local part');
  if (!isDomainOrLiteral(domain, utf8)) return fail('address', 'malformed domain');
  return ok({ address: { address: mailbox, local, domain, utf8 }, params });
}

/**
 * Whether `s` is longer than `max` octets in UTF-8. A UTF-16 code unit is at most 3 octets (a
 * pair, 4 for two units), so a string of up to max/3 units is not counted: every real path is.
 */
function octetsOver(s: string, max: number): boolean {
  return s.length * 3 > max && Buffer.byteLength(s) > max;
}

/** Position of the '>' that closes the path, skipping quoted strings. */
function findPathEnd(s: string): number {
  let q = false;
  for (let i = 1; i < s.length; i++) {
    const c = s[i];
    if (q) {
      if (c === '\\') i++;
      else if (c === '"') q = false;
    } else if (c === '"') q = true;
    else if (c === '>') return i;
    else if (c === '<') return -1;
  }
  return -1;
}

const KEYWORD = /^[A-Za-z0-9][A-Za-z0-9-]*$/;

/** Split `KEY[=VALUE] ...` (RFC 5321 §4.1.2 esmtp-param). Keys upper-cased. */
export function splitParams(params: string): ParseResult<Map<string, string | true>> {
  const out = new Map<string, string | true>();
  if (params === '') return ok(out);
  for (const p of params.split(/ +/)) {
    const eq = p.indexOf('=');
    const key = (eq < 0 ? p : p.slice(0, eq)).toUpperCase();
    if (!KEYWORD.test(key)) return fail('syntax', 'malformed parameter');
    const seen = out.get(key);
    if (seen !== undefined) {
      // The same parameter said twice means nothing new (Python's smtplib adds SMTPUTF8 to a
      // caller's own, as Postfix and smtp-server take it); two different values are a conflict.
      if (seen === (eq < 0 ? true : p.slice(eq + 1))) continue;
      return fail('syntax', `duplicate parameter ${key}`);
    }
    if (eq < 0) {
      out.set(key, true);
    } else {
      const v = p.slice(eq + 1);
      // esmtp-value = 1*(%d33-60 / %d62-126) (RFC 6531 widens it to UTF-8).
      if (v === '' || /[\x00-\x20=\x7f]/.test(v)) return fail('syntax', `malformed value for ${key}`);
      out.set(key, v);
    }
  }
  return ok(out);
}

/** MAIL FROM parameters. Unknown keyword -> 'param' (555 5.5.4, RFC 5321 §4.1.1.11). */
/** RFC 3461 §4 xtext: "!".."~" but "+" and "=", or "+" and two upper-case hex digits. */
const XTEXT = /^(?:[!-*,-<>-~]|\+[0-9A-F]{2})+$/;

export function parseMailParams(params: string, opts: { binaryMime?: boolean; auth?: boolean } = {}): ParseResult<MailParams> {
  const split = splitParams(params);
  if (!split.ok) return split;
  const out: MailParams = { smtputf8: false };
  for (const [key, v] of split.value) {
    switch (key) {
      case 'SIZE':
        // RFC 1870 §5: size-value ::= 1*20DIGIT
        if (v === true || !/^[0-9]{1,20}$/.test(v)) return fail('syntax', 'SIZE needs a number');
        out.size = Number(v);
        break;
      case 'BODY':
        // RFC 6152 §2: BODY=7BIT / BODY=8BITMIME; RFC 3030 §3: BODY=BINARYMIME only where
        // BINARYMIME is advertised. Not advertised, it is a parameter value the server cannot
        // implement: 555 (RFC 5321 §4.1.1.11), not a syntax error.
        if (v === true) return fail('syntax', 'BODY needs a value');
        {
          const b = v.toUpperCase();
          if (b === 'BINARYMIME') {
            if (!opts.binaryMime) return fail('param', 'BODY=BINARYMIME');
            out.body = b;
          } else if (b !== '7BIT' && b !== '8BITMIME') return fail('syntax', 'BODY must be 7BIT or 8BITMIME');
          else out.body = b;
        }
        break;
      case 'SMTPUTF8':
        // RFC 6531 §3.4: SMTPUTF8 takes no value.
        if (v !== true) return fail('syntax', 'SMTPUTF8 takes no value');
        out.smtputf8 = true;
        break;
      case 'AUTH':
        // RFC 4954 §5: a server that offers AUTH takes AUTH=<mailbox as xtext> or AUTH=<> from
        // any client (sendmail sends AUTH=<> unauthenticated); not authenticated, it acts as if
        // AUTH=<> was given, so the value is checked and dropped.
        if (!opts.auth) return fail('param', key);
        if (v === true || !XTEXT.test(v)) return fail('syntax', 'AUTH needs a mailbox as xtext or <>');
        break;
      default:
        return fail('param', key);
    }
  }
  return ok(out);
}
