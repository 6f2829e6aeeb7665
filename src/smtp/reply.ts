// Replies are values {code, enhanced, text}. The engine's own replies (syntax, sequence,
// limits, DATA, TLS) are built here; a policy's reply is built in the policy file that
// decides it (src/policy/*, src/dnsbl/verdict.ts). formatReply() renders one (multi-line
// when text is an array) per RFC 5321 §4.2.1; the enhanced code (RFC 2034/3463) is shown
// once the client has said EHLO or HELO.

export interface Reply {
  code: number;
  /** RFC 3463 class.subject.detail, e.g. "5.5.1"; omitted on 220 greetings. */
  enhanced?: string;
  /** One line, or several for a multi-line reply. Never contains CR or LF. */
  text: string | string[];
  /** Close the connection after this reply (421 always closes: RFC 5321 §3.8). */
  close?: boolean;
  /** The session outcome this reply stands for when it closes the session (CLOSE log line). */
  outcome?: string;
  /** Not the client's fault (452 too many recipients, 451 local error): not counted as an error. */
  neutral?: boolean;
}

const CTL = /[\x00-\x1f\x7f]/g;

/** Make a client-supplied string safe to echo inside a reply or a log line. */
export function sanitize(s: string, max = 200): string {
  const t = s.length > max ? s.slice(0, max) + '...' : s;
  return t.replace(CTL, '?');
}

export function formatReply(r: Reply, enhanced: boolean): string {
  const ec = enhanced && r.enhanced ? r.enhanced + ' ' : '';
  // One line (almost every reply): no array to wrap it in.
  if (!Array.isArray(r.text)) return `${r.code} ${ec}${r.text}\r\n`;
  const lines = r.text;
  let out = '';
  for (let i = 0; i < lines.length; i++) {
    const sep = i === lines.length - 1 ? ' ' : '-';
    // RFC 3463 §2 / RFC 2034 §4: the enhanced code prefixes every line of the reply.
    out += `${r.code}${sep}${ec}${lines[i]}\r\n`;
  }
  return out;
}

export function closes(r: Reply): boolean {
  return r.close === true || r.code === 421;
}

/** Whether a reply goes out with its enhanced code: after HELO/EHLO (RFC 2034 §3 ties them to
 *  EHLO), and on a closing reply whenever it comes. The verbose log shows what was sent. */
export function sendsEnhanced(helo: string | undefined, r: Reply): boolean {
  return helo !== undefined || closes(r);
}

/** The first line of a banner teaser ("220-host"): sent at accept, before the banner delay. */
export function teaserLine(host: string): string {
  return `220-${host}\r\n`;
}

// Every reply built here has the same fields in the same order, so the engine's reads of a
// reply (closes(), respondTo, formatReply) see one object shape, not one per combination.
const r = (code: number, enhanced: string | undefined, text: string | string[], close = false, outcome?: string, neutral = false): Reply => ({
  code, enhanced, text, close, outcome, neutral,
});

/** The catalogue. Functions where the text carries a value. */
export const replies = {
  // RFC 5321 §4.2: the greeting names the domain first. With a banner teaser this is the
  // last line of a multi-line 220 whose first line teaserLine() sent at accept.
  greeting: (host: string): Reply => r(220, undefined, `${host} ESMTP fakemx`),
  helo: (host: string, client: string): Reply => r(250, undefined, `${host} Hello ${sanitize(client, 100)}`),
  ehlo: (host: string, client: string, ext: string[]): Reply => r(250, undefined, [`${host} Hello ${sanitize(client, 100)}`, ...ext]),
  ok: (text = 'Ok'): Reply => r(250, '2.0.0', text),
  senderOk: (): Reply => r(250, '2.1.0', 'Sender ok'),
  rcptOk: (): Reply => r(250, '2.1.5', 'Recipient ok'),
  queued: (id: string): Reply => r(250, '2.0.0', `Ok: queued as ${id}`),
  resetOk: (): Reply => r(250, '2.0.0', 'Reset ok'),
  noop: (): Reply => r(250, '2.0.0', 'Ok'),
  startData: (): Reply => r(354, undefined, 'End data with <CR><LF>.<CR><LF>'),
  bye: (host: string): Reply => r(221, '2.0.0', `${host} closing connection`, true, 'quit'),
  /** `offered`: the extension commands this session takes now (STARTTLS, AUTH, BDAT). */
  help: (offered: readonly string[] = []): Reply => r(214, '2.0.0', [['Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY EXPN HELP', ...offered].join(' '), 'See RFC 5321']),
  // RFC 5321 §3.5.3: 252 when the server cannot verify but will accept.
  vrfy: (): Reply => r(252, '2.5.2', 'Cannot VRFY user, but will accept message and attempt delivery'),
  // RFC 5321 §3.5.2/§4.2.2: 502 "Command not implemented" is the standard reply for a command
  // a server deliberately does not offer (EXPN would expose lists; VRFY answers 252).
  expn: (): Reply => r(502, '5.5.1', 'EXPN not implemented'),
  startTls: (): Reply => r(220, '2.0.0', 'Ready to start TLS'),

  // ---- sequence and syntax (RFC 5321 §4.3.2, §4.2.4) ----
  unknownCommand: (): Reply => r(500, '5.5.1', 'Error: command not recognized'),
  lineTooLong: (): Reply => r(500, '5.5.2', 'Error: line too long'),
  badSequence: (text: string): Reply => r(503, '5.5.1', `Error: ${text}`),
  syntax: (text: string): Reply => r(501, '5.5.4', `Syntax error: ${text}`),
  noParams: (cmd: string): Reply => r(501, '5.5.4', `Syntax error: ${cmd} takes no arguments`),
  badAddress: (text: string): Reply => r(553, '5.1.3', `Bad address syntax: ${text}`),
  /** RFC 6531 §3.5: a non-ASCII address in a transaction without SMTPUTF8 is 550 at MAIL,
   *  553 at RCPT, with X.6.7 "Non-ASCII addresses not permitted for that sender/recipient". */
  nonAsciiAddress: (code: 550 | 553): Reply => r(code, '5.6.7', 'Non-ASCII address needs the SMTPUTF8 parameter of MAIL FROM'),
  badParam: (name: string): Reply => r(555, '5.5.4', `Unsupported parameter ${sanitize(name, 40)}`),
  notImplemented: (cmd: string): Reply => r(502, '5.5.1', `${cmd} not implemented`),

  // ---- CHUNKING (RFC 3030) ----
  /** §2: each non-LAST chunk read is answered 250 (Postfix's text names the octets). */
  chunkOk: (octets: number): Reply => r(250, '2.0.0', `Ok: ${octets} octets`),
  /** The chunk's size cannot be read, so where it ends is unknown: nothing after it can be
   *  taken as a command, and the session ends (as Postfix does). */
  badChunkSize: (): Reply => r(501, '5.5.4', 'Syntax: BDAT chunk-size [LAST]', true, 'bad_bdat'),

  // ---- AUTH (RFC 4954 §4, §6) ----
  authChallenge: (b64: string): Reply => r(334, undefined, b64),
  authUnknownMechanism: (): Reply => r(504, '5.5.4', 'Unrecognized authentication type'),
  authCancelled: (): Reply => r(501, '5.0.0', 'Authentication cancelled'),
  authBadBase64: (): Reply => r(501, '5.5.2', 'Cannot decode response'),
  authLineTooLong: (): Reply => r(500, '5.5.6', 'Authentication Exchange line is too long'),
  authEncryptionRequired: (): Reply => r(538, '5.7.11', 'Encryption required for requested authentication mechanism'),
  authUnavailable: (): Reply => r(454, '4.7.0', 'Temporary authentication failure'),

  // ---- recipients ----
  tooManyRcpts: (): Reply => r(452, '4.5.3', 'too many recipients', false, undefined, true),

  // ---- sizes (RFC 1870 §6) ----
  tooBig: (): Reply => r(552, '5.3.4', 'Message size exceeds fixed maximum message size'),

  // ---- store ----
  storeFailed: (): Reply => r(451, '4.3.0', 'Requested action aborted: local error in processing', false, undefined, true),

  // ---- session ends ----
  timeout: (host: string): Reply => r(421, '4.4.2', `${host} timeout, closing connection`, true),
  sessionTooLong: (host: string): Reply => r(421, '4.4.2', `${host} session time limit reached, closing connection`, true),
  tooBusy: (host: string): Reply => r(421, '4.3.2', `${host} too busy, try later`, true),
  limit: (what: string): Reply => r(421, '4.7.0', `too many ${what}, closing connection`, true),
  shuttingDown: (host: string): Reply => r(421, '4.3.2', `${host} shutting down`, true),
  internalError: (host: string): Reply => r(421, '4.3.0', `${host} internal error, closing connection`, true),
  nonSmtp: (): Reply => r(554, '5.5.1', 'Error: this is an SMTP server, not HTTP or TLS', true),

} as const;
