// Recipient policy: localDomains and localMailboxes (FakeSMTP). Checks the RECIPIENT's
// domain (FakeSMTP's code checks the sender's there, a bug not copied). <postmaster> and
// postmaster@<accepted domain> are always accepted (RFC 5321 §4.5.1).

import type { Address } from '../smtp/hooks.js';
import { replies, type Reply } from '../smtp/reply.js';

export function checkRecipient(
  to: Address,
  domains: ReadonlySet<string> | null,
  mailboxes: ReadonlySet<string> | null,
): Reply | undefined {
  if (to.domain === '') return undefined; // bare <postmaster>: the parser admits nothing else
  const domain = to.domain.toLowerCase();
  if (domains && !domains.has(domain)) return replies.relayDenied();
  if (mailboxes && to.local.toLowerCase() !== 'postmaster' && !mailboxes.has(`${to.local.toLowerCase()}@${domain}`)) {
    return replies.unknownUser();
  }
  return undefined;
}
