// Events the server object emits. Logs, metrics and the webhook all subscribe to these;
// nothing parses log lines. Listeners must not throw (the emitter guards them anyway).

import type { CloseInfo, SessionInfo } from './smtp/hooks.js';
import type { Reply } from './smtp/reply.js';
import type { MessageMetadata } from './store/metadata.js';
import type { StorePrunedEvent, StoreStateEvent } from './store/stores.js';

export interface ListenerInfo {
  name: string;
  address: string;
  port: number;
  tls: 'none' | 'starttls' | 'implicit';
}

export interface VerdictEvent {
  tag: string;
  /** null for a verdict reached before a session existed (PROXY_INVALID, TLS_FAILED, maxSessions). */
  session: SessionInfo | null;
  /** "[ip]:port" */
  client: string;
  details: Record<string, unknown>;
}

export type MessageResult = 'stored' | 'tempfailed' | 'too_big' | 'store_failed' | 'discarded';

/**
 * A message stored (storeData true). Not emitted for a message that was discarded (storeData
 * false), refused, not stored, or folded into an earlier one (store.dedupe): 'messageResult'
 * reports each message's outcome.
 */
export interface MessageEvent {
  session: SessionInfo;
  metadata: MessageMetadata;
  /** Absolute path of the message file (.eml, or the Maildir file in new/); never null as emitted. */
  path: string | null;
}

export interface MessageResultEvent {
  session: SessionInfo;
  result: MessageResult;
  bytes: number;
}

/**
 * Connection outcome as counted in fakemx_connections_total{outcome}: what happened before a
 * session existed. Policy refusals at connect (per-IP limit, access list) happen inside a
 * session and are counted as verdicts (LIMIT, ACCESS_REJECT).
 */
export interface ConnectionEvent {
  listener: string;
  outcome: 'accepted' | 'too_busy' | 'proxy_invalid' | 'tls_failed';
}

export interface DnsQueryEvent {
  zone: string;
  durationMs: number;
  cacheHit: boolean;
  /** timeout, servfail, refused, formerr, network, bad_answer */
  error?: string;
}

/** A state store call failed or missed state.timeout (fakemx_state_errors_total). */
export interface StateErrorEvent {
  op: string;
  reason: 'timeout' | 'error' | 'closed';
}

export interface ServerEvents {
  listening: [listeners: ListenerInfo[]];
  connection: [ev: ConnectionEvent];
  connect: [session: SessionInfo];
  disconnect: [session: SessionInfo, info: CloseInfo];
  command: [session: SessionInfo, line: string];
  reply: [session: SessionInfo, reply: Reply];
  verdict: [ev: VerdictEvent];
  message: [ev: MessageEvent];
  messageResult: [ev: MessageResultEvent];
  dnsQuery: [ev: DnsQueryEvent];
  /** A store became full (store.maxBytes / store.minFreeBytes) or has space again. */
  storeState: [ev: StoreStateEvent];
  /** store.onFull prune deleted a day directory. */
  storePruned: [ev: StorePrunedEvent];
  stateError: [ev: StateErrorEvent];
  close: [];
  error: [err: Error];
}
