// Wires what watches a running server: metrics (always, from its events), the admin HTTP
// listener (http.port > 0) with the console (http.console) and the on-message webhook (webhook.url set). The daemon calls
// startObservability() after listen(), reload() after each SIGHUP, stop() after close().

import type { Config, HttpConfig, WebhookConfig } from './config/schema.js';
import type { MessageEvent } from './events.js';
import { startConsole, type ConsoleRuntime } from './console/index.js';
import { startAdmin, type AdminServer } from './http/admin.js';
import type { Logger } from './log/logger.js';
import { Metrics } from './metrics.js';
import type { FakemxServer } from './server.js';
import { Webhook } from './webhook.js';

export interface Observability {
  /** The console's runtime while http.console is on (tests and the start-up line read it). */
  readonly console: ConsoleRuntime | null;
  stop(): Promise<void>;
  reload(config: Config): Promise<void>;
}

/** Milliseconds stop() lets queued webhook deliveries finish before dropping them. */
const WEBHOOK_STOP_GRACE_MS = 2_000;

export async function startObservability(server: FakemxServer, config: Config, logger: Logger): Promise<Observability> {
  const startedAt = Date.now();
  const metrics = new Metrics();
  const detach = metrics.attach(server, logger);
  metrics.seedStores(server.stores);
  let closed = false;
  const onClose = () => {
    closed = true;
  };
  server.on('close', onClose);

  let admin: AdminServer | null = null;
  let http: HttpConfig = { ...config.http };
  const sources = { state: () => server.state, dnsHealth: () => server.dnsHealth() };
  let consoleRt: ConsoleRuntime | null = config.http.console ? startConsole(server, config, logger, sources) : null;
  const openAdmin = (h: HttpConfig) =>
    startAdmin({
      address: h.address,
      port: h.port,
      source: server,
      closed: () => closed,
      metrics: async () => ({ text: await metrics.text(), contentType: metrics.contentType }),
      logger,
      startedAt,
      console: () => consoleRt?.app ?? null,
    });

  let webhook: Webhook | null = null;
  const newWebhook = (w: WebhookConfig) => new Webhook(w, logger, { count: (r, n) => metrics.webhookResult(r, n) });
  // 'message' is emitted from inside a session; enqueue() is O(1) and never throws.
  const onMessage = (ev: MessageEvent) => {
    webhook?.enqueue(ev);
  };
  server.on('message', onMessage);

  try {
    if (config.http.port > 0) admin = await openAdmin(http);
  } catch (e) {
    detach();
    consoleRt?.stop();
    server.off('message', onMessage);
    server.off('close', onClose);
    throw e;
  }
  if (config.webhook.url) webhook = newWebhook(config.webhook);

  return {
    get console() {
      return consoleRt;
    },
    async reload(next: Config): Promise<void> {
      metrics.seedStores(server.stores);
      const h = next.http;
      if (h.console && consoleRt) consoleRt.reload(next);
      else if (h.console) consoleRt = startConsole(server, next, logger, sources);
      else {
        consoleRt?.stop();
        consoleRt = null;
      }
      if (h.address !== http.address || h.port !== http.port) {
        const old = admin;
        let oldOpen = old !== null;
        if (h.port > 0) {
          // Bind the new address first so a failed reload keeps the old listener; when the
          // new one needs the same port (address change only), free it and try again.
          try {
            admin = await openAdmin(h);
          } catch (e) {
            if (!old || old.port !== h.port) throw e;
            await old.close();
            oldOpen = false;
            try {
              admin = await openAdmin(h);
            } catch (e2) {
              admin = await openAdmin(http).catch(() => null);
              throw e2;
            }
          }
        } else {
          admin = null;
        }
        if (old && oldOpen) await old.close();
        http = { ...h };
      }
      if (!next.webhook.url) {
        const w = webhook;
        webhook = null;
        await w?.stop(WEBHOOK_STOP_GRACE_MS);
      } else if (webhook) {
        webhook.update(next.webhook);
      } else {
        webhook = newWebhook(next.webhook);
      }
    },
    async stop(): Promise<void> {
      server.off('message', onMessage);
      const w = webhook;
      webhook = null;
      await w?.stop(WEBHOOK_STOP_GRACE_MS);
      await admin?.close();
      admin = null;
      // The corpus index snapshot, so the next start reads only what changes from now on.
      await consoleRt?.flush();
      consoleRt?.stop();
      consoleRt = null;
      detach();
      server.off('close', onClose);
    },
  };
}
