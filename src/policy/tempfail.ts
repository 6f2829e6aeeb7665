// Tempfail (FakeSMTP's MX sandwich): with doTempFail the sender must see a temporary failure
// so a real MTA retries the real MX (RFC 5321 §4.5.4.1), never a 5xx. Without storing, DATA
// itself is refused; when storing, the message is kept first and the final dot is refused.

import type { PolicyConfig } from '../config/schema.js';
import type { Reply } from '../smtp/reply.js';

export type TempfailPoint = 'DATA' | 'end of data' | null;

/** Where this policy tempfails a transaction, if at all. */
export function tempfailPoint(cfg: Pick<PolicyConfig, 'doTempFail' | 'storeData'>): TempfailPoint {
  if (!cfg.doTempFail) return null;
  return cfg.storeData ? 'end of data' : 'DATA';
}

/** 421 4.3.2 and close: FakeSMTP's exact text. */
export function tempfailReply(): Reply {
  return { code: 421, enhanced: '4.3.2', text: 'Service temporarily unavailable, closing transmission channel', close: true, outcome: 'tempfail' };
}
