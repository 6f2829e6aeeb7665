// The engine's only window onto policy and storage (go-smtp's Backend/Session split).
// The engine owns syntax, command order and limits; every accept/reject decision, every
// delay and every byte of a message goes through these hooks. A hook may answer at once
// or with a Promise; a hook that throws ends the session with 421 4.3.0, never the process.

import type { Reply } from './reply.js';

export type Maybe<T> = T | Promise<T>;

/** An RFC 5321 §4.1.2 path after parsing. `address` is "" for the null path <>. */
export interface Address {
  /** local@domain as given (quoted local parts keep their quotes), or "" for <>. */
  address: string;
  local: string;
  domain: string;
  /** True when local part or domain holds UTF-8 (RFC 6531). */
  utf8: boolean;
}

/** MAIL FROM parameters this engine understands (RFC 1870, 6152, 6531). */
export interface MailParams {
  size?: number;
  /** BINARYMIME (RFC 3030 §3) only where the listener advertises it; such a message needs BDAT. */
  body?: '7BIT' | '8BITMIME' | 'BINARYMIME';
  smtputf8: boolean;
}

export interface TlsInfo {
  protocol: string;
  cipher: string;
  servername?: string;
}

export interface SessionCounts {
  commands: number;
  errors: number;
  noop: number;
  vrfy: number;
  rcpt: number;
  messages: number;
  /** RSET, NOOP, HELP, VRFY, EXPN and repeated HELO/EHLO (maxJunkCommands). */
  junk: number;
  /** RCPTs refused with 452 because the message had maxSmtpRcpt recipients (maxRcptOvershoot). */
  overshoot: number;
  /**
   * RCPTs (and DATA or a first BDAT) a hook deferred with a neutral 4xx: greylisting, a state
   * store down with state.onError tempfail. Not errors, but they share maxRcptOvershoot with
   * the 452s, so a session cannot be answered 451 without end.
   */
  deferred: number;
}

/** What hooks may read about a session. The engine owns and updates it. */
export interface SessionInfo {
  readonly id: string;
  /** Normalised client address (::ffff:a.b.c.d -> a.b.c.d). */
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** Name of the listener that accepted the connection. */
  readonly listener: string;
  readonly openedAt: number;
  readonly helo: string | undefined;
  readonly esmtp: boolean;
  readonly tls: TlsInfo | undefined;
  readonly mailFrom: Address | undefined;
  readonly mailParams: MailParams | undefined;
  readonly rcptTo: readonly Address[];
  readonly counts: Readonly<SessionCounts>;
  /** How the current message's body is coming: DATA, BDAT (RFC 3030), or none yet. */
  readonly transfer?: 'DATA' | 'BDAT' | undefined;
  /** BDAT chunks received for the current message so far (the LAST one included at its end). */
  readonly chunks?: number;
}

/** The mechanisms the engine can run (RFC 4954 §4; RFC 4616 PLAIN, LOGIN, RFC 2195 CRAM-MD5). */
export type AuthMechanism = 'PLAIN' | 'LOGIN' | 'CRAM-MD5';

/** One finished AUTH exchange, decoded by the engine; the policy decides the reply. */
export interface AuthAttempt {
  mechanism: AuthMechanism;
  /** PLAIN: the authentication identity; LOGIN: the user name; CRAM-MD5: the user name. */
  user: string;
  /** PLAIN: the authorization identity, when one was given. */
  authzid?: string;
  /** The user name's decoded octets, as sent (`user` replaces octets that are not UTF-8). */
  userOctets?: Buffer;
  /** PLAIN and LOGIN: the password as sent (decoded octets read as UTF-8). */
  password?: string;
  /** PLAIN and LOGIN: the password's decoded octets, as sent (the string above replaces
   *  octets that are not UTF-8; a hash of the password is of these). */
  passwordOctets?: Buffer;
  /** CRAM-MD5: the challenge sent and the client's hex digest. */
  cram?: { challenge: string; digest: string };
  /** Whether the first response came with the AUTH command (RFC 4954 §4 initial response). */
  initialResponse: boolean;
}

export type EarlyTalkKind = 'pregreet' | 'pipelining';

export interface EarlyTalkEvent {
  kind: EarlyTalkKind;
  /** Milliseconds since the connection opened. */
  afterMs: number;
  /** Up to 100 of the bytes that came early (after AUTH: each line masked to "*", they are credentials). */
  sample: Buffer;
  /** For 'pipelining': the command whose reply the client did not wait for. */
  after?: string;
}

/** Where an accepted DATA body goes, in chunks, already dot-unstuffed. */
export interface MessageSink {
  /** A Promise makes the engine stop reading until it settles (backpressure). */
  write(chunk: Buffer): void | Promise<void>;
  /** The final dot arrived: make it durable and give the reply (250 / 421 / 451). */
  end(size: number): Maybe<Reply>;
  /** The body will not be accepted (too big, timeout, connection lost): free everything. */
  abort(reason: 'too_big' | 'timeout' | 'closed' | 'error' | 'reset'): void;
}

export interface ReplyShape {
  /** Milliseconds to wait before the reply (tarpit). */
  delay?: number;
  /** Write the reply one byte per this many milliseconds (spamd stutter). */
  stutter?: number;
}

export interface CloseInfo {
  /** quit, timeout, limit, rejected, early_talk, nonsmtp, client_closed (a HANGUP), error, shutdown, tls_failed */
  reason: string;
  durationMs: number;
}

/**
 * go-smtp's Backend: asked once per connection for that session's hooks, so policy state
 * lives in a typed per-session object of the policy's own, never in the engine.
 */
export interface Backend {
  newSession(s: SessionInfo): SessionHooks;
}

/**
 * What connect() may return instead of an answer when it was given `resume`: the hook will
 * call resume.greetLater() exactly once (or never, if the session closes first). A fake MX
 * holds thousands of sessions in the banner delay; this way a held session costs no promise,
 * no reaction and no closures (~360 bytes each, measured with a heap snapshot).
 */
export const LATER: unique symbol = Symbol('fakemx.later');

export interface GreetResume {
  greetLater(reply: Reply | undefined): void;
}

export interface SessionHooks {
  /** After accept, before the greeting. May take time (banner delay, DNS lists): a promise,
   *  or LATER and one call of resume.greetLater() (only when resume is given).
   *  A reply ends the session (with a banner teaser: at the first command). */
  connect?(s: SessionInfo, resume?: GreetResume): Maybe<Reply | undefined> | typeof LATER;
  /** Input came when the client had to wait: before the greeting, or before the reply to a
   *  command that ends an RFC 2920 group. Return a reply to end the session with it. */
  earlyTalk?(s: SessionInfo, ev: EarlyTalkEvent): Reply | undefined;
  helo?(s: SessionInfo, name: string, extended: boolean): Maybe<Reply | undefined>;
  mail?(s: SessionInfo, from: Address, params: MailParams): Maybe<Reply | undefined>;
  rcpt?(s: SessionInfo, to: Address): Maybe<Reply | undefined>;
  /** DATA accepted by the engine: give a sink (354 follows) or a reply (e.g. 421 tempfail). */
  dataStart?(s: SessionInfo): Maybe<Reply | MessageSink>;
  /** A message over maxDataSize, declared at MAIL (RFC 1870 SIZE=) or found in its body: the
   *  reply to it, or undefined for 552 5.3.4 (a tempfail profile must never answer 5xx). */
  tooBig?(s: SessionInfo, at: 'MAIL' | 'data'): Reply | undefined;
  /** An AUTH exchange finished (RFC 4954): the reply to it (235, 535, 421...). Without this
   *  hook the engine answers 454 4.7.0 (no way to check credentials). */
  auth?(s: SessionInfo, attempt: AuthAttempt): Maybe<Reply | undefined>;
  /** Before any reply is written: tarpit delay and stutter. */
  shapeReply?(s: SessionInfo, reply: Reply): ReplyShape | undefined;
  /** Each command line received, as the client sent it (decoded; callers that log it must
   *  sanitize it), and each reply sent. */
  command?(s: SessionInfo, line: string): void;
  reply?(s: SessionInfo, reply: Reply): void;
  /** An engine-level verdict: TIMEOUT, LIMIT, NONSMTP, LINE_TOO_LONG, TLS_FAILED, HANGUP, SESSION_FAULT. */
  verdict?(s: SessionInfo, tag: string, details: Record<string, unknown>): void;
  /** STARTTLS completed; the session state was reset (RFC 3207 §4.2). */
  tls?(s: SessionInfo, info: TlsInfo): void;
  /** The session's last reply is written and the socket is being closed (it may still wait
   *  up to a few seconds for the client's FIN). Called once, before close. */
  closing?(s: SessionInfo): void;
  close?(s: SessionInfo, info: CloseInfo): void;
}
