// The session's state machine (src/smtp/session.ts): the transitions a session may take, and
// those it refuses (an impossible state is a fault: 421 and close), as named cases.
import { describe, expect, it } from 'vitest';
import { canTransition, type State } from '../../src/smtp/session.js';

const cases: { name: string; from: State; to: State; ok: boolean }[] = [
  { name: 'the greeting is written', from: 'greeting', to: 'ready', ok: true },
  { name: 'a connect-time rejection is answered', from: 'greeting', to: 'busy', ok: true },
  { name: 'a command line arrives', from: 'ready', to: 'busy', ok: true },
  { name: 'a reply is written and the next line awaited', from: 'busy', to: 'ready', ok: true },
  { name: 'a reply leads to another (tarpit, pipelined group)', from: 'busy', to: 'busy', ok: true },
  { name: '354 opens the body', from: 'busy', to: 'data', ok: true },
  { name: 'BDAT starts reading a chunk', from: 'busy', to: 'chunk', ok: true },
  { name: 'STARTTLS starts the handshake', from: 'busy', to: 'tls', ok: true },
  { name: 'the final dot hands the message to the store', from: 'data', to: 'storing', ok: true },
  { name: 'the LAST chunk hands the message to the store', from: 'chunk', to: 'storing', ok: true },
  { name: 'the store answers', from: 'storing', to: 'busy', ok: true },
  { name: 'the handshake ends', from: 'tls', to: 'ready', ok: true },
  { name: 'a closing session closes', from: 'closing', to: 'closed', ok: true },
  { name: 'a client hangs up while waiting', from: 'ready', to: 'closed', ok: true },
  { name: 'no body without a 354', from: 'ready', to: 'data', ok: false },
  { name: 'no chunk without its command', from: 'ready', to: 'chunk', ok: false },
  { name: 'no store before the body ends', from: 'busy', to: 'storing', ok: false },
  { name: 'no command line while storing', from: 'storing', to: 'ready', ok: false },
  { name: 'no body right after the greeting', from: 'greeting', to: 'data', ok: false },
  { name: 'no handshake inside a body', from: 'data', to: 'tls', ok: false },
  { name: 'a closing session never talks again', from: 'closing', to: 'ready', ok: false },
  { name: 'a closing session never answers again', from: 'closing', to: 'busy', ok: false },
  { name: 'a closed session stays closed', from: 'closed', to: 'closed', ok: false },
  { name: 'a closed session never comes back', from: 'closed', to: 'ready', ok: false },
  { name: 'the greeting is never sent twice', from: 'ready', to: 'greeting', ok: false },
  { name: 'nor after a reply', from: 'busy', to: 'greeting', ok: false },
];

describe('session state transitions', () => {
  for (const c of cases) {
    it(`${c.name}: ${c.from} -> ${c.to} ${c.ok ? 'allowed' : 'refused'}`, () => {
      expect(canTransition(c.from, c.to)).toBe(c.ok);
    });
  }
});
