// Early talkers (postscreen's pregreet test, and its pipelining test made RFC 2920-exact
// by the engine): input before the greeting is PREGREET; input before the reply to a
// command that ends a pipelined group (or any reply without PIPELINING) is PIPELINING.
// The action is the operator's: drop (554 and close), enforce (550 every RCPT), ignore.

import type { EarlyTalkAction } from '../config/schema.js';
import type { EarlyTalkEvent } from '../smtp/hooks.js';
import { escapeBytes } from '../util/escape.js';
import type { Reply } from '../smtp/reply.js';

export interface EarlyTalkVerdict {
  tag: 'PREGREET' | 'PIPELINING';
  details: Record<string, unknown>;
  /** Reply that ends the session now (drop), or undefined. */
  reply: Reply | undefined;
  /** Reply for every later RCPT (enforce), or undefined. */
  rcptReject: Reply | undefined;
}

/** drop: the session ends at once (postscreen's 'protocol error'). */
export const protocolError = (): Reply => ({ code: 554, enhanced: '5.5.1', text: 'protocol error', close: true });
/** enforce: every RCPT is refused, the session goes on (and stores nothing). */
export const protocolErrorRcpt = (): Reply => ({ code: 550, enhanced: '5.5.1', text: 'protocol error' });

export function earlyTalkVerdict(ev: EarlyTalkEvent, action: EarlyTalkAction): EarlyTalkVerdict {
  const tag = ev.kind === 'pregreet' ? 'PREGREET' : 'PIPELINING';
  const details: Record<string, unknown> = {
    afterMs: ev.afterMs,
    bytes: ev.sample.length,
    sample: escapeBytes(ev.sample),
    action,
    ...(ev.after ? { after: ev.after } : {}),
  };
  return {
    tag,
    details,
    reply: action === 'drop' ? protocolError() : undefined,
    rcptReject: action === 'enforce' ? protocolErrorRcpt() : undefined,
  };
}
