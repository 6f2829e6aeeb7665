// One SMTP session: input framing with limits, the command table, the state machine,
// the DATA phase, STARTTLS and the reply writer (tarpit delay and stutter as writer
// properties, as spamd does). Policy is asked through SessionHooks only. Contract: no
// exception escapes a socket or timer callback; an impossible state is a 421 and a close.

import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { DataReader } from './data-reader.js';
import type {
  Address, CloseInfo, EarlyTalkKind, MailParams, MessageSink, SessionCounts, SessionHooks, SessionInfo, TlsInfo,
} from './hooks.js';
import { parseMailParams, parsePathArg, splitCommand, splitParams } from './parser.js';
import { closes, formatReply, replies, type Reply } from './reply.js';
import { escapeBytes } from '../util/escape.js';

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
  /** Longest a whole DATA phase may take, ms; 0 = only the idle limit. */
  dataTimeout: number;
  maxSmtpErrors: number;
  maxSmtpNoop: number;
  maxSmtpVrfy: number;
  maxSmtpRcpt: number;
  maxMessages: number;
  advertisePipelining: boolean;
  bannerTeaser: boolean;
  /** STARTTLS offered when set and the session is not yet under TLS. */
  startTls?: { context: SecureContext; handshakeTimeout: number };
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

type Phase = 'connecting' | 'command' | 'data' | 'tls' | 'closing' | 'closed';
type Handler = (s: Session, args: string, eightBit: boolean) => Reply | Promise<Reply> | null;

// RFC 2920 §3.1: these end a pipelined group; the client must wait for their reply.
const GROUP_END = new Set(['EHLO', 'HELO', 'DATA', 'VRFY', 'EXPN', 'NOOP', 'QUIT', 'TURN']);
const HTTP_VERB = /^(GET|POST|HEAD|CONNECT|PUT|OPTIONS|DELETE) /;
const EIGHT_BIT = /[\x80-\xff]/;
const utf8 = new TextDecoder('utf-8', { fatal: true });
const LF = 10;
/** How long a closing socket may linger for its FIN before it is destroyed. */
const LINGER_MS = 5000;

export class Session implements SessionInfo {
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
  readonly state = new Map<string, unknown>();
  readonly counts: SessionCounts = { commands: 0, errors: 0, noop: 0, vrfy: 0, rcpt: 0, messages: 0 };
  helo: string | undefined;
  esmtp = false;
  tls: TlsInfo | undefined;
  mailFrom: Address | undefined;
  mailParams: MailParams | undefined;
  rcptTo: Address[] = [];

  private sock: Socket;
  private phase: Phase = 'connecting';
  private inbuf: Buffer | null = null;
  private busy = false;
  private paused = false;
  private discarding = false;
  private seenInput = false;
  /** Verb whose reply the client must wait for (RFC 2920), or null. */
  private mustWait: string | null = null;
  private earlyReported = 0;
  /** A rejection decided before the greeting finished (teaser): given at the first command. */
  private pendingReject: Reply | null = null;
  private data: DataReader | null = null;
  private sink: MessageSink | null = null;
  private sinkFailed = false;
  private sinkWait: Promise<void> | null = null;
  private ioTimer: NodeJS.Timeout | null = null;
  private ioTimerArmed = false;
  private delayTimer: NodeJS.Timeout | null = null;
  /** Bounds how long a closing socket waits for the peer's FIN; cleared on close so the
   *  session is not kept reachable for LINGER_MS after it ended. */
  private lingerTimer: NodeJS.Timeout | null = null;
  /** Date.now() after which the DATA phase is over (dataTimeout); 0 = none. */
  private dataDeadline = 0;
  private closeReason = 'client_closed';
  private closedNotified = false;
  private clientEnded = false;

  constructor(
    socket: Socket,
    conn: Connection,
    private readonly opts: SessionConfig,
    private readonly hooks: SessionHooks,
  ) {
    this.sock = socket;
    this.id = conn.id;
    this.listener = opts.listener;
    this.remoteAddress = conn.remoteAddress;
    this.remotePort = conn.remotePort;
    this.tls = conn.tls;
    this.attach(socket);
    // A socket handed over paused (the PROXY header reader pauses it) must flow again.
    if (socket.isPaused()) socket.resume();
    if (conn.initialInput && conn.initialInput.length > 0) this.onData(conn.initialInput);
  }

  // ---- SessionInfo helpers ---------------------------------------------------------

  get secure(): boolean {
    return this.tls !== undefined;
  }

  /** Begin: optional teaser line, then the connect hook, then the greeting. */
  start(): void {
    if (this.phase !== 'connecting') return;
    if (this.opts.bannerTeaser) this.writeRaw(`220-${this.opts.hostName}\r\n`);
    this.guard(() => {
      const r = this.hooks.connect?.(this);
      if (r instanceof Promise) r.then((x) => this.greet(x), (e) => this.fail(e));
      else this.greet(r);
    });
  }

  /** Tell a waiting client that the server is going away (SIGTERM); it happens at its next command. */
  shutdown(): void {
    if (this.phase === 'closed' || this.phase === 'closing') return;
    this.pendingReject = replies.shuttingDown(this.opts.hostName);
    this.closeReason = 'shutdown';
  }

  /** Close at once (grace ran out). */
  destroy(reason = 'shutdown'): void {
    if (this.phase === 'closed') return;
    this.closeReason = reason;
    this.sock.destroy();
  }

  // ---- socket plumbing ----------------------------------------------------------------

  private attach(socket: Socket): void {
    (socket as OwnedSocket)[SESSION] = this;
    socket.on('data', onSocketData);
    socket.on('end', onSocketEnd);
    socket.on('error', onSocketError);
    socket.on('close', onSocketClose);
    socket.on('drain', onSocketDrain);
  }

  /** Socket input; no exception escapes a socket callback. */
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

  private fail(e: unknown): void {
    if (this.phase === 'closed') return;
    this.hooks.verdict?.(this, 'ERROR', { error: e instanceof Error ? e.message : String(e) });
    this.closeReason = 'error';
    this.abortSink('error');
    if (this.phase === 'closing') {
      this.sock.destroy();
      return;
    }
    this.phase = 'command';
    this.busy = false;
    this.respondTo(replies.internalError(this.opts.hostName));
  }

  private onData(chunk: Buffer): void {
    if (this.phase === 'closed' || this.phase === 'closing') return;
    if (this.phase === 'tls') return; // RFC 3207 §5 / CVE-2011-0411: plaintext after STARTTLS is dropped
    if (!this.seenInput) {
      this.seenInput = true;
      // A TLS ClientHello (handshake record 0x16, version 3.x) on a plaintext port.
      if (!this.tls && chunk.length >= 2 && chunk[0] === 0x16 && chunk[1] === 0x03) {
        return this.nonSmtp('tls_client_hello', chunk);
      }
    }
    if (this.phase === 'data') return this.onBody(chunk);
    this.inbuf = this.inbuf && this.inbuf.length > 0 ? Buffer.concat([this.inbuf, chunk]) : chunk;
    if (this.phase === 'connecting') {
      this.early('pregreet', chunk);
      if (this.phase !== 'connecting') return;
    } else if (this.busy && this.mustWait !== null) {
      this.early('pipelining', chunk, this.mustWait);
      if (this.ended()) return;
    }
    if (this.inbuf.length > this.opts.maxPendingInput && !this.paused) {
      this.paused = true;
      this.sock.pause();
    }
    if (this.phase === 'command' && !this.busy) this.processInput();
  }

  private early(kind: EarlyTalkKind, chunk: Buffer, after?: string): void {
    if (this.earlyReported & EARLY_BIT[kind] || !this.hooks.earlyTalk) return;
    this.earlyReported |= EARLY_BIT[kind];
    const ev = { kind, afterMs: Date.now() - this.openedAt, sample: Buffer.from(chunk.subarray(0, 100)), after };
    const r = this.hooks.earlyTalk(this, ev);
    if (!r) return;
    this.closeReason = 'early_talk';
    if (this.phase === 'connecting' && this.opts.bannerTeaser) {
      // Never a 4xx/5xx straight after "220-": finish the greeting, reject at the first command.
      this.pendingReject = r;
      return;
    }
    this.inbuf = null;
    this.phase = 'command';
    this.busy = false;
    this.respondTo(r);
  }

  /** Read through a getter so TypeScript does not narrow across calls that change it. */
  private ended(): boolean {
    return this.phase === 'closed' || this.phase === 'closing';
  }

  private onEnd(): void {
    this.clientEnded = true;
    if (this.phase === 'data') {
      // The final dot can no longer come: the message is incomplete; free the slot now.
      this.abortSink('closed');
      this.sock.destroy();
      return;
    }
    if (this.phase === 'connecting' || this.busy || this.hasLine()) return;
    this.sock.destroy();
  }

  private onClose(): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.clearTimers();
    this.abortSink('closed');
    this.inbuf = null;
    if (!this.closedNotified) {
      this.closedNotified = true;
      const info: CloseInfo = { reason: this.closeReason, durationMs: Date.now() - this.openedAt };
      this.hooks.close?.(this, info);
    }
  }

  private onDrain(): void {
    this.disarmIoTimer();
    if (this.phase === 'command' && !this.busy) this.processInput();
  }

  private clearTimers(): void {
    if (this.ioTimer) clearTimeout(this.ioTimer);
    if (this.delayTimer) clearTimeout(this.delayTimer);
    if (this.lingerTimer && this.phase === 'closed') clearTimeout(this.lingerTimer);
    this.ioTimer = this.delayTimer = null;
    this.ioTimerArmed = false;
  }

  /** One timer per session for receive timeouts, re-armed with refresh() (no allocation). */
  private armIoTimer(): void {
    if (this.ioTimerArmed) return;
    this.ioTimerArmed = true;
    if (this.ioTimer) this.ioTimer.refresh();
    else this.ioTimer = setTimeout(() => this.guard(() => this.onTimeout()), this.opts.receiveTimeout);
  }

  /**
   * Disarming only lowers the flag: a cleared timer cannot be refresh()ed back to life, and
   * a stale expiry of a disarmed timer is ignored by onTimeout().
   */
  private disarmIoTimer(): void {
    this.ioTimerArmed = false;
  }

  private onTimeout(total = false): void {
    if (!this.ioTimerArmed && !total) return;
    this.ioTimerArmed = false;
    if (this.phase === 'closed' || this.phase === 'closing') return;
    if (this.sock.writableLength > 0 && this.phase === 'command') {
      // A client that stopped reading our replies: nothing more to say to it.
      this.closeReason = 'timeout';
      this.hooks.verdict?.(this, 'TIMEOUT', { phase: 'write' });
      this.sock.destroy();
      return;
    }
    this.hooks.verdict?.(this, 'TIMEOUT', { phase: total ? 'data_total' : this.phase === 'data' ? 'data' : 'command' });
    this.closeReason = 'timeout';
    this.abortSink('timeout');
    this.phase = 'command';
    this.inbuf = null;
    this.busy = false;
    this.respondTo(replies.timeout(this.opts.hostName));
  }

  private nonSmtp(kind: string, sample: Buffer): void {
    this.hooks.verdict?.(this, 'NONSMTP', { kind, sample: escapeBytes(sample.subarray(0, 100)) });
    this.closeReason = 'nonsmtp';
    // RFC 5321 §4.2.1: every line of a reply carries one code, so a "220-" teaser line is
    // finished with its final "220 " line before the rejection.
    if (this.phase === 'connecting' && this.opts.bannerTeaser) this.writeRaw(`220 ${this.opts.hostName} ESMTP fakemx\r\n`);
    this.inbuf = null;
    this.phase = 'command';
    this.busy = false;
    this.respondTo(replies.nonSmtp());
  }

  // ---- greeting -----------------------------------------------------------------------

  private greet(reject: Reply | undefined): void {
    if (this.phase !== 'connecting') return;
    this.phase = 'command';
    if (reject) {
      this.closeReason = 'rejected';
      // A connect-time rejection always ends the session.
      const r = { ...reject, close: true };
      if (!this.opts.bannerTeaser) return this.respondTo(r);
      this.pendingReject = r;
    }
    const host = this.opts.hostName;
    // The teaser already sent "220-host"; only the last line is left.
    this.writeReply(this.opts.bannerTeaser ? { code: 220, text: `${host} ESMTP fakemx` } : replies.greeting(host));
    if (this.phase === 'command') this.processInput();
  }

  // ---- command input ------------------------------------------------------------------

  private hasLine(): boolean {
    return this.inbuf !== null && this.inbuf.indexOf(LF) >= 0;
  }

  private processInput(): void {
    while (this.phase === 'command' && !this.busy) {
      if (this.sock.writableNeedDrain) {
        // Backpressure: a client that does not read gets no further replies queued.
        this.armIoTimer();
        return;
      }
      const buf = this.inbuf;
      const lf = buf ? buf.indexOf(LF) : -1;
      if (buf === null || lf < 0) {
        if (buf !== null && buf.length >= this.opts.maxLineLength) {
          // RFC 5321 §4.5.3.1.4: no line fits; drop what came, keep dropping until LF.
          this.discarding = true;
          this.inbuf = null;
        }
        if (this.clientEnded) {
          this.sock.destroy();
          return;
        }
        if (this.paused) {
          this.paused = false;
          this.sock.resume();
        }
        this.armIoTimer();
        return;
      }
      this.disarmIoTimer();
      this.inbuf = lf + 1 < buf.length ? buf.subarray(lf + 1) : null;
      if (this.discarding || lf + 1 > this.opts.maxLineLength) {
        this.discarding = false;
        this.hooks.verdict?.(this, 'LINE_TOO_LONG', {});
        this.respondTo(replies.lineTooLong());
        continue;
      }
      const end = lf > 0 && buf[lf - 1] === 13 ? lf - 1 : lf;
      this.handleLine(buf.subarray(0, end));
    }
  }

  private handleLine(raw: Buffer): void {
    this.counts.commands++;
    let line = raw.toString('latin1');
    const eightBit = EIGHT_BIT.test(line);
    if (eightBit) {
      try {
        line = utf8.decode(raw);
      } catch {
        return this.command(line, () => replies.unknownCommand());
      }
    }
    if (this.counts.commands === 1 && HTTP_VERB.test(line)) return this.nonSmtp('http', raw);
    this.hooks.command?.(this, line);
    if (this.pendingReject) {
      const r = this.pendingReject;
      this.pendingReject = null;
      return this.respondTo(r);
    }
    const { verb, args } = splitCommand(line);
    const handler = COMMANDS[verb];
    // RFC 5321 §4.2.4: unknown commands get 500; 8-bit bytes only inside SMTPUTF8 paths.
    if (!handler || (eightBit && verb !== 'MAIL' && verb !== 'RCPT')) return this.command(verb, () => replies.unknownCommand());
    this.command(verb, () => handler(this, args, eightBit));
  }

  /** Run one command's handler and send its reply; RFC 2920 wait rules apply meanwhile. */
  private command(verb: string, run: () => Reply | Promise<Reply> | null): void {
    this.busy = true;
    const pipelining = this.esmtp && this.opts.advertisePipelining;
    this.mustWait = !pipelining || GROUP_END.has(verb) ? verb : null;
    if (this.mustWait !== null && this.inbuf !== null && this.inbuf.length > 0) {
      this.early('pipelining', this.inbuf, verb);
      if (this.phase !== 'command' || !this.busy) return;
    }
    let r: Reply | Promise<Reply> | null;
    try {
      r = run();
    } catch (e) {
      return this.fail(e);
    }
    if (r === null) return; // the handler took over (DATA, STARTTLS)
    if (r instanceof Promise) r.then((x) => this.respondTo(x), (e) => this.fail(e));
    else this.respondTo(r);
  }

  // ---- replies --------------------------------------------------------------------------

  /** Count, limit, shape (tarpit) and write a reply, then go on with the input. */
  respondTo(reply: Reply): void {
    if (this.phase === 'closed' || this.phase === 'closing') return;
    let r = reply;
    if (r.code >= 400 && !closes(r) && !r.neutral) {
      this.counts.errors++;
      if (this.counts.errors > this.opts.maxSmtpErrors) r = this.limit('errors');
    }
    this.busy = true;
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

  private emit(r: Reply, stutter: number | undefined): void {
    this.delayTimer = null;
    if (this.phase === 'closed' || this.phase === 'closing') return;
    if (stutter && stutter > 0) return this.stutter(r, Buffer.from(formatReply(r, this.enhanced(r))), 0, stutter);
    this.writeReply(r);
    this.afterReply(r);
  }

  /** spamd's tarpit: one byte per interval, one timer at a time. */
  private stutter(r: Reply, bytes: Buffer, at: number, every: number): void {
    if (this.phase === 'closed' || this.phase === 'closing') return;
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
    return this.helo !== undefined || closes(r);
  }

  private writeReply(r: Reply): void {
    this.sock.write(formatReply(r, this.enhanced(r)));
    this.hooks.reply?.(this, r);
  }

  private writeRaw(s: string): void {
    this.sock.write(s);
  }

  private afterReply(r: Reply): void {
    this.mustWait = null;
    if (closes(r)) {
      if (r.outcome) this.closeReason = r.outcome;
      else if (this.closeReason === 'client_closed') this.closeReason = 'server_closed';
      return this.closeSoon();
    }
    if (r.code === 354) {
      this.busy = false;
      this.phase = 'data';
      this.dataDeadline = this.opts.dataTimeout > 0 ? Date.now() + this.opts.dataTimeout : 0;
      this.armIoTimer();
      if (this.inbuf) {
        const rest = this.inbuf;
        this.inbuf = null;
        this.onBody(rest);
      }
      return;
    }
    this.busy = false;
    if (this.phase === 'command') this.processInput();
  }

  private closeSoon(): void {
    this.phase = 'closing';
    this.clearTimers();
    this.inbuf = null;
    this.abortSink('closed');
    // A client that already closed its side (QUIT then FIN) gets no shutdown(): it would
    // fail with ENOTCONN. Nothing is lost: replies are written straight to the kernel.
    if (this.clientEnded && this.sock.writableLength === 0) {
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
    this.rcptTo = [];
  }

  /** Ask a hook; `dflt` when it has no opinion. */
  ask(r: Reply | undefined | Promise<Reply | undefined>, dflt: () => Reply): Reply | Promise<Reply> {
    if (r instanceof Promise) return r.then((x) => x ?? dflt());
    return r ?? dflt();
  }

  ehloExtensions(): string[] {
    const ext = [`SIZE ${this.opts.maxDataSize}`, '8BITMIME'];
    if (this.opts.advertisePipelining) ext.push('PIPELINING');
    ext.push('ENHANCEDSTATUSCODES', 'SMTPUTF8');
    if (this.opts.startTls && !this.tls) ext.push('STARTTLS');
    return ext;
  }

  get options(): Readonly<SessionConfig> {
    return this.opts;
  }

  get sessionHooks(): SessionHooks {
    return this.hooks;
  }

  // ---- DATA -----------------------------------------------------------------------------

  beginData(sink: MessageSink): Reply {
    this.data = new DataReader();
    this.sink = sink;
    this.sinkFailed = false;
    return replies.startData();
  }

  private onBody(chunk: Buffer): void {
    const reader = this.data;
    if (!reader) return;
    // receiveTimeout bounds idle gaps; dataTimeout bounds the whole body, so a client that
    // drips a byte just inside each gap cannot hold the session forever.
    if (this.dataDeadline > 0 && Date.now() > this.dataDeadline) return this.onTimeout(true);
    this.armIoTimer();
    this.ioTimer?.refresh(); // DATA: the limit is idle time, so any input restarts it
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
    this.phase = 'command';
    const rest = end < chunk.length ? chunk.subarray(end) : null;
    this.inbuf = rest && this.inbuf ? Buffer.concat([this.inbuf, rest]) : rest ?? this.inbuf;
    this.finishData(reader.size);
  }

  private waitSink(w: Promise<void>): void {
    if (this.sinkWait) return;
    this.sock.pause();
    this.sinkWait = w.then(
      () => {
        this.sinkWait = null;
        if (this.phase === 'data' && !this.paused) this.sock.resume();
      },
      () => {
        this.sinkWait = null;
        if (this.phase === 'data') this.sock.resume();
      },
    );
  }

  private finishData(size: number): void {
    this.busy = true;
    const sink = this.sink;
    this.sink = null;
    this.data = null;
    const tooBig = this.sinkFailed;
    this.sinkFailed = false;
    const done = (r: Reply) => {
      if (r.code === 250) this.counts.messages++;
      this.resetEnvelope();
      this.respondTo(r);
    };
    if (tooBig || !sink) return done(replies.tooBig());
    const wait = this.sinkWait ?? Promise.resolve();
    wait
      .then(() => sink.end(size))
      .then(done, (e) => this.fail(e));
  }

  private abortSink(reason: 'too_big' | 'timeout' | 'closed' | 'error'): void {
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

  // ---- STARTTLS (RFC 3207) ---------------------------------------------------------------

  startTls(): Reply | null {
    const cfg = this.opts.startTls;
    if (!cfg) return replies.notImplemented('STARTTLS');
    // §4: after the 220, the client's pipelined plaintext is discarded, never executed.
    this.busy = true;
    this.phase = 'tls';
    this.inbuf = null;
    this.disarmIoTimer();
    const ready = replies.startTls();
    this.sock.write(formatReply(ready, this.enhanced(ready)));
    const plain = this.sock;
    plain.removeAllListeners('data');
    plain.removeAllListeners('end');
    plain.removeAllListeners('drain');
    plain.removeAllListeners('close');
    const secure = new TLSSocket(plain, { isServer: true, secureContext: cfg.context });
    const timer = setTimeout(() => {
      this.tlsFailed('handshake timeout');
      secure.destroy();
    }, cfg.handshakeTimeout);
    secure.once('secure', () => this.guard(() => {
      clearTimeout(timer);
      const c = secure.getCipher();
      const sni = (secure as TLSSocket & { servername?: string | false }).servername;
      this.tls = { protocol: secure.getProtocol() ?? 'unknown', cipher: c?.name ?? 'unknown', ...(sni ? { servername: sni } : {}) };
      // §4.2: the server discards all knowledge obtained from the client.
      this.helo = undefined;
      this.esmtp = false;
      this.resetEnvelope();
      this.earlyReported = 0;
      this.mustWait = null;
      this.hooks.tls?.(this, this.tls);
      this.phase = 'command';
      this.busy = false;
      this.processInput();
    }));
    secure.on('error', (e: Error) => {
      clearTimeout(timer);
      if (this.phase === 'tls') this.tlsFailed(e.message);
    });
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

function helo(extended: boolean): Handler {
  return (s, args) => {
    const name = args.trim();
    // §4.1.1.1: HELO/EHLO take exactly one domain or address literal.
    if (name === '' || /\s/.test(name)) return replies.syntax(`${extended ? 'EHLO' : 'HELO'} needs a domain`);
    // §4.1.4: a second HELO/EHLO is an implicit RSET.
    s.resetEnvelope();
    const host = s.options.hostName;
    return s.ask(s.sessionHooks.helo?.(s, name, extended), () => {
      s.helo = name;
      s.esmtp = extended;
      return extended ? replies.ehlo(host, name, s.ehloExtensions()) : replies.helo(host, name);
    });
  };
}

const COMMANDS: Record<string, Handler> = {
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
    const mp = parseMailParams(p.value.params);
    if (!mp.ok) return mp.code === 'param' ? replies.badParam(mp.text) : replies.syntax(mp.text);
    // RFC 6531 §3.4: 8-bit addresses only with SMTPUTF8.
    if ((eightBit || p.value.address.utf8) && !mp.value.smtputf8) return replies.unknownCommand();
    // RFC 1870 §6.2: refuse a declared size over the limit at once.
    if (mp.value.size !== undefined && mp.value.size > s.options.maxDataSize) return replies.tooBig();
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
    if ((eightBit || p.value.address.utf8) && !s.mailParams?.smtputf8) return replies.unknownCommand();
    if (p.value.params !== '') {
      if (!s.esmtp) return replies.badParam('(ESMTP parameters need EHLO)');
      const sp = splitParams(p.value.params);
      if (!sp.ok) return replies.syntax(sp.text);
      return replies.badParam([...sp.value.keys()][0]!);
    }
    if (s.rcptTo.length >= s.options.maxSmtpRcpt) {
      s.sessionHooks.verdict?.(s, 'LIMIT', { limit: 'recipients' });
      return replies.tooManyRcpts();
    }
    return s.ask(s.sessionHooks.rcpt?.(s, p.value.address), () => {
      s.rcptTo.push(p.value.address);
      s.counts.rcpt++;
      return replies.rcptOk();
    });
  },

  DATA(s, args) {
    if (args.trim() !== '') return replies.noParams('DATA');
    if (!s.mailFrom) return replies.badSequence('need MAIL command');
    if (s.rcptTo.length === 0) return replies.badSequence('need RCPT command');
    const r = s.sessionHooks.dataStart?.(s);
    const decide = (x: Reply | MessageSink | undefined): Reply => {
      if (x === undefined) return s.beginData(DISCARD);
      if ('code' in x) {
        if (!closes(x)) s.resetEnvelope();
        return x;
      }
      return s.beginData(x);
    };
    return r instanceof Promise ? r.then(decide) : decide(r);
  },

  RSET(s, args) {
    if (args.trim() !== '') return replies.noParams('RSET');
    s.resetEnvelope();
    return replies.resetOk();
  },

  NOOP(s) {
    // §4.1.1.9: NOOP may carry a string; it is ignored.
    if (++s.counts.noop > s.options.maxSmtpNoop) return s.limit('NOOP commands');
    return replies.noop();
  },

  QUIT(s, args) {
    if (args.trim() !== '') return replies.noParams('QUIT');
    return replies.bye(s.options.hostName);
  },

  VRFY(s, args) {
    if (++s.counts.vrfy > s.options.maxSmtpVrfy) return s.limit('VRFY/EXPN commands');
    if (args.trim() === '') return replies.syntax('VRFY needs an argument');
    return replies.vrfy();
  },

  EXPN(s, args) {
    if (++s.counts.vrfy > s.options.maxSmtpVrfy) return s.limit('VRFY/EXPN commands');
    if (args.trim() === '') return replies.syntax('EXPN needs an argument');
    return replies.expn();
  },

  HELP() {
    return replies.help();
  },

  STARTTLS(s, args) {
    if (args.trim() !== '') return replies.noParams('STARTTLS');
    if (!s.options.startTls) return replies.notImplemented('STARTTLS');
    if (s.secure) return replies.badSequence('TLS already active');
    return s.startTls();
  },
};

/** No hook took the body: read and drop it (a sink), answer 250. */
const DISCARD: MessageSink = {
  write() {},
  end: () => replies.ok('Ok: message accepted'),
  abort() {},
};
