// Why a TLS handshake failed, in one short line for the TLS_FAILED verdict: OpenSSL's own
// reason ("wrong version number") when Node gives one, else the message's first line. The
// full message is a multi-line OpenSSL error string with a source path in it.

export function tlsReason(e: Error): string {
  const r = (e as Error & { reason?: unknown }).reason;
  if (typeof r === 'string' && r !== '') return r;
  return e.message.split('\n', 1)[0]!.trim() || e.name;
}
