// Error tarpit (FakeSMTP): before each error reply wait errorDelay x errors-so-far ms; with
// tarpit.stutter, write a tarpitted client's replies one byte per stutterInterval (spamd).
// Both switch off while active sessions exceed tarpit.highWater % of maxSessions, so a
// flood cannot hold every slot. The waiting itself is the engine writer's single timer.

import type { PolicyConfig } from '../config/schema.js';
import type { ReplyShape, SessionInfo } from '../smtp/hooks.js';
import type { Reply } from '../smtp/reply.js';

export function tarpitShape(
  s: SessionInfo,
  reply: Reply,
  cfg: Pick<PolicyConfig, 'errorDelay' | 'tarpit'>,
  flagged: boolean,
  active: number,
  maxSessions: number,
): ReplyShape | undefined {
  if (active * 100 > cfg.tarpit.highWater * maxSessions) return undefined;
  const isError = reply.code >= 400 && !reply.neutral;
  const delay = isError ? cfg.errorDelay * s.counts.errors : 0;
  const stutter = cfg.tarpit.stutter && (flagged || s.counts.errors > 0) ? cfg.tarpit.stutterInterval : 0;
  if (delay <= 0 && stutter <= 0) return undefined;
  return { delay, stutter };
}
