// The bare engine on 127.0.0.1:0: a node:net server whose sockets become Sessions with
// the hooks a test gives (no policy, no store), for tests of the engine's own contract.
import { createServer, type AddressInfo, type Server } from 'node:net';
import type { SessionHooks } from '../../src/smtp/hooks.js';
import { Session, type SessionConfig } from '../../src/smtp/session.js';

export const ENGINE_DEFAULTS: SessionConfig = {
  listener: 'test',
  hostName: 'mx.test',
  receiveTimeout: 5000,
  maxLineLength: 512,
  maxPendingInput: 65_536,
  maxDataSize: 1_048_576,
  dataTimeout: 0,
  maxSessionTime: 0,
  maxSmtpErrors: 1000,
  maxSmtpNoop: 1000,
  maxSmtpVrfy: 1000,
  maxSmtpRcpt: 100,
  maxRcptOvershoot: 2000,
  maxJunkCommands: 100,
  maxMessages: 1000,
  advertisePipelining: true,
  bannerTeaser: false,
};

export interface Engine {
  port: number;
  sessions: Set<Session>;
  close(): Promise<void>;
}

export async function startEngine(hooks: SessionHooks, cfg: Partial<SessionConfig> = {}): Promise<Engine> {
  const sessions = new Set<Session>();
  let n = 0;
  const opts = { ...ENGINE_DEFAULTS, ...cfg };
  const server: Server = createServer({ allowHalfOpen: true }, (sock) => {
    const perSession: SessionHooks = {
      ...hooks,
      close(si, info) {
        sessions.delete(s);
        hooks.close?.(si, info);
      },
    };
    const s = new Session(sock, { id: `t${++n}`, remoteAddress: '127.0.0.1', remotePort: sock.remotePort ?? 0 }, opts, { newSession: () => perSession });
    sessions.add(s);
    s.start();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    sessions,
    async close() {
      for (const s of sessions) s.destroy('test');
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
