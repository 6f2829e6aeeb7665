// Greylisting with OpenBSD spamd's semantics (RFC 6647). The first delivery attempt of a
// triplet (client network, envelope sender, recipient) is answered 451 4.7.1; a retry after
// greylist.passtime and before greylist.greyExpiry passes, and the client network is then
// allowlisted for greylist.whiteExpiry, refreshed on each delivery. A trapped client (greytrap.ts)
// is never allowlisted by a retry. Pure logic over the state store: the caller (PolicySession)
// decides where it runs (RCPT or DATA) and what a state error means (state.onError).

import type { GreylistConfig } from '../config/schema.js';
import type { GreylistAllow } from '../config/lists.js';
import type { Reply } from '../smtp/reply.js';
import type { StateStore } from '../state/store.js';
import { clientNetwork, keys, type StateEntry } from '../state/types.js';
import { isPostmasterAddress } from './recipients.js';

export type { GreylistConfig };

export interface Triplet {
  ip: string;
  /** Envelope sender, "" for the null sender. */
  from: string;
  rcpt: string;
}

export type GreylistOutcome =
  /** The network is allowlisted (its entry was refreshed). */
  | { result: 'allowlisted'; net: string }
  /** A retry after passtime: passes, and the network is allowlisted from now on. */
  | { result: 'passed'; net: string; waitedMs: number }
  /** First attempt (first: true) or a retry before passtime. */
  | { result: 'greylisted'; net: string; first: boolean; retryInMs: number }
  /** The client wrote to a greytrap: tempfailed whatever else is stored. */
  | { result: 'trapped'; net: string; trap: StateEntry };

/** How often an allowlisted network's expiry is pushed back at most. */
export const REFRESH_EVERY_MS = 60_000;

/** One triplet's greylisting decision: one read of the trap, allowlist and triplet entries, then at most two writes. */
export async function greylist(store: StateStore, cfg: GreylistConfig, t: Triplet): Promise<GreylistOutcome> {
  const net = clientNetwork(t.ip, cfg.ipv4Prefix, cfg.ipv6Prefix);
  const greyKey = keys.grey(net, t.from, t.rcpt);
  const whiteKey = keys.white(net);
  const [trap, white, grey] = await store.getMany([keys.trap(t.ip), whiteKey, greyKey]);
  if (trap) return { result: 'trapped', net, trap };
  const now = store.clock();
  if (white) {
    await refreshAllowlisted(store, cfg, white);
    return { result: 'allowlisted', net };
  }
  if (grey) {
    const first = typeof grey.value.first === 'number' ? grey.value.first : now;
    const waited = now - first;
    if (waited >= cfg.passtime) {
      // Two nodes passing the same retry write the same allowlist entry: no race to lose.
      await store.set(whiteKey, { net, first: now, last: now, n: 1, via: `${t.from}|${t.rcpt}` }, cfg.whiteExpiry);
      await store.del(greyKey);
      return { result: 'passed', net, waitedMs: waited };
    }
    return { result: 'greylisted', net, first: false, retryInMs: cfg.passtime - waited };
  }
  // Set-if-absent: two nodes seeing the first attempt at once agree on one first-seen time.
  const added = await store.add(greyKey, { net, from: t.from.toLowerCase(), rcpt: t.rcpt.toLowerCase(), first: now }, cfg.greyExpiry);
  const first = typeof added.entry.value.first === 'number' ? added.entry.value.first : now;
  if (!added.created && now - first >= cfg.passtime) return greylist(store, cfg, t);
  return { result: 'greylisted', net, first: added.created, retryInMs: Math.max(0, cfg.passtime - (now - first)) };
}

/**
 * An allowlisted network delivers: its entry lasts whiteExpiry from now. Written at most once a
 * minute per network, so a busy sender's entry is not rewritten for every recipient (on a
 * 36-day expiry a minute is nothing).
 */
export async function refreshAllowlisted(store: StateStore, cfg: GreylistConfig, white: StateEntry): Promise<void> {
  const now = store.clock();
  const last = typeof white.value.last === 'number' ? white.value.last : 0;
  if (now - last < Math.min(REFRESH_EVERY_MS, cfg.whiteExpiry / 2)) return;
  const n = typeof white.value.n === 'number' ? white.value.n : 0;
  await store.set(white.key, { ...white.value, n: n + 1, last: now }, cfg.whiteExpiry);
}

/**
 * 451 4.7.1 with the time to wait (RFC 6647 §6: say it is greylisting). Neutral: a real MTA
 * greylisted on many recipients is not an error-counting client (no tarpit, no maxSmtpErrors).
 */
export function greylistedReply(retryInMs: number): Reply {
  // In seconds under a minute (a short greylist.passtime), else whole minutes, rounded up.
  const sec = Math.max(1, Math.ceil(retryInMs / 1000));
  const [n, unit] = sec < 60 ? [sec, 'second'] : [Math.ceil(sec / 60), 'minute'];
  return { code: 451, enhanced: '4.7.1', text: `Greylisted, please try again in ${n} ${unit}${n === 1 ? '' : 's'}`, neutral: true };
}

/** state.onError "tempfail": the check could not be made (our problem, so neutral). */
export function stateUnavailableReply(): Reply {
  return { code: 451, enhanced: '4.3.0', text: 'Temporary local problem, please try again later', neutral: true };
}

const matches = (set: ReadonlySet<string>, addr: string): boolean => {
  if (!addr) return false;
  const a = addr.toLowerCase();
  return set.has(a) || set.has(a.slice(a.lastIndexOf('@')));
};

/** Whether this sender/recipient pair is not greylisted: mail to postmaster (RFC 5321 §4.5.1), or the allowList says so. */
export function greylistExempt(allow: GreylistAllow | null, from: string, rcpt: string): boolean {
  if (isPostmasterAddress(rcpt)) return true;
  if (!allow) return false;
  return matches(allow.from, from) || matches(allow.to, rcpt);
}
