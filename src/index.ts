// Public library API of fakemx: createServer() and the types of its config, events,
// hooks and stored metadata. The `fakemx` CLI daemon is built on exactly this.

export { createServer, FakemxServer, type CreateServerOptions, type ListenOptions } from './server.js';
export { loadConfig, ConfigError, type LoadedConfig } from './config/load.js';
export type { Config, PolicyConfig, ListenerConfig } from './config/schema.js';
export type * from './events.js';
export type { SessionInfo, SessionHooks, Address, MailParams, TlsInfo, CloseInfo } from './smtp/hooks.js';
export type { Reply } from './smtp/reply.js';
export type { MessageMetadata, VerdictRecord, DnsListResult, DnsZoneResult } from './store/metadata.js';
