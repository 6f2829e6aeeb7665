// PROXY protocol reader (HAProxy spec "The PROXY protocol", versions 1 and 2) for listeners
// behind a load balancer. parseProxyHeader() is pure (Buffer in, header or 'incomplete' out,
// throws ProxyHeaderError naming the reason); readProxyHeader() drives it on a fresh socket.

import { isIPv6 } from 'node:net';
import type { Socket } from 'node:net';
import { ipText } from './ip.js';

export interface ProxyHeader {
  command: 'PROXY' | 'LOCAL' | 'UNKNOWN';
  source?: { address: string; port: number };
  destination?: { address: string; port: number };
  version: 1 | 2;
}

/** A malformed, over-long, late or truncated header; `message` names the reason for PROXY_INVALID. */
export class ProxyHeaderError extends Error {
  override name = 'ProxyHeaderError';
}

// Spec §2.1: the v1 line is at most 107 bytes including CRLF ("PROXY UNKNOWN" + two
// full IPv6 addresses and ports). §2.2: the v2 header is 16 fixed bytes plus `len`; we accept
// at most 216 address/TLV bytes (the size of the spec's address union), 232 bytes in all.
export const V1_MAX = 107;
export const V2_MAX_LEN = 216;
export const V2_MAX = 16 + V2_MAX_LEN;

const V1_SIG = Buffer.from('PROXY ', 'latin1');
// §2.2: \r\n\r\n\0\r\nQUIT\n — cannot occur at the start of an SMTP or HTTP exchange.
const V2_SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

const fail = (reason: string): never => {
  throw new ProxyHeaderError(reason);
};

/** True when the first min(len) bytes of `buf` and `sig` agree. */
function prefixMatches(buf: Buffer, sig: Buffer): boolean {
  const n = Math.min(buf.length, sig.length);
  return buf.subarray(0, n).equals(sig.subarray(0, n));
}

/**
 * Parse a PROXY header at the start of `buf`. Returns the header and the number of bytes it
 * used, or 'incomplete' when more input could still make it valid. Throws ProxyHeaderError.
 */
export function parseProxyHeader(buf: Buffer): { header: ProxyHeader; consumed: number } | 'incomplete' {
  if (buf.length === 0) return 'incomplete';
  if (buf[0] === V1_SIG[0]) {
    if (!prefixMatches(buf, V1_SIG)) fail('bad signature');
    return buf.length < V1_SIG.length ? 'incomplete' : parseV1(buf);
  }
  if (buf[0] === V2_SIG[0]) {
    if (!prefixMatches(buf, V2_SIG)) fail('bad signature');
    return buf.length < 16 ? 'incomplete' : parseV2(buf);
  }
  return fail('bad signature');
}

// ---- version 1 (text) ---------------------------------------------------------------------

function parseV1(buf: Buffer): { header: ProxyHeader; consumed: number } | 'incomplete' {
  const lf = buf.subarray(0, V1_MAX).indexOf(0x0a);
  if (lf < 0) {
    if (buf.length >= V1_MAX) fail(`v1 line longer than ${V1_MAX} bytes`);
    // Reject a stray CR or a non-printable byte now rather than after the timeout.
    checkV1Chars(buf, buf.length);
    return 'incomplete';
  }
  // §2.1: the line ends with CR LF; a bare LF is a protocol violation.
  if (lf === 0 || buf[lf - 1] !== 0x0d) fail('v1 LF without CR');
  checkV1Chars(buf, lf - 1);
  const line = buf.toString('latin1', 0, lf - 1);
  const parts = line.split(' ');
  const proto = parts[1] ?? '';
  // §2.1: with UNKNOWN the receiver ignores the rest of the line and uses the real peer.
  if (proto === 'UNKNOWN') return { header: { command: 'UNKNOWN', version: 1 }, consumed: lf + 1 };
  if (proto !== 'TCP4' && proto !== 'TCP6') fail(`v1 bad protocol family "${proto.slice(0, 16)}"`);
  if (parts.length !== 6 || parts.some((p) => p === '')) fail('v1 bad field count or spacing');
  const [, , src, dst, sport, dport] = parts as [string, string, string, string, string, string];
  const valid = proto === 'TCP4' ? isStrictIPv4 : isStrictIPv6;
  if (!valid(src)) fail(`v1 bad ${proto} source address`);
  if (!valid(dst)) fail(`v1 bad ${proto} destination address`);
  return {
    header: {
      command: 'PROXY',
      version: 1,
      source: { address: src, port: v1Port(sport, 'source') },
      destination: { address: dst, port: v1Port(dport, 'destination') },
    },
    consumed: lf + 1,
  };
}

/** Only printable US-ASCII (and the spaces between fields) may appear before the CRLF. */
function checkV1Chars(buf: Buffer, end: number): void {
  for (let i = 0; i < end; i++) {
    const c = buf[i]!;
    if (c === 0x0d) {
      if (i === end - 1 && end === buf.length) return; // a CR awaiting its LF
      fail('v1 CR without LF');
    }
    if (c < 0x20 || c > 0x7e) fail('v1 non-printable byte in header');
  }
}

/** §2.1: a decimal 16-bit port, 0-65535, without leading zeros. */
function v1Port(s: string, which: string): number {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(s)) fail(`v1 bad ${which} port "${s.slice(0, 8)}"`);
  const n = Number(s);
  if (n > 65535) fail(`v1 ${which} port out of range`);
  return n;
}

/** Dotted quad, each octet 0-255 without leading zeros (so "010" is not read as octal or decimal). */
export function isStrictIPv4(s: string): boolean {
  return /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$/.test(s);
}

/** RFC 4291 §2.2 text form; no zone index (a proxy has no business sending one). */
function isStrictIPv6(s: string): boolean {
  return s.length <= 45 && !s.includes('%') && isIPv6(s);
}

// ---- version 2 (binary) -------------------------------------------------------------------

function parseV2(buf: Buffer): { header: ProxyHeader; consumed: number } | 'incomplete' {
  const verCmd = buf[12]!;
  const famProto = buf[13]!;
  const len = buf.readUInt16BE(14);
  // §2.2: the high nibble of byte 13 is the version, which must be 2.
  if (verCmd >> 4 !== 2) fail(`v2 bad version ${verCmd >> 4}`);
  const cmd = verCmd & 0x0f;
  if (cmd > 1) fail(`v2 bad command ${cmd}`);
  const family = famProto >> 4;
  const transport = famProto & 0x0f;
  if (family > 3) fail(`v2 bad address family ${family}`);
  if (transport > 2) fail(`v2 bad transport protocol ${transport}`);
  if (len > V2_MAX_LEN) fail(`v2 header longer than ${V2_MAX} bytes`);
  const consumed = 16 + len;
  if (buf.length < consumed) return 'incomplete';
  // §2.2: LOCAL = the proxy's own connection (health check); addresses, if any, are ignored.
  if (cmd === 0) return { header: { command: 'LOCAL', version: 2 }, consumed };
  // §2.2: address block = src addr, dst addr, src port, dst port, for TCP over IPv4 / IPv6.
  const STREAM = 1;
  const family_ = transport === STREAM ? V2_FAMILIES[family] : undefined;
  if (family_) {
    const { size, read, name } = family_;
    if (len < 2 * size + 4) fail(`v2 address block too short for ${name}`);
    const ports = 16 + 2 * size;
    return {
      header: {
        command: 'PROXY',
        version: 2,
        source: { address: read(buf, 16), port: buf.readUInt16BE(ports) },
        destination: { address: read(buf, 16 + size), port: buf.readUInt16BE(ports + 2) },
      },
      consumed,
    };
  }
  // UNSPEC, AF_UNIX or DGRAM: nothing an SMTP policy can use; like v1 UNKNOWN, keep the peer.
  return { header: { command: 'UNKNOWN', version: 2 }, consumed };
}

function ipv4(b: Buffer, o: number): string {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
}

/** RFC 5952 text, as every address in fakemx is written (net/ip.ts): ::ffff:192.0.2.1 in mixed form. */
function ipv6(b: Buffer, o: number): string {
  return ipText(6, [...b.subarray(o, o + 16)]);
}

/** v2 address families carried over STREAM (§2.2): AF_INET = 1, AF_INET6 = 2. */
const V2_FAMILIES: Record<number, { size: number; read: (b: Buffer, at: number) => string; name: string }> = {
  1: { size: 4, read: ipv4, name: 'AF_INET' },
  2: { size: 16, read: ipv6, name: 'AF_INET6' },
};

// ---- socket driver ---------------------------------------------------------------------------

/**
 * Read a PROXY header from a just-accepted socket. Resolves with the header and the bytes that
 * followed it in the same read (`rest`, for the SMTP session); rejects with a ProxyHeaderError
 * on a bad header, close or timeout. Either way every listener and timer it added is removed
 * and the socket is left paused: the caller attaches its own reader and calls resume().
 */
export function readProxyHeader(sock: Socket, opts: { timeoutMs: number }): Promise<{ header: ProxyHeader; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    if (sock.destroyed || sock.readableEnded) {
      reject(new ProxyHeaderError('connection closed before PROXY header'));
      return;
    }
    let buf: Buffer = Buffer.alloc(0);
    let settled = false;
    const settle = (err: Error | null, value?: { header: ProxyHeader; rest: Buffer }) => {
      if (settled) return;
      settled = true;
      // Pause before dropping our 'data' listener, or a flowing socket would discard input.
      sock.pause();
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('end', onEnd);
      sock.off('close', onClose);
      sock.off('error', onError);
      if (err) reject(err);
      else resolve(value!);
    };
    const onData = (chunk: Buffer) => {
      try {
        // Bounded: parse throws once a v1 line passes 107 bytes or a v2 header 232.
        buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
        const r = parseProxyHeader(buf);
        if (r === 'incomplete') return;
        // Copy the tail so the session does not pin a large socket read buffer.
        settle(null, { header: r.header, rest: Buffer.from(buf.subarray(r.consumed)) });
      } catch (e) {
        settle(e instanceof Error ? e : new ProxyHeaderError(String(e)));
      }
    };
    const onEnd = () => settle(new ProxyHeaderError(buf.length ? 'connection closed inside PROXY header' : 'connection closed before PROXY header'));
    const onClose = onEnd;
    const onError = (e: Error) => settle(new ProxyHeaderError(`socket error before PROXY header: ${e.message}`));
    const timer = setTimeout(() => settle(new ProxyHeaderError(`no complete PROXY header within ${opts.timeoutMs} ms`)), opts.timeoutMs);
    sock.on('data', onData);
    sock.on('end', onEnd);
    sock.on('close', onClose);
    sock.on('error', onError);
    sock.resume(); // in case the caller paused it; attaching 'data' alone would not resume then
  });
}
