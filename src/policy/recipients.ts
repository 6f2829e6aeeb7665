// Recipient policy: localDomains and localMailboxes (FakeSMTP). Checks the RECIPIENT's
// domain (FakeSMTP's code checks the sender's there, a bug not copied). <postmaster> and
// postmaster@<accepted domain> are always accepted (RFC 5321 §4.5.1).

import type { Address } from '../smtp/hooks.js';
import type { Reply } from '../smtp/reply.js';

/** The recipient's domain is not one of localDomains. */
export const relayDenied = (): Reply => ({ code: 550, enhanced: '5.7.1', text: 'relaying denied' });
/** The mailbox is not one of localMailboxes. */
export const unknownUser = (): Reply => ({ code: 550, enhanced: '5.1.1', text: 'unknown user' });

const POSTMASTER = /^postmaster(@|$)/i;

/** <postmaster> or postmaster@any domain: mail the client's side must be able to send (§4.5.1). */
export function isPostmasterAddress(address: string): boolean {
  return POSTMASTER.test(address);
}

export function isPostmaster(to: Address): boolean {
  return isPostmasterAddress(to.address);
}

export function checkRecipient(
  to: Address,
  domains: ReadonlySet<string> | null,
  mailboxes: ReadonlySet<string> | null,
): Reply | undefined {
  if (to.domain === '') return undefined; // bare <postmaster>: the parser admits nothing else
  const domain = to.domain.toLowerCase();
  if (domains && !domains.has(domain)) return relayDenied();
  if (mailboxes && !isPostmaster(to) && !mailboxes.has(`${to.local.toLowerCase()}@${domain}`)) {
    return unknownUser();
  }
  return undefined;
}
