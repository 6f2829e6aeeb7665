// The one place a verdict goes: every tag, from the engine, a policy or the server itself
// (PROXY_INVALID, TLS_FAILED before a session exists), becomes one log line with the tag and
// the client [ip]:port, and one 'verdict' event that metrics and embedding programs count.
// Session open/close lines, verbose command/reply lines and stored messages pass here too.

import type { EventEmitter } from 'node:events';
import type { ServerEvents, MessageResult } from './events.js';
import { clientTag, type Logger } from './log/logger.js';
import type { CloseInfo, SessionInfo } from './smtp/hooks.js';
import { sanitize, sendsEnhanced, type Reply } from './smtp/reply.js';
import type { StoredMessage } from './store/corpus.js';
import type { VerdictRecord } from './store/metadata.js';

export class Observer {
  /**
   * Whether anyone listens for 'command' / 'reply' events, kept up to date from the emitter's
   * own newListener/removeListener events: asked once per command and per reply, which
   * listenerCount() made cost more than the rest of the observer's work for that line.
   */
  private commandListened = false;
  private replyListened = false;

  constructor(
    private readonly logger: Logger,
    private readonly events: EventEmitter<ServerEvents>,
  ) {
    // newListener comes before the listener is added; removeListener after it is gone.
    const untyped = events as unknown as EventEmitter;
    untyped.on('newListener', (name: string | symbol) => {
      if (name === 'command') this.commandListened = true;
      else if (name === 'reply') this.replyListened = true;
    });
    untyped.on('removeListener', (name: string | symbol) => {
      if (name === 'command' || name === 'reply') this.recount();
    });
    this.recount();
  }

  private recount(): void {
    this.commandListened = this.events.listenerCount('command') > 0;
    this.replyListened = this.events.listenerCount('reply') > 0;
  }

  /** A session's verdict; the caller keeps `rec` in the session's verdict list. */
  verdict(s: SessionInfo, rec: VerdictRecord): void {
    const { tag, atMs: _at, ...details } = rec;
    const client = clientTag(s.remoteAddress, s.remotePort);
    if (this.logger.isLevelEnabled('info')) this.logger.info({ tag, session: s.id, client, ...details }, `${tag} from ${client}`);
    this.events.emit('verdict', { tag, session: s, client, details });
  }

  /** A verdict before any session exists (PROXY header, implicit-TLS handshake, maxSessions). */
  connectionVerdict(tag: string, ip: string, port: number, details: Record<string, unknown>): void {
    const client = clientTag(ip, port);
    if (this.logger.isLevelEnabled('info')) this.logger.info({ tag, client, ...details }, `${tag} from ${client}`);
    this.events.emit('verdict', { tag, session: null, client, details });
  }

  open(s: SessionInfo, listener: string, tls: unknown): void {
    if (!this.logger.isLevelEnabled('info')) return;
    const client = clientTag(s.remoteAddress, s.remotePort);
    this.logger.info({ tag: 'OPEN', session: s.id, client, listener, ...(tls ? { tls } : {}) }, `session opened from ${client}`);
  }

  /** The CLOSE line (built only when info is logged: every session pays for this call) and the 'disconnect' event. */
  /** `outcomes`: the per-message verdicts (STORED, ...) counted by tag, kept apart from the session's list. */
  close(s: SessionInfo, info: CloseInfo, verdicts: readonly VerdictRecord[], outcomes?: Readonly<Record<string, number>>): void {
    if (this.logger.isLevelEnabled('info')) this.closeLine(s, info, verdicts, outcomes);
    this.events.emit('disconnect', s, info);
  }

  private closeLine(s: SessionInfo, info: CloseInfo, verdicts: readonly VerdictRecord[], outcomes: Readonly<Record<string, number>> | undefined): void {
    const counts: Record<string, number> = { ...outcomes };
    for (const v of verdicts) counts[v.tag] = (counts[v.tag] ?? 0) + 1;
    this.logger.info(
      {
        tag: 'CLOSE', session: s.id, client: clientTag(s.remoteAddress, s.remotePort), listener: s.listener,
        // stored: messages made durable, tempfailed afterwards or not (counts.messages counts only those answered 250).
        helo: s.helo ?? null, counts: s.counts, stored: counts.STORED ?? 0, verdicts: counts, outcome: info.reason, durationMs: info.durationMs,
        ...(s.tls ? { tls: s.tls } : {}),
      },
      `session closed: ${info.reason}`,
    );
  }

  /** Each command line; sanitised only when someone will see it (the per-line cost is paid by verbose runs). */
  command(s: SessionInfo, raw: string, verbose: boolean): void {
    if (!verbose && !this.commandListened) return;
    const line = sanitize(raw, 512);
    if (verbose) this.logger.info({ tag: 'CMD', session: s.id, client: clientTag(s.remoteAddress, s.remotePort), line }, 'command');
    this.events.emit('command', s, line);
  }

  reply(s: SessionInfo, r: Reply, verbose: boolean): void {
    if (verbose) {
      const enhanced = r.enhanced !== undefined && sendsEnhanced(s.helo, r) ? { enhanced: r.enhanced } : {};
      this.logger.info({ tag: 'REPLY', session: s.id, client: clientTag(s.remoteAddress, s.remotePort), code: r.code, ...enhanced, text: r.text }, 'reply');
    }
    if (this.replyListened) this.events.emit('reply', s, r);
  }

  /** A message made durable: the webhook and embedding programs get its metadata. */
  stored(s: SessionInfo, m: StoredMessage): void {
    this.events.emit('message', { session: s, metadata: m.metadata, path: m.path });
  }

  messageResult(s: SessionInfo, result: MessageResult, bytes: number): void {
    this.events.emit('messageResult', { session: s, result, bytes });
  }
}
