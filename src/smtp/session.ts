// One SMTP session: the state machine, the command table, the DATA phase, STARTTLS and
// the reply writer (tarpit delay and stutter as writer properties, as spamd does). Policy
// is asked through SessionHooks only. Pipelined input is answered by one loop (pump), never
// one stack frame per command; every callback enters through one fault boundary (fail), so
// a fault costs this session a 421 and a close, never the process.

import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { DataReader } from './data-reader.js';
import type {
  Address, AuthAttempt, AuthMechanism, Backend, CloseInfo, EarlyTalkKind, GreetResume, MailParams, MessageSink, SessionCounts, SessionHooks, SessionInfo, TlsInfo,
} from './hooks.js';
import { LATER } from './hooks.js';
import { LineBuffer, TOO_LONG } from './line-buffer.js';
import { parseMailParams, parsePathArg, splitCommand, splitParams } from './parser.js';
import { closes, formatReply, replies, sendsEnhanced, teaserLine, type Reply } from './reply.js';
import { escapeBytes } from '../util/escape.js';
import { Roster } from '../util/roster.js';
import { tlsReason } from '../util/tls-reason.js';

/**
 * What every session of one listener shares (built once per listener and config, so a
 * held session carries a reference, not a copy).
 */
export interface SessionConfig {
  listener: string;
  hostName: string;
  receiveTimeout: number;
  maxLineLength: number;
  maxPendingInput: number;
  maxDataSize: number;
  /**
   * EHLO says SIZE without the number (RFC 1870 §4: no limit conveyed). For a tempfail
   * profile: a client told the limit refuses a bigger message itself, permanently (Postfix
   * bounces it with 5.3.4 before MAIL), where the fake MX must only ever defer it.
   */
  hideSizeLimit?: boolean;
  /** Longest a whole DATA phase may take, ms; 0 = only the idle limit. */
  dataTimeout: number;
  /** Longest a whole session may take, ms; 0 = no limit. */
  maxSessionTime: number;
  maxSmtpErrors: number;
  maxSmtpNoop: number;
  maxSmtpVrfy: number;
  maxSmtpRcpt: number;
  /**
   * RCPTs refused with 452 (over maxSmtpRcpt) or deferred by a hook's neutral 4xx (greylisting)
   * a session may send before it is cut (Postfix's overshoot limit).
   */
  maxRcptOvershoot: number;
  /** RSET, NOOP, HELP, VRFY, EXPN and repeated HELO/EHLO a session may send (Postfix's junk limit). */
  maxJunkCommands: number;
  maxMessages: number;
  advertisePipelining: boolean;
  bannerTeaser: boolean;
  /** STARTTLS offered when set and the session is not yet under TLS. */
  startTls?: { context: SecureContext; handshakeTimeout: number };
  /** Advertise CHUNKING and take BDAT (RFC 3030); off when absent. */
  chunking?: boolean;
  /** Advertise BINARYMIME too (RFC 3030 §3; only with chunking). */
  binaryMime?: boolean;
  /** AUTH (RFC 4954): the mechanisms offered, and whether before TLS too; absent = no AUTH. */
  auth?: { mechanisms: readonly AuthMechanism[]; plaintext: boolean };
}

/** What is particular to one connection. */
export interface Connection {
  id: string;
  remoteAddress: string;
  remotePort: number;
  /** Set when the socket is already a secured TLSSocket (implicit TLS, RFC 8314). */
  tls?: TlsInfo;
  /** Bytes that arrived before the session took the socket (after a PROXY header). */
  initialInput?: Buffer;
}

/**
 * The session's states; every change goes through Session.to(), which refuses a transition
 * not listed here (an impossible state is a fault: 421 and close).
 *  greeting: accepted, the connect hook (banner delay, DNS lists) has not answered yet
 *  ready:    waiting for a command line
 *  busy:     a command is being answered (hook, tarpit delay, stutter, write)
 *  data:     reading a message body (after 354)
 *  chunk:    reading the octets of one BDAT chunk (RFC 3030), before its reply
 *  storing:  the final dot arrived; the sink is making the message durable
 *  tls:      STARTTLS handshake
 *  closing:  the last reply is written; waiting for the peer's FIN (after a 421), or the
 *            socket is being destroyed (after the 221 to QUIT on a plain socket)
 *  closed:   the socket is gone
 */
export type State = 'greeting' | 'ready' | 'busy' | 'data' | 'chunk' | 'storing' | 'tls' | 'closing' | 'closed';
const TRANSITIONS: Record<State, readonly State[]> = {
  greeting: ['ready', 'busy', 'closing', 'closed'],
  ready: ['busy', 'closing', 'closed'],
  busy: ['busy', 'ready', 'data', 'chunk', 'tls', 'closing', 'closed'],
  data: ['storing', 'busy', 'closing', 'closed'],
  chunk: ['storing', 'busy', 'closing', 'closed'],
  storing: ['busy', 'closing', 'closed'],
  tls: ['ready', 'busy', 'closing', 'closed'],
  closing: ['closed'],
  closed: [],
};
// The table as bit masks, checked on every transition (several per command): two property
// loads and an AND instead of a search of an array.
const STATE_BIT = Object.fromEntries(Object.keys(TRANSITIONS).map((k, i) => [k, 1 << i])) as Record<State, number>;
const ALLOWED_TO = Object.fromEntries(
  Object.entries(TRANSITIONS).map(([k, to]) => [k, to.reduce((m, t) => m | STATE_BIT[t], 0)]),
) as Record<State, number>;

/** Whether the session may go from one state to another (the table above). */
export function canTransition(from: State, next: State): boolean {
  return (ALLOWED_TO[from] & STATE_BIT[next]) !== 0;
}

/** Bit flags of early-talk kinds already reported (one verdict per kind per session). */
const EARLY_BIT: Record<EarlyTalkKind, number> = { pregreet: 1, pipelining: 2 };

// Socket listeners are shared functions that find their session through this symbol, so a
// held session costs no closures of its own.
const SESSION = Symbol('fakemx.session');
type OwnedSocket = Socket & { [SESSION]?: Session };
function onSocketData(this: OwnedSocket, c: Buffer): void {
  this[SESSION]?.input(c);
}
function onSocketEnd(this: OwnedSocket): void {
  this[SESSION]?.event('end');
}
function onSocketClose(this: OwnedSocket): void {
  this[SESSION]?.event('close');
}
function onSocketDrain(this: OwnedSocket): void {
  this[SESSION]?.event('drain');
}
function onSocketError(): void {
  /* the 'close' event follows; nothing a peer does may crash the process */
}

type Handler = (s: Session, args: string, eightBit: boolean) => Reply | Promise<Reply> | null;

// RFC 2920 §3.1: these end a pipelined group; the client must wait for their reply.
const GROUP_END = new Set(['EHLO', 'HELO', 'DATA', 'VRFY', 'EXPN', 'NOOP', 'QUIT', 'TURN']);
/**
 * RFC 4954 §4 (under RFC 2920 §3.1's rule that an extension's commands end a group unless it
 * says otherwise): AUTH is the last command of a pipelined group, and nothing may follow it
 * before its final reply; so is each response line of its exchange, sent only after a 334.
 * The one exception: an initial response for a mechanism that completes in one round trip
 * with the client sending first, i.e. PLAIN (EXTERNAL is not offered). A LOGIN initial
 * response still awaits "Password:".
 */
const AUTH_ONE_TRIP = /^PLAIN +\S/i;
const HTTP_VERB = /^(GET|POST|HEAD|CONNECT|PUT|OPTIONS|DELETE) /;
const EIGHT_BIT = /[\x80-\xff]/;
/** AUTH with an initial response (credentials): masked before the command log sees it. */
const AUTH_WITH_RESPONSE = /^AUTH +\S+ +\S/i;
const utf8 = new TextDecoder('utf-8', { fatal: true });
/** How long a closing socket may linger for its FIN before it is destroyed. */
const LINGER_MS = 5000;
/** RFC 4954 §4: an AUTH exchange line may be far longer than a command line (12288 octets). */
const AUTH_LINE_MAX = 12_288;
/** A BDAT argument: the chunk size (digits; 15 keep it an exact number) and an optional LAST (RFC 3030 §2). */
const BDAT_ARGS = /^([0-9]{1,15})(?: +(LAST))? *$/i;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** One BDAT chunk being read, and the message's octets so far (RFC 3030). */
interface ChunkState {
  /** Octets of the chunk still to read. */
  left: number;
  /** It is the LAST chunk. */
  last: boolean;
  /** Its declared size. */
  size: number;
  /** The reply it gets once read, decided before it (sequence error, refused transaction):
   *  its octets are read and dropped (RFC 3030 §2). */
  reply: Reply | null;
  /** Octets of the message so far (what maxDataSize is held to). */
  total: number;
}
/** The empty recipient list every session starts with (frozen: shared by all of them). */
const NO_RCPTS = Object.freeze([]) as unknown as Address[];

/**
 * Per listener config (a SessionConfig is frozen and shared by its sessions): the greeting
 * as a Reply and as the octets on the wire, and the EHLO keywords, built once, not per session.
 */
interface Prepared {
  greeting: { reply: Reply; text: string } | undefined;
  ext: [readonly string[] | undefined, readonly string[] | undefined];
}
const prepared = new WeakMap<SessionConfig, Prepared>();
function preparedFor(opts: SessionConfig): Prepared {
  let p = prepared.get(opts);
  if (!p) prepared.set(opts, (p = { greeting: undefined, ext: [undefined, undefined] }));
  return p;
}
function greetingFor(opts: SessionConfig): { reply: Reply; text: string } {
  const p = preparedFor(opts);
  if (!p.greeting) {
    const reply = replies.greeting(opts.hostName);
    // A 220 greeting carries no enhanced code (RFC 2034 ties them to EHLO).
    p.greeting = { reply, text: formatReply(reply, false) };
  }
  return p.greeting;
}
/** Whether EHLO lists AUTH. RFC 4954 §3 / RFC 3207: plaintext mechanisms only once the channel is encrypted, unless allowed. */
function authOffered(opts: SessionConfig, secure: boolean): boolean {
  return opts.auth !== undefined && opts.auth.mechanisms.length > 0 && (secure || opts.auth.plaintext);
}
function extensionsFor(opts: SessionConfig, secure: boolean): readonly string[] {
  const p = preparedFor(opts);
  const i = secure ? 1 : 0;
  let ext = p.ext[i];
  if (!ext) {
    const e = [opts.hideSizeLimit ? 'SIZE' : `SIZE ${opts.maxDataSize}`, '8BITMIME'];
    if (opts.advertisePipelining) e.push('PIPELINING');
    e.push('ENHANCEDSTATUSCODES', 'SMTPUTF8');
    if (opts.startTls && !secure) e.push('STARTTLS');
    if (opts.auth && authOffered(opts, secure)) e.push(`AUTH ${opts.auth.mechanisms.join(' ')}`);
    if (opts.chunking) {
      e.push('CHUNKING');
      if (opts.binaryMime) e.push('BINARYMIME');
    }
    p.ext[i] = ext = Object.freeze(e);
  }
  return ext;
}

/**
 * The session-time limit without a timer per session: sessions sharing a limit sit in one
 * roster in the order they opened, which is their deadline order, so a sweep stops at the
 * first session still in time. One unref'd interval runs only while such sessions exist.
 */
const SWEEP_MS = 250;
const SWEEP = Symbol('fakemx.session.sweep');
const byLimit = new Map<number, Roster<Session>>();
let sweeper: NodeJS.Timeout | null = null;
function sweep(): void {
  const now = Date.now();
  for (const [limit, due] of byLimit) {
    for (let s = due.first(); s && now - s.openedAt > limit; s = due.first()) {
      due.delete(s);
      s.expire();
    }
    if (due.size === 0) byLimit.delete(limit);
  }
  if (byLimit.size === 0 && sweeper) {
    clearInterval(sweeper);
    sweeper = null;
  }
}
function watch(s: Session, limit: number): void {
  let due = byLimit.get(limit);
  if (!due) byLimit.set(limit, (due = new Roster(SWEEP)));
  due.add(s);
  if (!sweeper) {
    sweeper = setInterval(sweep, Math.min(SWEEP_MS, Math.max(10, limit >> 2)));
    sweeper.unref();
  }
}
function unwatch(s: Session, limit: number): void {
  byLimit.get(limit)?.delete(s);
}

export class Session implements SessionInfo, GreetResume {
  readonly id: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** The socket's own address, read on first use (getsockname is a syscall most sessions never need). */
  get localAddress(): string {
    this.local ??= { address: this.sock.localAddress ?? '', port: this.sock.localPort ?? 0 };
    return this.local.address;
  }
  get localPort(): number {
    void this.localAddress;
    return this.local!.port;
  }
  private local: { address: string; port: number } | undefined;
  readonly listener: string;
  readonly openedAt = Date.now();
  readonly counts: SessionCounts = { commands: 0, errors: 0, noop: 0, vrfy: 0, rcpt: 0, messages: 0, junk: 0, overshoot: 0, deferred: 0 };
  helo: string | undefined;
  esmtp = false;
  tls: TlsInfo | undefined;
  mailFrom: Address | undefined;
  mailParams: MailParams | undefined;
  /** Shared and frozen while empty (a held session allocates no list); RCPT starts a fresh one. */
  rcptTo: Address[] = NO_RCPTS;
  transfer: 'DATA' | 'BDAT' | undefined = undefined;
  chunks = 0;

  private sock: Socket;
  private readonly hooks: SessionHooks;
  private st: State = 'greeting';
  private readonly lines = new LineBuffer();
  /** pump() is on the stack: a reply finished inside it lets the loop go on, no new frame. */
  private pumping = false;
  private seenInput = false;
  private clientEnded = false;
  /** Verb whose reply the client must wait for (RFC 2920), or null. */
  private mustWait: string | null = null;
  private earlyReported = 0;
  /** A rejection decided before the greeting finished (teaser): given at the first command. */
  private pendingReject: Reply | null = null;
  private data: DataReader | null = null;
  private sink: MessageSink | null = null;
  private sinkFailed = false;
  /** BDAT state, made at the first BDAT of the session (a held session carries one null). */
  private bx: ChunkState | null = null;
  /** An AUTH exchange waiting for the client's next line (RFC 4954 §4), or null. */
  private authX: { mech: AuthMechanism; initial: boolean; user: string | undefined; userOctets?: Buffer; challenge: string } | null = null;
  /** An AUTH succeeded (a hook answered 235): a second AUTH is 503 (RFC 4954 §4). */
  private authenticated = false;
  /** A sink write in progress: the socket stays paused until it settles. */
  private sinkWait: Promise<void> | null = null;
  /** The receive timer while it is scheduled (null once it fired or was cleared); at most one expiry per receiveTimeout however busy the session is. */
  private ioTimer: NodeJS.Timeout | null = null;
  private ioTimerArmed = false;
  /** When the current idle wait began (Date.now()): moved by each arm and by body input, with no timer call. */
  private ioSince = 0;
  private delayTimer: NodeJS.Timeout | null = null;
  /** Bounds how long a closing socket waits for the peer's FIN; cleared on close so the
   *  session is not kept reachable for LINGER_MS after it ended. */
  private lingerTimer: NodeJS.Timeout | null = null;
  /** Date.now() after which the DATA phase is over (dataTimeout); 0 = none. */
  private dataDeadline = 0;
  private closeReason = 'client_closed';
  private closedNotified = false;

  constructor(
    socket: Socket,
    conn: Connection,
    private readonly opts: SessionConfig,
    backend: Backend,
  ) {
    this.sock = socket;
    this.id = conn.id;
    this.listener = opts.listener;
    this.remoteAddress = conn.remoteAddress;
    this.remotePort = conn.remotePort;
    this.tls = conn.tls;
    this.hooks = backend.newSession(this);
    this.attach(socket);
    if (opts.maxSessionTime > 0) watch(this, opts.maxSessionTime);
    // A socket handed over paused (the PROXY header reader pauses it) must flow again.
    if (socket.isPaused()) socket.resume();
    if (conn.initialInput && conn.initialInput.length > 0) this.input(conn.initialInput);
  }

  get secure(): boolean {
    return this.tls !== undefined;
  }

  /** The current state (tests and the server's session table read it). */
  get phase(): State {
    return this.st;
  }

  /** Begin: optional teaser line, then the connect hook, then the greeting. */
  start(): void {
    if (this.st !== 'greeting') return;
    try {
      if (this.opts.bannerTeaser) this.sock.write(teaserLine(this.opts.hostName));
      const r = this.hooks.connect?.(this, this);
      if (r === LATER) return; // the hook calls greetLater()
      if (r instanceof Promise) r.then((x) => this.greetLater(x), (e) => this.fail(e));
      else this.greet(r);
    } catch (e) {
      this.fail(e);
    }
  }

  /** The connect hook answered later (banner delay, DNS lists): GreetResume. */
  greetLater(x: Reply | undefined): void {
    try {
      this.greet(x);
    } catch (e) {
      this.fail(e);
    }
  }

  /** Tell a waiting client that the server is going away (SIGTERM); it happens at its next command. */
  shutdown(): void {
    if (this.ended()) return;
    this.pendingReject = replies.shuttingDown(this.opts.hostName);
    this.closeReason = 'shutdown';
  }

  /**
   * Close at once (grace ran out). RFC 5321 §3.8: a server shut down by external means SHOULD
   * try to send a 421 first. It is sent where a reply may start now (the client waits for a
   * command's or the message's answer, or for the greeting) and only if it goes straight to the
   * kernel: nothing queued before it (a client that does not read gets no wait), never into a
   * stuttered reply or a TLS handshake.
   */
  destroy(reason = 'shutdown'): void {
    if (this.st === 'closed') return;
    this.closeReason = reason;
    const mayReply = this.st === 'ready' || this.st === 'data' || this.st === 'chunk' || (this.st === 'greeting' && !this.opts.bannerTeaser);
    if (reason === 'shutdown' && mayReply && this.sock.writable && this.sock.writableLength === 0) {
      this.writeReply(replies.shuttingDown(this.opts.hostName));
    }
    this.sock.destroy();
  }

  /** A closing session's socket, let go now rather than after LINGER_MS for the client's FIN (its last reply is already written). */
  hangUp(): void {
    if (this.st === 'closing') this.sock.destroy();
  }

  /** maxSessionTime has passed (called by the sweep): 421 and close. */
  expire(): void {
    this.guard(() => {
      if (this.ended()) return;
      if (this.st === 'storing') {
        // A message being made durable is answered first; the 421 comes at the next command.
        this.hooks.verdict?.(this, 'LIMIT', { limit: 'session time', max: this.opts.maxSessionTime });
        this.closeReason = 'limit';
        this.pendingReject = replies.sessionTooLong(this.opts.hostName);
        return;
      }
      if (this.st === 'tls') {
        this.closeReason = 'limit';
        this.sock.destroy();
        return;
      }
      this.hooks.verdict?.(this, 'LIMIT', { limit: 'session time', max: this.opts.maxSessionTime });
      this.closeReason = 'limit';
      this.interrupt(replies.sessionTooLong(this.opts.hostName));
    });
  }

  // ---- the fault boundary -------------------------------------------------------------

  /** Socket input. */
  input(chunk: Buffer): void {
    try {
      this.onData(chunk);
    } catch (e) {
      this.fail(e);
    }
  }

  /** Socket end/close/drain. */
  event(kind: 'end' | 'close' | 'drain'): void {
    try {
      if (kind === 'end') this.onEnd();
      else if (kind === 'close') this.onClose();
      else this.onDrain();
    } catch (e) {
      this.fail(e);
    }
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.fail(e);
    }
  }

  /**
   * Every fault of this session ends here: SESSION_FAULT with the stack, 421 4.3.0, close.
   * Never throws: a fault while reporting a fault destroys the socket.
   */
  private fail(e: unknown): void {
    try {
      const err = e instanceof Error ? e : new Error(String(e));
      this.hooks.verdict?.(this, 'SESSION_FAULT', { error: err.message, stack: err.stack ?? '', state: this.st });
      if (this.st === 'closed') return;
      this.closeReason = 'error';
      if (this.st === 'closing') {
        this.sock.destroy();
        return;
      }
      this.interrupt(replies.internalError(this.opts.hostName));
    } catch {
      try {
        this.sock.destroy();
      } catch {
        /* nothing more can be done for this session */
      }
    }
  }

  /** Drop whatever the session was doing and answer `r` (a closing reply) now. */
  private interrupt(r: Reply): void {
    this.abortSink(this.closeReason === 'timeout' ? 'timeout' : 'error');
    if (this.delayTimer) clearTimeout(this.delayTimer);
    this.delayTimer = null;
    this.lines.clear();
    // RFC 5321 §4.2.1: a "220-" teaser line is finished with its final line before anything else.
    if (this.st === 'greeting' && this.opts.bannerTeaser) this.writeReply(replies.greeting(this.opts.hostName));
    this.st = 'busy'; // from any live state: the one transition that bypasses the table
    this.respondTo(r);
  }

  private to(next: State): void {
    if (!canTransition(this.st, next)) throw new Error(`impossible transition ${this.st} -> ${next}`);
    this.st = next;
  }

  /** Read through a method so TypeScript does not narrow across calls that change it. */
  private ended(): boolean {
    return this.st === 'closed' || this.st === 'closing';
  }

  // ---- socket plumbing ----------------------------------------------------------------

  private attach(socket: Socket): void {
    (socket as OwnedSocket)[SESSION] = this;
    socket.on('data', onSocketData);
    socket.on('end', onSocketEnd);
    // One error listener is enough to keep a peer's reset from crashing the process; the
    // Listener already added one to every socket it accepts (a STARTTLS socket has none).
    if (socket.listenerCount('error') === 0) socket.on('error', onSocketError);
    socket.on('close', onSocketClose);
    socket.on('drain', onSocketDrain);
  }

  /**
   * Read only while there is room: pending command input within maxPendingInput and no
   * sink write outstanding. The one place the socket is paused or resumed.
   */
  private flow(): void {
    if (this.ended() || this.st === 'tls') return;
    // Ready with no whole line waiting, what is held is part of one line, which next() bounds by
    // the line limit (it drops a longer line): reading on is the only way it ends. Paused there
    // (maxPendingInput below maxLineLength, or below 12,288 in an AUTH exchange), a line within
    // its limit that came in pieces was left unread until receiveTimeout.
    const room = this.sinkWait === null && (this.lines.bytes <= this.opts.maxPendingInput || (this.st === 'ready' && !this.lines.hasLine()));
    if (room && this.sock.isPaused()) this.sock.resume();
    else if (!room && !this.sock.isPaused()) this.sock.pause();
  }

  private onData(chunk: Buffer): void {
    if (this.ended()) return;
    if (this.st === 'tls') return; // RFC 3207 §5 / CVE-2011-0411: plaintext after STARTTLS is dropped
    if (!this.seenInput) {
      this.seenInput = true;
      // A TLS ClientHello (handshake record 0x16, version 3.x) on a plaintext port.
      if (!this.tls && chunk.length >= 2 && chunk[0] === 0x16 && chunk[1] === 0x03) return this.nonSmtp('tls_client_hello', chunk);
    }
    if (this.st === 'data') return this.onBody(chunk);
    if (this.st === 'chunk') return this.onChunk(chunk);
    this.lines.push(chunk);
    if (this.st === 'greeting') {
      this.early('pregreet', chunk);
      if (this.st !== 'greeting') return;
    } else if ((this.st === 'busy' || this.st === 'storing') && this.mustWait !== null) {
      this.early('pipelining', chunk, this.mustWait);
      if (this.ended()) return;
    }
    if (this.st === 'ready') this.pump();
    else this.flow();
  }

  private early(kind: EarlyTalkKind, chunk: Buffer, after?: string): void {
    if (this.earlyReported & EARLY_BIT[kind] || !this.hooks.earlyTalk) return;
    this.earlyReported |= EARLY_BIT[kind];
    // Input behind AUTH is read as the exchange's responses, i.e. credentials: like the
    // command log, the verdict's sample keeps only the shape (one "*" per line), never them.
    const head = chunk.subarray(0, 100);
    const sample = after === 'AUTH' ? Buffer.from(head.toString('latin1').replace(/[^\r\n]+/g, '*'), 'latin1') : Buffer.from(head);
    const ev = { kind, afterMs: Date.now() - this.openedAt, sample, ...(after ? { after } : {}) };
    const r = this.hooks.earlyTalk(this, ev);
    if (!r) return;
    this.closeReason = 'early_talk';
    if ((this.st === 'greeting' && this.opts.bannerTeaser) || this.st === 'storing') {
      // Never a 4xx/5xx straight after "220-": finish the greeting, reject at the first command.
      // A message being made durable is answered first (its 250 is true), as expire() does.
      this.pendingReject = r;
      return;
    }
    this.lines.clear();
    this.st = 'busy';
    this.respondTo(r);
  }

  /** The client sent FIN. A hang-up frees the session at once; queued commands are still answered. */
  private onEnd(): void {
    this.clientEnded = true;
    switch (this.st) {
      case 'ready':
        if (!this.lines.hasLine()) this.sock.destroy();
        return;
      case 'busy':
        // Waiting out a tarpit delay for a client that is gone costs a slot for nothing.
        if (this.delayTimer) this.sock.destroy();
        return;
      case 'storing':
        return; // the message in flight is stored and answered, or neither: the store decides
      case 'data':
      case 'chunk':
        // The final dot (or the rest of the chunk) can no longer come: the message is incomplete.
        this.abortSink('closed');
        this.sock.destroy();
        return;
      case 'greeting':
      case 'tls':
        this.sock.destroy();
        return;
      default:
    }
  }

  private onClose(): void {
    if (this.st === 'closed') return;
    const was = this.st;
    this.st = 'closed';
    this.clearTimers();
    if (this.opts.maxSessionTime > 0) unwatch(this, this.opts.maxSessionTime);
    this.abortSink('closed');
    this.lines.clear();
    if (this.closedNotified) return;
    this.closedNotified = true;
    const durationMs = Date.now() - this.openedAt;
    // postscreen's HANGUP: the client left without QUIT and before any verdict closed it.
    if (this.closeReason === 'client_closed') {
      this.hooks.verdict?.(this, 'HANGUP', { phase: was, afterMs: durationMs });
    }
    const info: CloseInfo = { reason: this.closeReason, durationMs };
    this.hooks.close?.(this, info);
  }

  private onDrain(): void {
    this.disarmIoTimer();
    if (this.st === 'ready') this.pump();
  }

  private clearTimers(): void {
    if (this.ioTimer) clearTimeout(this.ioTimer);
    if (this.delayTimer) clearTimeout(this.delayTimer);
    if (this.lingerTimer && this.st === 'closed') clearTimeout(this.lingerTimer);
    this.ioTimer = this.delayTimer = null;
    this.ioTimerArmed = false;
  }

  /**
   * The receive timeout is a deadline checked lazily: arming records the time the wait began,
   * and the one timer, once scheduled, is left alone. When it fires early (the session was
   * busy meanwhile) it is scheduled again for what is left. Re-arming a libuv timer for every
   * command (refresh(): a timer-list insert and a clock read in C++) cost about 1 µs per
   * command, several per connection (bench/RESULTS.md, Round 13).
   */
  private armIoTimer(): void {
    if (!this.ioTimerArmed) this.restartIoWait();
  }

  /** Armed, with the idle wait starting now: also for each piece of a body or chunk (receiveTimeout bounds gaps). */
  private restartIoWait(): void {
    this.ioTimerArmed = true;
    this.ioSince = Date.now();
    if (this.ioTimer === null) this.scheduleIo(this.opts.receiveTimeout);
  }

  private scheduleIo(ms: number): void {
    this.ioTimer = setTimeout(() => this.guard(() => this.ioExpired()), ms);
  }

  private ioExpired(): void {
    this.ioTimer = null;
    // Disarmed: nothing is awaited now; the next arm schedules anew.
    if (!this.ioTimerArmed) return;
    const idle = Date.now() - this.ioSince;
    // A clock stepped back (idle < 0) restarts the wait rather than ending it.
    if (idle < this.opts.receiveTimeout) return this.scheduleIo(idle < 0 ? this.opts.receiveTimeout : this.opts.receiveTimeout - idle);
    this.onTimeout();
  }

  /** Disarming only lowers the flag: an expiry of a disarmed timer does nothing (ioExpired). */
  private disarmIoTimer(): void {
    this.ioTimerArmed = false;
  }

  private onTimeout(total = false): void {
    if (!this.ioTimerArmed && !total) return;
    this.ioTimerArmed = false;
    if (this.ended()) return;
    if (this.sock.writableLength > 0 && this.st === 'ready') {
      // A client that stopped reading our replies: nothing more to say to it.
      this.closeReason = 'timeout';
      this.hooks.verdict?.(this, 'TIMEOUT', { phase: 'write' });
      this.sock.destroy();
      return;
    }
    const phase = total ? 'data_total' : this.st === 'data' ? 'data' : this.st === 'chunk' ? 'bdat' : 'command';
    this.hooks.verdict?.(this, 'TIMEOUT', { phase });
    this.closeReason = 'timeout';
    this.interrupt(replies.timeout(this.opts.hostName));
  }

  private nonSmtp(kind: string, sample: Buffer): void {
    this.hooks.verdict?.(this, 'NONSMTP', { kind, sample: escapeBytes(sample.subarray(0, 100)) });
    this.closeReason = 'nonsmtp';
    this.interrupt(replies.nonSmtp());
  }

  // ---- greeting -----------------------------------------------------------------------

  private greet(reject: Reply | undefined): void {
    if (this.st !== 'greeting') return;
    if (reject) {
      this.closeReason = 'rejected';
      // A connect-time rejection always ends the session.
      const r = { ...reject, close: true };
      if (!this.opts.bannerTeaser) {
        this.to('busy');
        return this.respondTo(r);
      }
      this.pendingReject = r;
    }
    // The teaser already sent "220-host"; only the last line is left.
    const g = greetingFor(this.opts);
    this.sock.write(g.text);
    this.hooks.reply?.(this, g.reply);
    this.to('ready');
    this.pump();
  }

  // ---- command input ------------------------------------------------------------------

  /**
   * Answer waiting command lines, one after another, in this loop: a handler that answers
   * at once returns here through afterReply(), which sees `pumping` and adds no frame. Stops
   * when the client must wait for us, when our replies are not being read (backpressure), or
   * when no whole line is left.
   */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    const sock = this.sock;
    // Cork only when more input waits behind the line being answered (a pipelined group):
    // its replies leave in one write. One command alone is written at once, uncorked.
    let corked = false;
    try {
      while (this.st === 'ready') {
        if (this.sock.writableNeedDrain) {
          // Backpressure: a client that does not read gets no further replies queued.
          this.armIoTimer();
          break;
        }
        const line = this.lines.next(this.authX ? Math.max(AUTH_LINE_MAX, this.opts.maxLineLength) : this.opts.maxLineLength);
        if (line === null) {
          if (this.clientEnded) {
            this.sock.destroy();
            break;
          }
          this.armIoTimer();
          break;
        }
        this.disarmIoTimer();
        if (!corked && this.lines.bytes > 0) {
          corked = true;
          sock.cork();
        }
        if (line === TOO_LONG && this.authX) {
          // RFC 4954 §4: an over-long exchange line fails the AUTH command.
          this.authX = null;
          this.to('busy');
          this.respondTo(replies.authLineTooLong());
          continue;
        }
        if (line === TOO_LONG) {
          this.to('busy');
          this.hooks.verdict?.(this, 'LINE_TOO_LONG', {});
          this.respondTo(replies.lineTooLong());
          continue;
        }
        this.handleLine(line);
      }
    } finally {
      this.pumping = false;
      if (corked) sock.uncork();
    }
    this.flow();
  }

  private handleLine(raw: Buffer): void {
    this.counts.commands++;
    if (this.authX) return this.authLine(raw);
    let line = raw.toString('latin1');
    const eightBit = EIGHT_BIT.test(line);
    if (eightBit) {
      try {
        line = utf8.decode(raw);
      } catch {
        // Not UTF-8 (bots' binary junk): logged with its bytes escaped, then refused, unless a
        // rejection is already decided: that answers junk too, or junk would put it off.
        this.logCommand(escapeBytes(raw));
        if (!this.rejectPending()) this.command(line, null, '', false);
        return;
      }
    }
    if (this.counts.commands === 1 && HTTP_VERB.test(line)) return this.nonSmtp('http', raw);
    this.logCommand(line);
    if (this.rejectPending()) return;
    const { verb, args } = splitCommand(line);
    const handler = COMMANDS.get(verb);
    // RFC 5321 §4.2.4: unknown commands get 500; 8-bit bytes only inside SMTPUTF8 paths.
    if (!handler || (eightBit && verb !== 'MAIL' && verb !== 'RCPT')) return this.command(verb, null, '', false);
    this.command(verb, handler, args, eightBit);
  }

  /** A rejection decided before this line (teaser, shutdown) is its answer, whatever the line. */
  private rejectPending(): boolean {
    const r = this.pendingReject;
    if (!r) return false;
    this.pendingReject = null;
    this.to('busy');
    this.respondTo(r);
    return true;
  }

  /** Whether the client must wait for this command's reply before sending more (RFC 2920 §3.1). */
  private mustWaitFor(verb: string, handler: Handler | null, args: string): boolean {
    // RFC 3030 §2: a chunk's octets follow BDAT in the same write; they are not early talk.
    // The wait rule applies once the chunk is read (chunkWaitRule).
    if (verb === 'BDAT' && this.opts.chunking) return false;
    // Without PIPELINING offered and taken (EHLO), every command ends its own group.
    if (!this.esmtp || !this.opts.advertisePipelining || GROUP_END.has(verb)) return true;
    // AUTH and each line of its exchange end a group, but PLAIN with an initial response.
    return verb === 'AUTH' && (handler === authContinue || !AUTH_ONE_TRIP.test(args.trim()));
  }

  /** Run one command's handler (null: unknown command) and send its reply; RFC 2920 wait rules apply meanwhile. */
  private command(verb: string, handler: Handler | null, args: string, eightBit: boolean): void {
    this.to('busy');
    this.mustWait = this.mustWaitFor(verb, handler, args) ? verb : null;
    if (this.mustWait !== null && this.lines.bytes > 0) {
      this.early('pipelining', this.lines.peek(100), verb);
      if (this.st !== 'busy' || this.ended()) return;
    }
    let r: Reply | Promise<Reply> | null;
    try {
      r = handler ? handler(this, args, eightBit) : replies.unknownCommand();
    } catch (e) {
      return this.fail(e);
    }
    if (r === null) return; // the handler took over (STARTTLS)
    if (r instanceof Promise) r.then((x) => this.guard(() => this.respondTo(x)), (e) => this.fail(e));
    else this.respondTo(r);
  }

  // ---- replies --------------------------------------------------------------------------

  /** Count, limit, shape (tarpit) and write a reply, then go on with the input. */
  respondTo(reply: Reply): void {
    if (this.st !== 'busy') return; // a late hook answer for a session that moved on
    let r = reply;
    if (r.code >= 400 && !closes(r) && !r.neutral) {
      this.counts.errors++;
      if (this.counts.errors > this.opts.maxSmtpErrors) r = this.limit('errors');
    }
    const shape = closes(r) ? undefined : this.hooks.shapeReply?.(this, r);
    if (shape?.delay && shape.delay > 0) {
      this.delayTimer = setTimeout(() => this.guard(() => this.emit(r, shape.stutter)), shape.delay);
    } else {
      this.emit(r, shape?.stutter);
    }
  }

  limit(what: string): Reply {
    this.hooks.verdict?.(this, 'LIMIT', { limit: what });
    this.closeReason = 'limit';
    return replies.limit(what);
  }

  /**
   * A hook's answer to RCPT, DATA or a first BDAT. A neutral 4xx (greylisting, a state store
   * down with state.onError tempfail) is not the client's fault, so it is no error and not
   * tarpitted; but each one costs a state write and a log line, so deferrals share the
   * recipient overshoot budget (maxRcptOvershoot) with the 452s: past it, 421 and close.
   */
  deferral(r: Reply): Reply {
    if (r.code < 400 || !r.neutral || closes(r)) return r;
    return ++this.counts.deferred + this.counts.overshoot > this.opts.maxRcptOvershoot ? this.limit('recipients') : r;
  }

  /** Count a junk command (Postfix's smtpd_junk_command_limit); the 421 when over the limit. */
  junk(): Reply | null {
    return ++this.counts.junk > this.opts.maxJunkCommands ? this.limit('junk commands') : null;
  }

  private emit(r: Reply, stutter: number | undefined): void {
    this.delayTimer = null;
    if (this.st !== 'busy') return;
    if (stutter && stutter > 0) return this.stutter(r, Buffer.from(formatReply(r, this.enhanced(r))), 0, stutter);
    this.writeReply(r);
    this.afterReply(r);
  }

  /** spamd's tarpit: one byte per interval, one timer at a time. */
  private stutter(r: Reply, bytes: Buffer, at: number, every: number): void {
    this.delayTimer = null;
    if (this.st !== 'busy') return;
    this.sock.write(bytes.subarray(at, at + 1));
    if (at + 1 >= bytes.length) {
      this.hooks.reply?.(this, r);
      return this.afterReply(r);
    }
    this.delayTimer = setTimeout(() => this.guard(() => this.stutter(r, bytes, at + 1, every)), every);
  }

  /**
   * RFC 2034 §3 ties enhanced codes to EHLO; a connection-ending reply carries one even
   * before HELO (as Postfix and postscreen do), since it may be the only reply a client sees.
   */
  private enhanced(r: Reply): boolean {
    return sendsEnhanced(this.helo, r);
  }

  private writeReply(r: Reply): void {
    this.sock.write(formatReply(r, this.enhanced(r)));
    this.hooks.reply?.(this, r);
  }

  private afterReply(r: Reply): void {
    this.mustWait = null;
    if (closes(r)) {
      if (r.outcome) this.closeReason = r.outcome;
      else if (this.closeReason === 'client_closed') this.closeReason = 'server_closed';
      return this.closeSoon();
    }
    if (r.code === 354) return this.enterData();
    this.to('ready');
    // Inside pump() the loop takes the next line; otherwise (a hook or timer answered) start it.
    if (!this.pumping) this.pump();
  }

  private closeSoon(): void {
    this.to('closing');
    this.hooks.closing?.(this);
    this.clearTimers();
    this.lines.clear();
    this.abortSink('closed');
    // A client that already closed its side (QUIT then FIN) gets no shutdown(): it would
    // fail with ENOTCONN. Nothing is lost: replies are written straight to the kernel.
    if (this.clientEnded && this.sock.writableLength === 0) {
      this.sock.destroy();
      return;
    }
    // After the 221 to QUIT (RFC 5321 §4.1.1.10: we may close once QUIT is answered) a plain
    // socket is closed at once, as Postfix's smtpd does: the 221 is already in the kernel,
    // which sends it before the FIN. QUIT ends a pipelined group (RFC 2920 §3.1), so a client
    // owes us nothing more; one that sends on anyway gets a reset for it, after its 221.
    // Waiting for the client's FIN instead made every session pay a shutdown() and, from
    // clients that close with the 221 unread (smtp-source does), a read error built with a
    // stack trace: ~30 µs of a connection's ~230 (bench/RESULTS.md, Round 8). A 421 still
    // waits (the client may be mid-send), and TLS keeps end(), which sends close_notify.
    if (this.closeReason === 'quit' && this.tls === undefined && this.sock.writableLength === 0) {
      this.sock.destroy();
      return;
    }
    this.sock.end();
    // The peer may never send its FIN: do not keep the descriptor for it.
    this.lingerTimer = setTimeout(() => this.sock.destroy(), LINGER_MS);
    this.lingerTimer.unref();
  }

  // ---- envelope -----------------------------------------------------------------------

  resetEnvelope(): void {
    this.mailFrom = undefined;
    this.mailParams = undefined;
    this.rcptTo = NO_RCPTS;
    if (this.transfer !== undefined) {
      // RFC 3030 §4: RSET (or a new EHLO) between chunks drops the chunks received so far.
      if (this.sink) this.abortSink('reset');
      this.transfer = undefined;
      this.chunks = 0;
      if (this.bx) this.bx.total = 0;
      this.sinkFailed = false;
    }
  }

  /** Ask a hook; `dflt` when it has no opinion. */
  ask(r: Reply | undefined | Promise<Reply | undefined>, dflt: () => Reply): Reply | Promise<Reply> {
    if (r instanceof Promise) return r.then((x) => x ?? dflt());
    return r ?? dflt();
  }

  ehloExtensions(): string[] {
    return [...extensionsFor(this.opts, this.tls !== undefined)];
  }

  get options(): Readonly<SessionConfig> {
    return this.opts;
  }

  get sessionHooks(): SessionHooks {
    return this.hooks;
  }

  /** The reply to a message over maxDataSize: the policy's (a tempfail), else 552 5.3.4. */
  tooBig(at: 'MAIL' | 'data'): Reply {
    return this.hooks.tooBig?.(this, at) ?? replies.tooBig();
  }

  // ---- DATA -----------------------------------------------------------------------------

  beginData(sink: MessageSink): Reply {
    this.data = new DataReader();
    this.sink = sink;
    this.sinkFailed = false;
    return replies.startData();
  }

  /** After the 354: input already waiting (pipelined with DATA) is the start of the body. */
  private enterData(): void {
    this.to('data');
    this.dataDeadline = this.opts.dataTimeout > 0 ? Date.now() + this.opts.dataTimeout : 0;
    this.armIoTimer();
    // One copy of at most maxPendingInput octets, so the body reader sees the input in order
    // even when the message ends inside it and the rest goes back to the command queue.
    const waiting = this.lines.takeAll();
    if (waiting.length > 0) this.onBody(waiting.length === 1 ? waiting[0]! : Buffer.concat(waiting));
    this.flow();
  }

  private onBody(chunk: Buffer): void {
    const reader = this.data;
    if (!reader) return;
    // receiveTimeout bounds idle gaps; dataTimeout bounds the whole body, so a client that
    // drips a byte just inside each gap cannot hold the session forever.
    if (this.dataDeadline > 0 && Date.now() > this.dataDeadline) return this.onTimeout(true);
    this.restartIoWait(); // DATA: the limit is idle time, so any input restarts it
    const { segments, end } = reader.feed(chunk);
    if (!this.sinkFailed && this.sink) {
      if (reader.size > this.opts.maxDataSize) {
        // RFC 1870 §6.3: read on to the end, then 552.
        this.sinkFailed = true;
        this.sink.abort('too_big');
        this.sink = null;
      } else if (segments.length > 0) {
        const w = this.sink.write(segments.length === 1 ? segments[0]! : Buffer.concat(segments));
        if (w instanceof Promise) this.waitSink(w);
      }
    }
    if (end < 0) return;
    this.disarmIoTimer();
    if (end < chunk.length) this.lines.push(chunk.subarray(end));
    this.finishData(reader.size, 'DATA');
  }

  /** Stop reading until the sink has taken this write (a slow disk pushes back on the client). */
  private waitSink(w: Promise<void>): void {
    if (this.sinkWait) return;
    // A sink reports I/O errors at end(); a rejected write is a fault of the sink itself.
    this.sinkWait = w.then(
      () => this.guard(() => {
        this.sinkWait = null;
        this.flow();
      }),
      (e) => {
        this.sinkWait = null;
        this.fail(e);
      },
    );
    this.flow();
  }

  private finishData(size: number, verb: 'DATA' | 'BDAT'): void {
    this.to('storing');
    // RFC 2920 §3.1: message content may start a group, but without PIPELINING the client
    // waits for the reply to its end (the final dot, or the LAST chunk). Input before it is
    // early talk, answered after the message's own reply (early() defers it while storing).
    if (!this.esmtp || !this.opts.advertisePipelining) {
      this.mustWait = verb;
      if (this.lines.bytes > 0) this.early('pipelining', this.lines.peek(100), verb);
    }
    const sink = this.sink;
    this.sink = null;
    this.data = null;
    const tooBig = this.sinkFailed;
    this.sinkFailed = false;
    const done = (r: Reply) => {
      if (this.st !== 'storing') return;
      if (r.code === 250) this.counts.messages++;
      this.resetEnvelope();
      this.to('busy');
      this.respondTo(r);
    };
    if (tooBig || !sink) return done(this.tooBig('data'));
    const later = (p: Promise<Reply>) => void p.then((x) => this.guard(() => done(x)), (e) => this.fail(e));
    if (this.sinkWait) return later(this.sinkWait.then(() => sink.end(size)));
    // A sink that answers at once (discard, tempfail) is answered in this turn: no promise
    // hops per message. A throw here reaches the caller's fault boundary, as a rejection would.
    const r = sink.end(size);
    if (r instanceof Promise) later(r);
    else done(r);
  }

  private abortSink(reason: 'too_big' | 'timeout' | 'closed' | 'error' | 'reset'): void {
    const sink = this.sink;
    this.sink = null;
    this.data = null;
    if (sink) {
      try {
        sink.abort(reason);
      } catch {
        /* a sink that fails to clean up must not take the session with it */
      }
    }
  }

  // ---- BDAT (RFC 3030) -----------------------------------------------------------------

  /**
   * One BDAT chunk of `size` octets. §2: the chunk is always read, exactly `size` octets with
   * no dot-stuffing and no line rules, and answered once read; a chunk that cannot be taken
   * (no MAIL/RCPT, a refused transaction, over maxDataSize) is read and dropped first. The
   * first chunk of a transaction asks dataStart, as DATA does; the LAST ends the message
   * through the same sink path (finishData), so the store and the final reply are DATA's.
   */
  private get cx(): ChunkState {
    return (this.bx ??= { left: 0, last: false, size: 0, reply: null, total: 0 });
  }

  bdat(size: number, last: boolean): null {
    const seq = !this.mailFrom
      ? replies.badSequence('need MAIL command')
      : this.rcptTo.length === 0
        ? replies.badSequence('need RCPT command')
        : null;
    if (seq) {
      this.readChunk(size, last, seq);
      return null;
    }
    if (this.transfer === 'BDAT') {
      // dataTimeout bounds the whole transaction, first BDAT to LAST, as it bounds 354 to the
      // dot: checked here too, since a chunk whose octets come with its command (or an empty
      // one) never waits for input in onChunk, where the deadline is otherwise checked.
      if (this.dataDeadline > 0 && Date.now() > this.dataDeadline) {
        this.onTimeout(true);
        return null;
      }
      this.readChunk(size, last, null);
      return null;
    }
    this.transfer = 'BDAT';
    this.chunks = 0;
    this.cx.total = 0;
    const r = this.hooks.dataStart?.(this);
    if (r instanceof Promise) r.then((x) => this.guard(() => this.bdatStart(x, size, last)), (e) => this.fail(e));
    else this.bdatStart(r, size, last);
    return null;
  }

  private bdatStart(x: Reply | MessageSink | undefined, size: number, last: boolean): void {
    if (this.st !== 'busy') return; // the session moved on (timeout, fault) while the hook ran
    const given = x ?? DISCARD;
    const sinkOrReply = 'code' in given ? this.deferral(given) : given;
    if ('code' in sinkOrReply) {
      if (closes(sinkOrReply)) {
        this.transfer = undefined;
        return this.respondTo(sinkOrReply);
      }
      this.resetEnvelope();
      return this.readChunk(size, last, sinkOrReply);
    }
    this.sink = sinkOrReply;
    this.sinkFailed = false;
    this.dataDeadline = this.opts.dataTimeout > 0 ? Date.now() + this.opts.dataTimeout : 0;
    this.readChunk(size, last, null);
  }

  private readChunk(size: number, last: boolean, reply: Reply | null): void {
    this.to('chunk');
    this.cx.left = size;
    this.cx.size = size;
    this.cx.last = last;
    this.cx.reply = reply;
    if (reply) this.dataDeadline = this.opts.dataTimeout > 0 ? Date.now() + this.opts.dataTimeout : 0;
    if (!reply && this.sink && !this.sinkFailed && this.cx.total + size > this.opts.maxDataSize) {
      // RFC 1870 §6.3 / RFC 3030 §2: the declared chunk already passes the limit; read and drop it, then 552.
      this.sinkFailed = true;
      const sink = this.sink;
      this.sink = null;
      sink.abort('too_big');
    }
    this.restartIoWait();
    // The chunk's first octets usually came in the same write as the command.
    if (size > 0 && this.lines.bytes > 0) {
      const parts = this.lines.take(size);
      this.chunkData(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
    }
    if (this.cx.left === 0) return this.endChunk();
    this.flow();
  }

  /** Socket input while a chunk is being read (the line queue is empty then: readChunk took it). */
  private onChunk(chunk: Buffer): void {
    if (this.dataDeadline > 0 && Date.now() > this.dataDeadline) return this.onTimeout(true);
    this.restartIoWait();
    const n = Math.min(this.cx.left, chunk.length);
    this.chunkData(n === chunk.length ? chunk : chunk.subarray(0, n));
    if (n < chunk.length) this.lines.push(chunk.subarray(n));
    if (this.cx.left === 0) this.endChunk();
  }

  private chunkData(part: Buffer): void {
    this.cx.left -= part.length;
    if (this.cx.reply !== null || this.sinkFailed || !this.sink) return; // read and dropped
    this.cx.total += part.length;
    const w = this.sink.write(part);
    if (w instanceof Promise) this.waitSink(w);
  }

  private endChunk(): void {
    this.disarmIoTimer();
    const preset = this.cx.reply;
    this.cx.reply = null;
    if (preset) {
      this.to('busy');
      if (this.chunkWaitRule()) this.respondTo(preset);
      return;
    }
    this.chunks++;
    if (this.cx.last) return this.finishData(this.cx.total, 'BDAT');
    this.to('busy');
    if (!this.chunkWaitRule()) return;
    // A failed transaction stays failed: each later chunk is read, dropped and answered 552
    // until its LAST (or RSET) ends it.
    if (this.sinkFailed) return this.respondTo(this.tooBig('data'));
    const r = replies.chunkOk(this.cx.size);
    // A chunk is answered once the sink has taken it, so writes never overlap.
    const wait = this.sinkWait;
    if (wait) void wait.then(() => this.guard(() => this.respondTo(r)));
    else this.respondTo(r);
  }

  /**
   * RFC 2920 without PIPELINING: the client waits for each BDAT reply, so input past the
   * chunk is early talk. False when that ended the session's current exchange.
   */
  private chunkWaitRule(): boolean {
    if (this.esmtp && this.opts.advertisePipelining) return true;
    this.mustWait = 'BDAT';
    if (this.lines.bytes === 0) return true;
    this.early('pipelining', this.lines.peek(100), 'BDAT');
    return this.st === 'busy';
  }

  // ---- AUTH (RFC 4954) ------------------------------------------------------------------

  /** The AUTH command: checks of order and offer, then the first step of the exchange. */
  authCommand(args: string): Reply | Promise<Reply> {
    const cfg = this.opts.auth;
    if (!cfg || cfg.mechanisms.length === 0) return replies.notImplemented('AUTH');
    // §4: AUTH is an ESMTP extension (after EHLO), once per session, never inside a transaction.
    if (!this.esmtp) return replies.badSequence('send EHLO first');
    if (this.authenticated) return replies.badSequence('already authenticated');
    if (this.mailFrom) return replies.badSequence('AUTH not permitted during a mail transaction');
    // §6 (538): not offered in clear unless allowed.
    if (!this.secure && !cfg.plaintext) return replies.authEncryptionRequired();
    const parts = args.trim().split(/ +/);
    const mech = (parts[0] ?? '').toUpperCase();
    if (mech === '' || parts.length > 2) return replies.syntax('AUTH mechanism [initial-response]');
    if (!(cfg.mechanisms as readonly string[]).includes(mech)) return replies.authUnknownMechanism();
    const m = mech as AuthMechanism;
    const initial = parts[1];
    this.authX = { mech: m, initial: initial !== undefined, user: undefined, challenge: '' };
    if (initial === undefined) {
      if (m === 'PLAIN') return replies.authChallenge('');
      if (m === 'LOGIN') return replies.authChallenge(B64_USERNAME);
      // RFC 2195 §2: the challenge is a unique msg-id-like string.
      this.authX.challenge = `<${randomBytes(8).toString('hex')}.${Date.now()}@${this.opts.hostName}>`;
      return replies.authChallenge(Buffer.from(this.authX.challenge).toString('base64'));
    }
    // RFC 2195: CRAM-MD5 is server-first; it has no initial response.
    if (m === 'CRAM-MD5') {
      this.authX = null;
      return replies.syntax('CRAM-MD5 takes no initial response');
    }
    // §4: "=" is an initial response of zero length.
    return this.authStep(initial === '=' ? '' : initial);
  }

  /** The command log: credentials never reach it (an AUTH initial response is masked). */
  private logCommand(line: string): void {
    if (this.hooks.command) this.hooks.command(this, (line.charCodeAt(0) | 32) === 97 && AUTH_WITH_RESPONSE.test(line) ? line.replace(/^(AUTH +\S+ +).*$/i, '$1*') : line);
  }

  /** A line of an AUTH exchange (never a command; never logged as one). */
  private authLine(raw: Buffer): void {
    this.hooks.command?.(this, '(AUTH response)');
    this.command('AUTH', authContinue, raw.toString('latin1'), false);
  }

  /** One client response of the exchange, as sent (base64, or "*" to cancel). */
  authStep(line: string): Reply | Promise<Reply> {
    const x = this.authX;
    if (!x) return replies.badSequence('no AUTH in progress');
    // §4: "*" cancels the exchange with 501.
    if (line === '*') {
      this.authX = null;
      return replies.authCancelled();
    }
    // §4: a response that is not BASE64 fails the command with 501.
    if (!BASE64.test(line)) {
      this.authX = null;
      return replies.authBadBase64();
    }
    const octets = Buffer.from(line, 'base64');
    const text = octets.toString('utf8');
    if (x.mech === 'LOGIN' && x.user === undefined) {
      x.user = text;
      x.userOctets = octets;
      return replies.authChallenge(B64_PASSWORD);
    }
    this.authX = null;
    let attempt: AuthAttempt;
    if (x.mech === 'PLAIN') {
      // RFC 4616 §2: [authzid] NUL authcid NUL passwd, split on the octets (no UTF-8 sequence
      // holds a 0x00 octet), each part then read as UTF-8. A message with fewer NULs is
      // malformed, and what it holds may well be a password (a bot's "user NUL password", or
      // the password alone): it is recorded as one (auth.recordPasswords), never in clear as
      // the user name.
      const n1 = octets.indexOf(0);
      const n2 = n1 < 0 ? -1 : octets.indexOf(0, n1 + 1);
      const authzid = n2 >= 0 ? octets.subarray(0, n1) : EMPTY;
      const user = n2 >= 0 ? octets.subarray(n1 + 1, n2) : n1 >= 0 ? octets.subarray(0, n1) : EMPTY;
      const password = octets.subarray((n2 >= 0 ? n2 : n1) + 1);
      attempt = {
        mechanism: 'PLAIN', user: user.toString('utf8'), ...(n1 >= 0 ? { userOctets: user } : {}),
        password: password.toString('utf8'), passwordOctets: password, initialResponse: x.initial,
        ...(authzid.length > 0 ? { authzid: authzid.toString('utf8') } : {}),
      };
    } else if (x.mech === 'LOGIN') {
      attempt = { mechanism: 'LOGIN', user: x.user ?? '', ...(x.userOctets ? { userOctets: x.userOctets } : {}), password: text, passwordOctets: octets, initialResponse: x.initial };
    } else {
      // RFC 2195 §2: "user SP digest", the digest as 32 lower-case hex digits.
      const sp = octets.lastIndexOf(0x20);
      const user = sp < 0 ? octets : octets.subarray(0, sp);
      attempt = { mechanism: 'CRAM-MD5', user: user.toString('utf8'), userOctets: user, cram: { challenge: x.challenge, digest: sp < 0 ? '' : octets.subarray(sp + 1).toString('utf8') }, initialResponse: false };
    }
    const r = this.hooks.auth?.(this, attempt);
    const fin = (y: Reply | undefined): Reply => {
      const reply = y ?? replies.authUnavailable();
      if (reply.code === 235) this.authenticated = true;
      return reply;
    };
    return r instanceof Promise ? r.then(fin) : fin(r);
  }

  // ---- STARTTLS (RFC 3207) ---------------------------------------------------------------

  startTls(): Reply | null {
    const cfg = this.opts.startTls;
    if (!cfg) return replies.notImplemented('STARTTLS');
    // §4: after the 220, the client's pipelined plaintext is discarded, never executed.
    this.to('tls');
    this.lines.clear();
    this.disarmIoTimer();
    const ready = replies.startTls();
    this.sock.write(formatReply(ready, this.enhanced(ready)));
    this.hooks.reply?.(this, ready);
    const plain = this.sock;
    plain.removeAllListeners('data');
    plain.removeAllListeners('end');
    plain.removeAllListeners('drain');
    plain.removeAllListeners('close');
    const secure = new TLSSocket(plain, { isServer: true, secureContext: cfg.context });
    const timer = setTimeout(() => this.guard(() => {
      this.tlsFailed('handshake timeout');
      secure.destroy();
    }), cfg.handshakeTimeout);
    secure.once('secure', () => this.guard(() => {
      clearTimeout(timer);
      if (this.st !== 'tls') return;
      const c = secure.getCipher();
      const sni = (secure as TLSSocket & { servername?: string | false }).servername;
      this.tls = { protocol: secure.getProtocol() ?? 'unknown', cipher: c?.name ?? 'unknown', ...(sni ? { servername: sni } : {}) };
      // §4.2: the server discards all knowledge obtained from the client.
      this.helo = undefined;
      this.esmtp = false;
      this.resetEnvelope();
      this.earlyReported = 0;
      this.mustWait = null;
      this.authenticated = false;
      this.hooks.tls?.(this, this.tls);
      this.to('ready');
      this.pump();
    }));
    secure.on('error', (e: Error) => this.guard(() => {
      clearTimeout(timer);
      if (this.st === 'tls') this.tlsFailed(tlsReason(e));
    }));
    this.sock = secure;
    this.attach(secure);
    return null;
  }

  private tlsFailed(reason: string): void {
    this.hooks.verdict?.(this, 'TLS_FAILED', { reason });
    this.closeReason = 'tls_failed';
  }
}

// ---- the command table (RFC 5321 §4.1.1) ---------------------------------------------

const CONTROL = /[\x00-\x1f\x7f]/;

function helo(extended: boolean): Handler {
  return (s, args) => {
    const name = args.trim();
    // §4.1.1.1: HELO/EHLO take exactly one domain or address literal; no control characters
    // (they would reach logs, stored headers and an operator's terminal).
    if (name === '' || /\s/.test(name)) return replies.syntax(`${extended ? 'EHLO' : 'HELO'} ${name === '' ? 'needs a domain' : 'takes one domain'}`);
    if (CONTROL.test(name)) return replies.syntax('control characters in HELO/EHLO');
    // A repeated HELO/EHLO in one TLS layer is junk (the EHLO after STARTTLS is not).
    if (s.helo !== undefined) {
      const j = s.junk();
      if (j) return j;
    }
    // §4.1.4: a second HELO/EHLO is an implicit RSET.
    s.resetEnvelope();
    const host = s.options.hostName;
    return s.ask(s.sessionHooks.helo?.(s, name, extended), () => {
      s.helo = name;
      s.esmtp = extended;
      return extended ? replies.ehlo(host, name, extensionsFor(s.options, s.secure) as string[]) : replies.helo(host, name);
    });
  };
}

const B64_USERNAME = Buffer.from('Username:').toString('base64');
const B64_PASSWORD = Buffer.from('Password:').toString('base64');
/** No octets (a PLAIN message's missing authzid or user). */
const EMPTY = Buffer.alloc(0);
const authContinue: Handler = (s, line) => s.authStep(line);

// A Map, not an object: a verb is a fresh string from the wire, and an object lookup with it
// went through V8's megamorphic keyed load and interned the string first (perf, Round 6).
const COMMANDS = new Map<string, Handler>(Object.entries({
  HELO: helo(false),
  EHLO: helo(true),

  MAIL(s, args, eightBit) {
    if (s.helo === undefined) return replies.badSequence('send HELO/EHLO first');
    if (s.mailFrom) return replies.badSequence('nested MAIL command');
    if (!/^FROM:/i.test(args)) return replies.syntax('use MAIL FROM:<address>');
    const p = parsePathArg(args.slice(5), { allowNull: true, allowPostmaster: false });
    if (!p.ok) return p.code === 'address' ? replies.badAddress(p.text) : replies.syntax(p.text);
    // RFC 5321 §4.1.1.11 / RFC 1869: no ESMTP parameters after plain HELO.
    if (p.value.params !== '' && !s.esmtp) return replies.badParam('(ESMTP parameters need EHLO)');
    const mp = parseMailParams(p.value.params, { binaryMime: s.options.chunking === true && s.options.binaryMime === true, auth: authOffered(s.options, s.secure) });
    if (!mp.ok) return mp.code === 'param' ? replies.badParam(mp.text) : replies.syntax(mp.text);
    // RFC 6531 §3.4: 8-bit addresses only with SMTPUTF8; §3.5: refused 550 5.6.7 without it.
    if (p.value.address.utf8 && !mp.value.smtputf8) return replies.nonAsciiAddress(550);
    if (eightBit && !mp.value.smtputf8) return replies.unknownCommand();
    // RFC 1870 §6.2: refuse a declared size over the limit at once.
    if (mp.value.size !== undefined && mp.value.size > s.options.maxDataSize) return s.tooBig('MAIL');
    if (s.counts.messages >= s.options.maxMessages) return s.limit('messages');
    return s.ask(s.sessionHooks.mail?.(s, p.value.address, mp.value), () => {
      s.mailFrom = p.value.address;
      s.mailParams = mp.value;
      return replies.senderOk();
    });
  },

  RCPT(s, args, eightBit) {
    if (!s.mailFrom) return replies.badSequence('need MAIL before RCPT');
    if (!/^TO:/i.test(args)) return replies.syntax('use RCPT TO:<address>');
    const p = parsePathArg(args.slice(3), { allowNull: false, allowPostmaster: true });
    if (!p.ok) return p.code === 'address' ? replies.badAddress(p.text) : replies.syntax(p.text);
    // RFC 6531 §3.5: a non-ASCII recipient without SMTPUTF8 is 553 5.6.7.
    if (p.value.address.utf8 && !s.mailParams?.smtputf8) return replies.nonAsciiAddress(553);
    if (eightBit && !s.mailParams?.smtputf8) return replies.unknownCommand();
    if (p.value.params !== '') {
      if (!s.esmtp) return replies.badParam('(ESMTP parameters need EHLO)');
      const sp = splitParams(p.value.params);
      if (!sp.ok) return replies.syntax(sp.text);
      return replies.badParam([...sp.value.keys()][0]!);
    }
    if (s.rcptTo.length >= s.options.maxSmtpRcpt) {
      // RFC 5321 §4.5.3.1.8: 452 and go on; past the overshoot limit the session ends.
      if (++s.counts.overshoot + s.counts.deferred > s.options.maxRcptOvershoot) return s.limit('recipients');
      if (s.counts.overshoot === 1) s.sessionHooks.verdict?.(s, 'LIMIT', { limit: 'recipients' });
      return replies.tooManyRcpts();
    }
    const r = s.ask(s.sessionHooks.rcpt?.(s, p.value.address), () => {
      if (s.rcptTo.length === 0) s.rcptTo = [p.value.address];
      else s.rcptTo.push(p.value.address);
      s.counts.rcpt++;
      return replies.rcptOk();
    });
    return r instanceof Promise ? r.then((x) => s.deferral(x)) : s.deferral(r);
  },

  DATA(s, args) {
    if (args.trim() !== '') return replies.noParams('DATA');
    if (!s.mailFrom) return replies.badSequence('need MAIL command');
    if (s.rcptTo.length === 0) return replies.badSequence('need RCPT command');
    // RFC 3030 §2: DATA and BDAT are not mixed in one transaction; §3: BINARYMIME needs BDAT.
    if (s.transfer === 'BDAT') return replies.badSequence('DATA after BDAT');
    if (s.mailParams?.body === 'BINARYMIME') return replies.badSequence('BODY=BINARYMIME needs BDAT');
    s.transfer = 'DATA';
    const r = s.sessionHooks.dataStart?.(s);
    const decide = (x: Reply | MessageSink | undefined): Reply => {
      if (x === undefined) return s.beginData(DISCARD);
      if ('code' in x) {
        const refusal = s.deferral(x);
        if (!closes(refusal)) s.resetEnvelope();
        return refusal;
      }
      return s.beginData(x);
    };
    return r instanceof Promise ? r.then(decide) : decide(r);
  },

  BDAT(s, args) {
    // Without CHUNKING offered, BDAT is just an unknown command (RFC 3030 §2).
    if (!s.options.chunking) return replies.unknownCommand();
    const m = BDAT_ARGS.exec(args);
    if (!m) return replies.badChunkSize();
    return s.bdat(Number(m[1]), m[2] !== undefined);
  },

  AUTH(s, args) {
    return s.authCommand(args);
  },

  RSET(s, args) {
    if (args.trim() !== '') return replies.noParams('RSET');
    const j = s.junk();
    if (j) return j;
    s.resetEnvelope();
    return replies.resetOk();
  },

  NOOP(s) {
    // §4.1.1.9: NOOP may carry a string; it is ignored.
    const j = s.junk();
    if (j) return j;
    if (++s.counts.noop > s.options.maxSmtpNoop) return s.limit('NOOP commands');
    return replies.noop();
  },

  QUIT(s, args) {
    if (args.trim() !== '') return replies.noParams('QUIT');
    return replies.bye(s.options.hostName);
  },

  VRFY(s, args) {
    const j = s.junk();
    if (j) return j;
    if (++s.counts.vrfy > s.options.maxSmtpVrfy) return s.limit('VRFY/EXPN commands');
    if (args.trim() === '') return replies.syntax('VRFY needs an argument');
    return replies.vrfy();
  },

  EXPN(s, args) {
    const j = s.junk();
    if (j) return j;
    if (++s.counts.vrfy > s.options.maxSmtpVrfy) return s.limit('VRFY/EXPN commands');
    if (args.trim() === '') return replies.syntax('EXPN needs an argument');
    return replies.expn();
  },

  HELP(s) {
    // The commands of the extensions EHLO would list now (no STARTTLS once under TLS, and so on).
    const ext = extensionsFor(s.options, s.secure);
    const offered = [['STARTTLS', 'STARTTLS'], ['AUTH', 'AUTH'], ['CHUNKING', 'BDAT']].filter(([k]) => ext.some((e) => e === k || e.startsWith(`${k} `))).map(([, c]) => c!);
    return s.junk() ?? replies.help(offered);
  },

  STARTTLS(s, args) {
    if (args.trim() !== '') return replies.noParams('STARTTLS');
    // Under TLS already (after STARTTLS, or on an implicit-TLS port): a sequence error either way.
    if (s.secure) return replies.badSequence('TLS already active');
    if (!s.options.startTls) return replies.notImplemented('STARTTLS');
    // Postfix's answer: the envelope given in clear would be dropped by the upgrade (RFC 3207 §4.2).
    if (s.mailFrom) return replies.badSequence('MAIL transaction in progress');
    return s.startTls();
  },
} satisfies Record<string, Handler>));

/** No hook took the body: read and drop it (a sink), answer 250. */
const DISCARD: MessageSink = {
  write() {},
  end: () => replies.ok('Ok: message accepted'),
  abort() {},
};
