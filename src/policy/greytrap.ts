// Greytraps (OpenBSD spamd): recipients nobody real writes to (greylist.trapAddresses). A client
// that writes to one is trapped for greylist.trapExpiry: each of its sessions is stuttered and
// tarpitted, every RCPT is tempfailed where greylisting runs (on a corpus profile that stores,
// its messages are kept and marked TRAP), and no later retry allowlists it (greylist.ts reads the
// trap first). Pure logic over the state store.

import type { Reply } from '../smtp/reply.js';
import type { StateStore } from '../state/store.js';
import { keys, type StateEntry } from '../state/types.js';

/** Whether `rcpt` is one of the trap addresses (compared case-insensitively). */
export function isTrapAddress(traps: ReadonlySet<string> | null, rcpt: string): boolean {
  return traps !== null && rcpt !== '' && traps.has(rcpt.toLowerCase());
}

/** Records the hit: the client address is trapped for `ttl` ms from now (a new hit extends it). */
export async function trapClient(store: StateStore, ip: string, rcpt: string, ttl: number): Promise<StateEntry> {
  const key = keys.trap(ip);
  const old = await store.get(key);
  const now = store.clock();
  const hits = typeof old?.value.hits === 'number' ? old.value.hits + 1 : 1;
  const value = { ip, rcpt: rcpt.toLowerCase(), at: now, hits };
  await store.set(key, value, ttl);
  return { key, value, expiresAt: now + ttl };
}

/** A trapped client's RCPT (spamd answers its victims 450/451 forever, slowly). */
export function trappedReply(): Reply {
  return { code: 451, enhanced: '4.7.1', text: 'Temporary failure, please try again later' };
}
