// The one convict schema for fakemx's config file. Top-level keys are FakeSMTP's
// app.config settings (lowerCamelCase, same meaning and defaults); groups added by
// fakemx nest under tls/dns/tarpit/http/webhook/logFiles. Every key has a `doc` and
// an env override FAKEMX_<KEY_IN_UPPER_SNAKE> (nested: FAKEMX_DNS_TIMEOUT).

export type EarlyTalkAction = 'drop' | 'enforce' | 'ignore';
export type DnsAction = 'auto' | 'drop' | 'enforce' | 'ignore';
export type TlsMode = 'none' | 'starttls' | 'implicit';

export interface TarpitConfig {
  stutter: boolean;
  stutterInterval: number;
  highWater: number;
}

/** The state store (issue 14): one per daemon, shared by every listener. */
export interface StateConfig {
  backend: 'local' | 'redis';
  path: string;
  timeout: number;
  onError: 'open' | 'tempfail';
  leaseTtl: number;
  leaseBlock: number;
  redis: { url: string; prefix: string; connectTimeout: number; tlsCa: string; password: string; cacheEntries: number };
}

/** The client cache (postscreen's temporary allow/deny list); per listener profile. */
export interface CacheConfig {
  enabled: boolean;
  passTtl: { greet: number; pipelining: number; dnsbl: number };
  /** Floor of a DNS list pass's TTL (the DNS answer's TTL, clamped to [this, passTtl.dnsbl]). */
  dnsblMinTtl: number;
  failTtl: number;
}

/** The AUTH honeypot (RFC 4954); per listener profile. Every attempt fails. */
export interface AuthConfig {
  enabled: boolean;
  allowPlaintext: boolean;
  cramMd5: boolean;
  maxAttempts: number;
  recordPasswords: 'none' | 'sha256' | 'plain';
  salt: string;
}

/** Greylisting and greytraps (spamd); per listener profile. */
export interface GreylistConfig {
  enabled: boolean;
  at: 'rcpt' | 'data';
  passtime: number;
  greyExpiry: number;
  whiteExpiry: number;
  ipv4Prefix: number;
  ipv6Prefix: number;
  allowList: string;
  trapAddresses: string;
  trapExpiry: number;
}

export interface DnsConfig {
  servers: string[];
  timeout: number;
  retries: number;
  minTtl: number;
  maxTtl: number;
  cacheSize: number;
  threshold: number;
  healthCheckInterval: number;
  skipPrivate: boolean;
  action: DnsAction;
}

export interface TlsConfig {
  cert: string;
  key: string;
  ca: string;
  minVersion: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
  ciphers: string;
  handshakeTimeout: number;
}

export interface ProxyProtocolConfig {
  trusted: string[];
  timeout: number;
}

export interface ListenerConfig {
  address: string;
  port: number;
  tls: TlsMode;
  proxyProtocol?: ProxyProtocolConfig;
  profile?: Partial<PolicyConfig>;
  /** systemd FileDescriptorName to take from socket activation, if any. */
  name?: string;
}

export interface HttpConfig {
  address: string;
  port: number;
  console: boolean;
  token: string;
  consoleWrite: boolean;
}

export interface WebhookConfig {
  url: string;
  headers: Record<string, string>;
  timeout: number;
  maxRetries: number;
  queueSize: number;
  includeRawMax: number;
}

export interface LogFilesConfig {
  frequency: 'daily' | 'hourly' | 'monthly';
  keep: number;
}

/** The corpus beside storeData/storePath (one setting for every store; not per listener). */
export interface StoreConfig {
  format: 'eml' | 'maildir';
  maxBytes: number;
  minFreeBytes: number;
  onFull: 'prune' | 'stop';
  dedupe: boolean;
}

/** Keys a listener profile may override: everything that shapes a session. */
export interface PolicyConfig {
  hostName: string;
  receiveTimeout: number;
  maxSmtpErrors: number;
  maxSmtpNoop: number;
  maxSmtpVrfy: number;
  maxSmtpRcpt: number;
  maxRcptOvershoot: number;
  maxJunkCommands: number;
  maxSessionTime: number;
  maxMessages: number;
  storeData: boolean;
  storePath: string;
  maxDataSize: number;
  dataTimeout: number;
  verboseLogging: boolean;
  bannerDelay: number;
  errorDelay: number;
  doTempFail: boolean;
  doEarlyTalk: boolean;
  earlyTalkAction: EarlyTalkAction;
  bannerTeaser: boolean;
  advertisePipelining: boolean;
  rwlProviders: string[];
  rblProviders: string[];
  localDomains: string;
  localMailboxes: string;
  maxSessionsPerIp: number;
  ipv6Prefix: number;
  accessList: string;
  maxLineLength: number;
  maxPendingInput: number;
  tarpit: TarpitConfig;
  cache: CacheConfig;
  greylist: GreylistConfig;
  chunking: boolean;
  binaryMime: boolean;
  auth: AuthConfig;
}

export interface Config extends PolicyConfig {
  listenAddress: string;
  listenPort: number;
  maxSessions: number;
  logPath: string;
  logLevel: string;
  logFlushInterval: number;
  shutdownGrace: number;
  listeners: ListenerConfig[];
  tls: TlsConfig;
  dns: DnsConfig;
  http: HttpConfig;
  webhook: WebhookConfig;
  logFiles: LogFilesConfig;
  store: StoreConfig;
  state: StateConfig;
}

/** Keys a listener `profile` may override. */
export const PROFILE_KEYS: readonly (keyof PolicyConfig)[] = [
  'hostName', 'receiveTimeout', 'maxSmtpErrors', 'maxSmtpNoop', 'maxSmtpVrfy', 'maxSmtpRcpt',
  'maxRcptOvershoot', 'maxJunkCommands', 'maxSessionTime', 'maxMessages', 'storeData', 'storePath', 'maxDataSize', 'dataTimeout', 'verboseLogging', 'bannerDelay',
  'errorDelay', 'doTempFail', 'doEarlyTalk', 'earlyTalkAction', 'bannerTeaser',
  'advertisePipelining', 'rwlProviders', 'rblProviders', 'localDomains', 'localMailboxes',
  'maxSessionsPerIp', 'ipv6Prefix', 'accessList', 'maxLineLength', 'maxPendingInput', 'tarpit',
  'cache', 'greylist',
  'chunking', 'binaryMime', 'auth',
];

const nat = 'nat';
/** Milliseconds, or a string with a unit ("25 minutes"): see config/duration.ts. */
const dur = 'duration';
const int = (min: number, max: number) => ({ min, max });

/** Raw schema. `range` is checked by the loader (convict formats can't carry bounds). */
export interface SchemaLeaf {
  doc: string;
  format: unknown;
  default: unknown;
  range?: { min: number; max: number };
  env?: string;
  sensitive?: boolean;
}
export type SchemaNode = { [key: string]: SchemaLeaf | SchemaNode };

export const schema: SchemaNode = {
  // ---- FakeSMTP app.config settings -------------------------------------------
  hostName: { doc: 'Host name used in the banner, EHLO reply and Received: header (a host name of LDH labels, an IDN as its A-label, or an address literal such as [192.0.2.1]); "" = the system host name.', format: String, default: '' },
  listenAddress: { doc: 'Address to listen on when `listeners` is empty; "" = 127.0.0.1 (FakeSMTP falls back to loopback). "::" for all IPv6+IPv4.', format: String, default: '' },
  listenPort: { doc: 'Port to listen on when `listeners` is empty (0 = any free port).', format: 'port', default: 25 },
  receiveTimeout: { doc: 'Milliseconds a whole command line may take to arrive, and the longest idle gap inside DATA; then 421 4.4.2 and close.', format: dur, default: 8000, range: int(100, 3_600_000) },
  maxSmtpErrors: { doc: 'Errors (4xx/5xx replies) allowed per session; one more gets 421 4.7.0 and close. Replies that are not the client\'s fault do not count and are not tarpitted: 452 to a RCPT over maxSmtpRcpt, 451 local problems, greylisting (maxRcptOvershoot bounds those).', format: nat, default: 4, range: int(0, 10_000) },
  maxSmtpNoop: { doc: 'NOOP commands allowed per session; one more gets 421 4.7.0 and close.', format: nat, default: 7, range: int(0, 10_000) },
  maxSmtpVrfy: { doc: 'VRFY/EXPN commands allowed per session; one more gets 421 4.7.0 and close.', format: nat, default: 10, range: int(0, 10_000) },
  maxSmtpRcpt: { doc: 'Recipients accepted per message; each extra RCPT gets 452 4.5.3 and the session goes on (RFC 5321 §4.5.3.1.10, as Postfix; FakeSMTP closes the session instead).', format: nat, default: 100, range: int(1, 100_000) },
  maxMessages: { doc: 'Messages accepted per session; one more gets 421 4.7.0 and close.', format: nat, default: 10, range: int(1, 1_000_000) },
  maxSessions: { doc: 'Concurrent sessions over all listeners; one more gets 421 4.3.2 at once and close.', format: nat, default: 16, range: int(1, 1_000_000) },
  storeData: { doc: 'Store each accepted message (with envelope headers and metadata) under storePath; false = read and discard (sink).', format: Boolean, default: true },
  storePath: { doc: 'Directory for the corpus; "" = ./var/corpus. Created if missing.', format: String, default: '' },
  store: {
    format: { doc: 'Corpus layout per UTC day directory: eml (`<id>.eml`) or maildir (the day directory is a Maildir: written in `tmp/`, fsynced, renamed into `new/`). Either way an `<id>.json` record beside it.', format: ['eml', 'maildir'], default: 'eml' },
    maxBytes: { doc: 'Cap on the corpus size in octets (messages, records, journals, and files at the store root such as the console index snapshot); past it store.onFull applies. 0 = no cap.', format: nat, default: 0, range: int(0, Number.MAX_SAFE_INTEGER) },
    minFreeBytes: { doc: 'Free octets to leave on the corpus filesystem; below it store.onFull applies. 0 = no check.', format: nat, default: 0, range: int(0, Number.MAX_SAFE_INTEGER) },
    onFull: { doc: 'When maxBytes or minFreeBytes is crossed: prune (delete whole oldest days, never today, down to 90% of maxBytes and 110% of minFreeBytes) or stop (store nothing, STORE_FULL verdict, same reply) until space returns.', format: ['prune', 'stop'], default: 'stop' },
    dedupe: { doc: 'Store each body (what follows the trace headers) once; later arrivals go into the first message\'s record (time, client, envelope) and `fakemx report` counts them.', format: Boolean, default: false },
  },
  maxDataSize: { doc: 'Largest message in octets (advertised as SIZE); bigger ones get 552 5.3.4 (RFC 1870; FakeSMTP answered a 4xx "quota" tempfail, and only when storing). With doTempFail: SIZE is advertised without the number and a bigger message gets the tempfail (421 4.3.2), never a 5xx.', format: nat, default: 2_097_152, range: int(1024, 1_073_741_824) },
  logPath: { doc: 'Directory for rotating log files in addition to stdout; "" = stdout only.', format: String, default: '' },
  verboseLogging: { doc: 'Log every command and reply (never message content).', format: Boolean, default: false },
  bannerDelay: { doc: 'Milliseconds between accept and the 220 greeting.', format: dur, default: 1000, range: int(0, 300_000) },
  errorDelay: { doc: 'Tarpit: before each error reply wait errorDelay x errors-so-far milliseconds.', format: dur, default: 500, range: int(0, 60_000) },
  doTempFail: { doc: 'MX sandwich: answer DATA (storeData false) or the final dot (storeData true) with 421 4.3.2 and close; a message over maxDataSize too, at MAIL (SIZE=) or in its body.', format: Boolean, default: false },
  doEarlyTalk: { doc: 'Detect early talkers: input before the greeting, or before a reply where RFC 2920 forbids it.', format: Boolean, default: true },
  rwlProviders: { doc: 'DNS allow lists asked before rblProviders; a listed client skips the block-list verdict. Entries `zone[=filter][*weight]`.', format: Array, default: [] },
  rblProviders: { doc: 'DNS block lists, postscreen syntax `zone[=filter][*weight]`; listed when the score reaches dns.threshold.', format: Array, default: [] },
  localDomains: { doc: 'Path of a file of accepted recipient domains (one a line, # comments); "" = accept all.', format: String, default: '' },
  localMailboxes: { doc: 'Path of a file of accepted recipient mailboxes local@domain (one a line, # comments); "" = accept all.', format: String, default: '' },

  // ---- fakemx additions ----------------------------------------------------------
  logLevel: { doc: 'Minimum log level: fatal, error, warn, info, debug, trace.', format: ['fatal', 'error', 'warn', 'info', 'debug', 'trace'], default: 'info' },
  logFlushInterval: { doc: 'Milliseconds a connection\'s info lines on stdout may wait to be written together with others (or until 8 KiB wait); warnings and daemon lines are written at once, and everything at stop. Read at start. 0 = each line at once.', format: dur, default: 50, range: int(0, 10_000) },
  shutdownGrace: { doc: 'On SIGTERM/SIGINT, milliseconds open sessions may take to finish before they are closed.', format: dur, default: 10_000, range: int(0, 600_000) },
  maxRcptOvershoot: { doc: 'RCPTs refused with 452 (over maxSmtpRcpt) or deferred with a neutral 451 (greylisting, state.onError tempfail; at DATA with greylist.at data) a session may send; one more gets 421 4.7.0 and close (Postfix: smtpd_recipient_overshoot_limit). Wide enough for a real MTA\'s pipelined batch.', format: nat, default: 2000, range: int(0, 1_000_000) },
  maxJunkCommands: { doc: 'RSET, NOOP, HELP, VRFY, EXPN and repeated HELO/EHLO allowed per session; one more gets 421 4.7.0 and close (Postfix: smtpd_junk_command_limit).', format: nat, default: 100, range: int(1, 1_000_000) },
  maxSessionTime: { doc: 'Milliseconds a whole session may last, whatever it does; then 421 4.4.2 and close (a message being stored is answered first). 0 = no limit.', format: dur, default: 3_600_000, range: int(0, 604_800_000) },
  dataTimeout: { doc: 'Milliseconds a whole DATA phase (354 to the final dot; with BDAT, the first chunk to the LAST) may take; then 421 4.4.2 (receiveTimeout bounds only the idle gaps). 0 = no limit.', format: dur, default: 600_000, range: int(0, 86_400_000) },
  maxLineLength: { doc: 'Longest command line in octets incl. CRLF (RFC 5321 4.5.3.1.4: 512); longer gets 500 5.5.2.', format: nat, default: 512, range: int(512, 65_536) },
  maxPendingInput: { doc: 'Octets of unanswered (pipelined or early) input buffered per session before the reader pauses.', format: nat, default: 65_536, range: int(1024, 16_777_216) },
  earlyTalkAction: { doc: 'What to do with an early talker: drop (554 and close), enforce (reject every RCPT), ignore (log only).', format: ['drop', 'enforce', 'ignore'], default: 'drop' },
  bannerTeaser: { doc: 'Send "220-host" at once and the final 220 line after bannerDelay; talking in between is early talk.', format: Boolean, default: false },
  advertisePipelining: { doc: 'Advertise PIPELINING (RFC 2920); false = any input before a reply is early talk.', format: Boolean, default: true },
  maxSessionsPerIp: { doc: 'Concurrent sessions per client address (IPv6: per ipv6Prefix network); one more gets 421 4.7.0.', format: nat, default: 4, range: int(1, 1_000_000) },
  ipv6Prefix: { doc: 'Prefix length that groups IPv6 clients for maxSessionsPerIp.', format: nat, default: 64, range: int(1, 128) },
  accessList: { doc: 'Path of a file of `permit CIDR` / `reject CIDR` lines, first match wins; permit skips every anti-spam check, reject gets 554 5.7.1.', format: String, default: '' },
  tarpit: {
    stutter: { doc: 'Write replies to tarpitted clients one byte per stutterInterval (spamd).', format: Boolean, default: false },
    stutterInterval: { doc: 'Milliseconds between stuttered bytes.', format: dur, default: 1000, range: int(1, 60_000) },
    highWater: { doc: 'Percent of maxSessions above which tarpitting (delays and stutter) is switched off.', format: nat, default: 90, range: int(1, 100) },
  },
  listeners: { doc: 'Listeners [{address, port, tls: none (default, no STARTTLS even with a certificate)|starttls|implicit, proxyProtocol?: {trusted, timeout}, profile?, name? (unique)}]; empty = one from listenAddress/listenPort.', format: Array, default: [] },
  tls: {
    cert: { doc: 'PEM certificate chain file; with key, enables STARTTLS and implicit-TLS listeners.', format: String, default: '' },
    key: { doc: 'PEM private key file.', format: String, default: '' },
    ca: { doc: 'Optional PEM CA bundle file.', format: String, default: '' },
    minVersion: { doc: 'Lowest TLS version accepted.', format: ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'], default: 'TLSv1.2' },
    ciphers: { doc: 'OpenSSL cipher list; "" = Node defaults.', format: String, default: '' },
    handshakeTimeout: { doc: 'Milliseconds the TLS handshake may take.', format: dur, default: 10_000, range: int(100, 600_000) },
  },
  dns: {
    servers: { doc: 'DNS servers "ip" or "ip:port" ([v6]:port); empty = nameservers of /etc/resolv.conf.', format: Array, default: [] },
    timeout: { doc: 'Milliseconds per DNS try; also the longest the greeting waits for lists beyond bannerDelay.', format: dur, default: 2000, range: int(10, 60_000) },
    retries: { doc: 'Extra tries per query, each on the next server.', format: nat, default: 1, range: int(0, 10) },
    minTtl: { doc: 'Lower clamp of cached answers, seconds.', format: 'duration-s', default: 60, range: int(0, 86_400) },
    maxTtl: { doc: 'Upper clamp of cached answers, seconds.', format: 'duration-s', default: 3600, range: int(0, 604_800) },
    cacheSize: { doc: 'Most (zone, client) entries cached.', format: nat, default: 100_000, range: int(0, 10_000_000) },
    threshold: { doc: 'Score at which a client counts as listed.', format: 'int', default: 1, range: int(-1000, 1000) },
    healthCheckInterval: { doc: 'Minutes between RFC 5782 zone health checks (127.0.0.2 listed, 127.0.0.1 not); 0 = off.', format: 'duration-min', default: 60, range: int(0, 10_080) },
    skipPrivate: { doc: 'Do not look up private, loopback, link-local, CGNAT and ULA clients.', format: Boolean, default: true },
    action: { doc: 'Listed client: auto (FakeSMTP: 421 and close when storeData is false, else collect), drop, enforce (550 each RCPT), ignore.', format: ['auto', 'drop', 'enforce', 'ignore'], default: 'auto' },
  },
  http: {
    address: { doc: 'Address of the admin HTTP listener (/healthz, /metrics).', format: String, default: '127.0.0.1' },
    port: { doc: 'Port of the admin HTTP listener; 0 = off.', format: 'port', default: 0 },
    console: { doc: 'Serve the operator console (Live, Caught, Corpus, State pages at /console/ and their JSON API at /api/) on the admin HTTP listener; needs http.port.', format: Boolean, default: false },
    token: { doc: 'Bearer token for the console and its API (`Authorization: Bearer ...`, or the login form\'s cookie); "" = none, allowed with http.console only while http.address is loopback (else start-up exits 78). /healthz and /metrics never ask for it.', format: String, default: '', sensitive: true },
    consoleWrite: { doc: 'Let the console change state (the State page\'s allow/deny/delete); false = every console API request but GET/HEAD gets 403.', format: Boolean, default: false },
  },
  webhook: {
    url: { doc: 'URL to POST each stored message\'s metadata to; "" = off.', format: String, default: '' },
    headers: { doc: 'Extra HTTP headers for the webhook (e.g. Authorization).', format: Object, default: {}, sensitive: true },
    timeout: { doc: 'Milliseconds per webhook request.', format: dur, default: 5000, range: int(100, 120_000) },
    maxRetries: { doc: 'Retries per message, with exponential backoff.', format: nat, default: 5, range: int(0, 100) },
    queueSize: { doc: 'Most messages waiting in memory for the webhook; more are dropped and counted.', format: nat, default: 1000, range: int(1, 1_000_000) },
    includeRawMax: { doc: 'Include the raw message (base64) when it is at most this many octets; 0 = never.', format: nat, default: 0, range: int(0, 104_857_600) },
  },
  state: {
    backend: { doc: 'Where cross-connection state (client cache, greylisting, greytraps) lives: local (LMDB under state.path, one host) or redis (state.redis.url, shared by a fleet; also makes maxSessionsPerIp fleet-wide).', format: ['local', 'redis'], default: 'local' },
    path: { doc: 'Directory of the local state store (file state.mdb); "" = ./var/state. Opened only when something uses state.', format: String, default: '' },
    timeout: { doc: 'Milliseconds a state call may take before the session goes on without it (state.onError).', format: dur, default: 50, range: int(1, 10_000) },
    onError: { doc: 'When the state store fails or misses state.timeout: open (skip the check) or tempfail (451 4.3.0 at RCPT/DATA, 421 4.3.0 at connect).', format: ['open', 'tempfail'], default: 'open' },
    leaseTtl: { doc: 'With redis: milliseconds a per-IP session lease lasts unless its node renews it (every third of it); a dead node\'s sessions stop counting after this.', format: dur, default: 60_000, range: int(1000, 3_600_000) },
    leaseBlock: { doc: 'With redis: lease slots a node takes at once for one address while that address is far below maxSessionsPerIp (never more than a quarter of the slots still free, so one at a time near the cap); the spare slots serve the node\'s next sessions from that address without a round trip and go back after 1 s unused. 1 = one lease per session.', format: nat, default: 16, range: int(1, 256) },
    redis: {
      url: { doc: 'Redis/Valkey URL: redis://[user:password@]host:port[/db], rediss:// for TLS.', format: String, default: 'redis://127.0.0.1:6379', sensitive: true },
      prefix: { doc: 'Prefix of every key fakemx writes (several deployments may share one Redis).', format: String, default: 'fakemx:' },
      connectTimeout: { doc: 'Milliseconds a connection attempt may take; reconnects back off from 50 ms to 2 s.', format: dur, default: 2000, range: int(10, 60_000) },
      tlsCa: { doc: 'PEM CA bundle file for rediss:// (a private CA); "" = the system CAs.', format: String, default: '' },
      password: { doc: 'AUTH password when it is not in the URL.', format: String, default: '', sensitive: true },
      cacheEntries: { doc: 'Most keys a node keeps from its reads, kept exact by Redis\'s CLIENT TRACKING (RESP3): a client seen again is looked up without a round trip. 0 = no cache (for a proxy without RESP3 or CLIENT TRACKING).', format: nat, default: 100_000, range: int(0, 10_000_000) },
    },
  },
  cache: {
    enabled: { doc: 'Client cache (postscreen): remember clients that passed or failed the pre-greeting tests; a pass skips the test (greet: and the banner delay), a failure acts at connect (CACHE_PASS, CACHE_FAIL).', format: Boolean, default: false },
    passTtl: {
      greet: { doc: 'Milliseconds a pass of the greeting test (banner delay without early talk) is remembered.', format: dur, default: 86_400_000, range: int(0, 31_536_000_000) },
      pipelining: { doc: 'Milliseconds a session without out-of-turn pipelining is remembered.', format: dur, default: 2_592_000_000, range: int(0, 31_536_000_000) },
      dnsbl: { doc: 'Longest a not-listed DNS list result is remembered: the DNS answer\'s TTL (for NXDOMAIN the SOA negative TTL, RFC 2308 section 5; else the A records\' smallest TTL; the least over the lists asked), clamped to [cache.dnsblMinTtl, this]. Shared by a fleet with state.backend redis, even with cache.enabled false.', format: dur, default: 3_600_000, range: int(0, 31_536_000_000) },
    },
    dnsblMinTtl: { doc: 'Shortest a not-listed DNS list result is remembered when the answer\'s TTL is shorter (a zone with TTL 0 would otherwise cost a lookup and a state write per connection); cache.passTtl.dnsbl wins if it is lower.', format: dur, default: 60_000, range: int(0, 86_400_000) },
    failTtl: { doc: 'Milliseconds a failed test (early talk, DNS listed) is remembered; 0 = never.', format: dur, default: 3_600_000, range: int(0, 31_536_000_000) },
  },
  greylist: {
    enabled: { doc: 'Greylist (spamd): the first attempt of a (client network, sender, recipient) triplet gets 451 4.7.1; a retry after passtime passes and allowlists the network.', format: Boolean, default: false },
    at: { doc: 'Where greylisting answers: rcpt (each RCPT) or data (DATA, spamd\'s place, for all recipients).', format: ['rcpt', 'data'], default: 'rcpt' },
    passtime: { doc: 'Milliseconds before a retry passes (spamd: 25 min).', format: dur, default: 1_500_000, range: int(0, 86_400_000) },
    greyExpiry: { doc: 'Milliseconds a first attempt waits for its retry (spamd: 4 h).', format: dur, default: 14_400_000, range: int(1, 604_800_000) },
    whiteExpiry: { doc: 'Milliseconds a network that retried stays allowlisted, refreshed by each delivery (spamd: 36 days).', format: dur, default: 3_110_400_000, range: int(1, 31_536_000_000) },
    ipv4Prefix: { doc: 'Prefix length grouping IPv4 clients into one network for greylisting.', format: nat, default: 24, range: int(8, 32) },
    ipv6Prefix: { doc: 'Prefix length grouping IPv6 clients into one network for greylisting.', format: nat, default: 64, range: int(16, 128) },
    allowList: { doc: 'File of senders/recipients never greylisted: `user@domain`, `@domain` or `domain`, optionally `from:`/`to:` first; "" = none. DNSWL-listed and access-list permitted clients are exempt too.', format: String, default: '' },
    trapAddresses: { doc: 'File of greytrap recipients (one local@domain a line); a client writing to one is trapped for trapExpiry (TRAP): tarpitted and tempfailed, never allowlisted. "" = none.', format: String, default: '' },
    trapExpiry: { doc: 'Milliseconds a trapped client stays trapped (spamd: 24 h).', format: dur, default: 86_400_000, range: int(1, 31_536_000_000) },
  },
  chunking: { doc: 'Advertise CHUNKING and take BDAT (RFC 3030); the LAST chunk is stored like DATA, with "transfer": "BDAT" and the chunk count in the record.', format: Boolean, default: true },
  binaryMime: { doc: 'Advertise BINARYMIME too (RFC 3030 section 3; BODY=BINARYMIME then needs BDAT). Needs chunking.', format: Boolean, default: false },
  auth: {
    enabled: { doc: 'AUTH honeypot (RFC 4954): offer AUTH PLAIN LOGIN and fail every attempt with 535 5.7.8 after the error tarpit, recording it (AUTH verdict, metric, record, report).', format: Boolean, default: false },
    allowPlaintext: { doc: 'Offer AUTH before TLS too (by default only after STARTTLS or on an implicit-TLS listener; in clear AUTH gets 538 5.7.11).', format: Boolean, default: false },
    cramMd5: { doc: 'Offer CRAM-MD5 (RFC 2195) as well; its attempts record the user name and digest (and the challenge, unless recordPasswords is none: with it a guessed password can be checked), never a password.', format: Boolean, default: false },
    maxAttempts: { doc: 'AUTH attempts a session may make; the one after gets 421 4.7.0 and close (it is still recorded).', format: nat, default: 3, range: int(1, 1000) },
    recordPasswords: { doc: 'How an attempt\'s password is recorded: none, sha256 (salted with auth.salt, hex) or plain.', format: ['none', 'sha256', 'plain'], default: 'sha256' },
    salt: { doc: 'Salt of the sha256 password record; "" = a random per-install salt kept in auth-salt under state.path (made on first use).', format: String, default: '', sensitive: true },
  },
  logFiles: {
    frequency: { doc: 'One log file per UTC hour, day or calendar month under logPath: fakemx.2026-12.log (monthly), fakemx.2026-12-03.log, fakemx.2026-12-03T02.log.', format: ['hourly', 'daily', 'monthly'], default: 'monthly' },
    keep: { doc: 'Log files kept under logPath, the current one included; older ones are deleted at start and at each roll (FakeSMTP keeps 12 monthly files).', format: nat, default: 12, range: int(1, 10_000) },
  },
};

function isLeaf(n: SchemaLeaf | SchemaNode): n is SchemaLeaf {
  return typeof n === 'object' && n !== null && 'doc' in n && 'default' in n;
}

/** `dns.healthCheckInterval` -> `FAKEMX_DNS_HEALTH_CHECK_INTERVAL`. */
export function envName(path: string): string {
  return 'FAKEMX_' + path.split('.').map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
}

/** Every leaf as [dotted path, leaf], in schema order: the README table and env names come from here. */
export function leaves(node: SchemaNode = schema, prefix = ''): [string, SchemaLeaf][] {
  const out: [string, SchemaLeaf][] = [];
  for (const [k, v] of Object.entries(node)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (isLeaf(v)) out.push([path, v]);
    else out.push(...leaves(v, path));
  }
  return out;
}
