// What each listener runs with, computed once per loaded config and frozen: the listener's
// own settings, its profile merged over the top level (tarpit merged key by key), its name,
// and the TLS options read from disk once. The server, the DNS lists and the admin checks
// take these; none merges a profile again.

import { MAX_TLS_FILE_BYTES, readCapped } from '../util/read-capped.js';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import type { Config, ListenerConfig, PolicyConfig, ProxyProtocolConfig, TlsMode } from './schema.js';
import { hostPort } from '../net/ip.js';

export interface EffectiveListener {
  /** The systemd FileDescriptorName, or address:port. */
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly tls: TlsMode;
  /** FileDescriptorName to take from socket activation, if the config names one. */
  readonly fdName: string | undefined;
  readonly proxyProtocol: Readonly<ProxyProtocolConfig> | undefined;
  readonly policy: Readonly<PolicyConfig>;
  /** The config entry it came from (reload compares these). */
  readonly source: Readonly<ListenerConfig>;
}

export interface EffectiveTls {
  readonly options: SecureContextOptions;
  readonly context: SecureContext;
}

/** The profile over the top level; tarpit, cache, greylist and auth are merged key by key. */
function policyOf(config: Config, l: ListenerConfig): PolicyConfig {
  const p = l.profile ?? {};
  const merged: PolicyConfig = {
    ...config,
    ...p,
    tarpit: Object.freeze({ ...config.tarpit, ...(p.tarpit ?? {}) }),
    cache: Object.freeze({ ...config.cache, ...(p.cache ?? {}), passTtl: Object.freeze({ ...config.cache.passTtl, ...(p.cache?.passTtl ?? {}) }) }),
    greylist: Object.freeze({ ...config.greylist, ...(p.greylist ?? {}) }),
    auth: Object.freeze({ ...config.auth, ...(p.auth ?? {}) }),
  };
  return merged;
}

export function effectiveListeners(config: Config): readonly EffectiveListener[] {
  return Object.freeze(
    config.listeners.map((l) =>
      Object.freeze({
        name: l.name ?? hostPort(l.address, l.port),
        address: l.address,
        port: l.port,
        tls: l.tls,
        fdName: l.name,
        proxyProtocol: l.proxyProtocol,
        policy: Object.freeze(policyOf(config, l)),
        source: l,
      }),
    ),
  );
}

/** A tls.* setting that cannot be used, with the key at fault (the loader names it). */
export class TlsSettingError extends Error {
  constructor(readonly key: 'tls.cert' | 'tls.key' | 'tls.ca' | 'tls.ciphers', message: string) {
    super(message);
  }
}

function readTlsFile(key: 'tls.cert' | 'tls.key' | 'tls.ca', path: string): Buffer {
  let buf: Buffer | null;
  try {
    buf = readCapped(path, MAX_TLS_FILE_BYTES);
  } catch (e) {
    throw new TlsSettingError(key, `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (buf === null) throw new TlsSettingError(key, `${path} is larger than ${MAX_TLS_FILE_BYTES} bytes`);
  return buf;
}

/**
 * Certificate and key read once; undefined without a certificate. Throws TlsSettingError naming
 * the setting at fault: each file is read on its own, and the cipher list and the CA bundle are
 * tried alone before the pair, so OpenSSL's message is never pinned on the wrong key.
 */
export function effectiveTls(config: Config): EffectiveTls | undefined {
  if (!config.tls.cert || !config.tls.key) return undefined;
  const options: SecureContextOptions = {
    cert: readTlsFile('tls.cert', config.tls.cert),
    key: readTlsFile('tls.key', config.tls.key),
    ...(config.tls.ca ? { ca: readTlsFile('tls.ca', config.tls.ca) } : {}),
    minVersion: config.tls.minVersion,
    ...(config.tls.ciphers ? { ciphers: config.tls.ciphers } : {}),
  };
  const tryContext = (key: TlsSettingError['key'], what: string, o: SecureContextOptions) => {
    try {
      return createSecureContext(o);
    } catch (e) {
      throw new TlsSettingError(key, `cannot use the ${what}: ${(e as Error).message}`);
    }
  };
  if (options.ciphers) tryContext('tls.ciphers', 'cipher list', { ciphers: options.ciphers });
  if (options.ca) {
    // OpenSSL skips what is not a certificate, so a wrong file would be taken as an empty bundle.
    if (!(options.ca as Buffer).includes('-----BEGIN CERTIFICATE-----')) throw new TlsSettingError('tls.ca', `cannot use the CA bundle: no PEM certificate in ${config.tls.ca}`);
    tryContext('tls.ca', 'CA bundle', { ca: options.ca });
  }
  return Object.freeze({ options, context: tryContext('tls.cert', 'certificate/key', options) });
}

/** Every corpus directory a config writes to: one per distinct storePath where storeData is on. */
export function storePathsInUse(listeners: readonly EffectiveListener[]): string[] {
  return [...new Set(listeners.filter((l) => l.policy.storeData).map((l) => l.policy.storePath))];
}
