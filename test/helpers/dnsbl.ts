// Shared set-up of the DNS list tests (test/dnsbl/*, test/commands/dnsbl.test.ts): one in-process
// DNS server per test file (useDnsServer() registers its hooks; `srv` is the live binding), an
// engine and check on it with a captured log, and configs through the real loader.

import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { Config, DnsConfig } from '../../src/config/schema.js';
import type { DnsQueryEvent } from '../../src/events.js';
import { DnsblCheck } from '../../src/dnsbl/check.js';
import { DnsblEngine } from '../../src/dnsbl/engine.js';
import { parseProviders } from '../../src/dnsbl/provider.js';
import { startDnsServer, type TestDnsServer } from './dns-server.js';

/** The test file's DNS server, set by useDnsServer()'s beforeAll. */
export let srv: TestDnsServer;
const engines: DnsblEngine[] = [];

/** Starts the server before the file's tests; stops every engine setup() made and resets the server after each. */
export function useDnsServer(): void {
  beforeAll(async () => {
    srv = await startDnsServer();
  });
  afterAll(async () => {
    await srv.stop();
  });
  afterEach(() => {
    for (const e of engines.splice(0)) e.stop();
    srv.reset();
  });
}

export function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

/** Answers are expected within `timeout` (generous: a busy machine is slow); tests of timeouts set their own. */
export function dnsConfig(over: Partial<DnsConfig> = {}): DnsConfig {
  return {
    servers: [srv.address], timeout: 2000, retries: 0, minTtl: 60, maxTtl: 3600, cacheSize: 1000,
    threshold: 1, healthCheckInterval: 0, skipPrivate: false, action: 'auto', ...over,
  };
}

export interface Setup {
  rwl?: string[];
  rbl?: string[];
  dns?: Partial<DnsConfig>;
  clock?: { t: number };
}

export function setup(o: Setup) {
  const events: DnsQueryEvent[] = [];
  const log = capture();
  const dns = dnsConfig(o.dns);
  const engine = new DnsblEngine({
    dns, logger: log.logger, onQuery: (e) => events.push(e),
    ...(o.clock ? { now: () => o.clock!.t } : {}),
  });
  engines.push(engine);
  const check = new DnsblCheck(engine, parseProviders(o.rwl ?? []), parseProviders(o.rbl ?? []), {
    threshold: dns.threshold, skipPrivate: dns.skipPrivate, timeout: dns.timeout, action: dns.action,
  });
  return { engine, check, events, lines: log.lines, soon: () => Date.now() + 1000 };
}

export function config(over: Record<string, unknown>): Config {
  return loadConfig({ overrides: over, env: {} }).config;
}
