// One stored message as the console shows it: its metadata record, its header fields, its
// text parts as text, its HTML part as source text (the page shows it escaped, never
// rendered), and its attachments as a list (name, type, size, SHA-256); never their content.
// MIME is parsed by postal-mime (no dependencies, Node >= 20): charsets, RFC 2047/2231
// names, nested multiparts and message/rfc822 parts are its job, not hand-written code here.

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import PostalMime, { type Attachment } from 'postal-mime';
import type { MessageMetadata } from '../store/metadata.js';

/** Characters of a text or HTML part sent to the page; the rest is cut (the raw download has it all). */
export const PART_MAX = 256 * 1024;
/** Header fields listed (a hostile message may carry thousands). */
const HEADERS_MAX = 500;
/** Characters of one header value shown. */
const HEADER_VALUE_MAX = 4096;
/** Attachments listed. */
const ATTACHMENTS_MAX = 200;
/**
 * Part delimiter lines (RFC 2046 §5.1.1: "--" at the start of a line) the parser is given; the
 * message past the next one is left out. postal-mime spends ~25 µs and a few KB per part, on
 * the daemon's event loop: one 1.75 MB message of 250,000 empty parts held every SMTP session
 * still for 6.5 s and grew the process by 400 MB when it was opened in the console.
 */
export const DELIMITERS_MAX = 1000;

export interface AttachmentInfo {
  filename: string | null;
  mimeType: string;
  disposition: string | null;
  size: number;
  sha256: string;
}

export interface MessageView {
  id: string;
  metadata: MessageMetadata;
  headers: { name: string; value: string }[];
  headerCount: number;
  subject: string | null;
  from: string | null;
  to: string | null;
  date: string | null;
  text: string | null;
  textTruncated: boolean;
  /** The HTML part as source, to be shown as text. */
  htmlSource: string | null;
  htmlTruncated: boolean;
  attachments: AttachmentInfo[];
  attachmentCount: number;
  /** Set when the MIME structure could not be parsed; headers and parts may then be missing. */
  parseError?: string;
  /** Set (to DELIMITERS_MAX) when the message has more part delimiters: it was parsed up to there only. */
  partsCut?: number;
}

/** `raw` up to (not including) the line of its delimiter after DELIMITERS_MAX, or all of it. */
function boundedParts(raw: Buffer): { head: Buffer; cut: boolean } {
  let at = raw.indexOf('\n--');
  for (let n = 1; at >= 0; n++) {
    if (n > DELIMITERS_MAX) return { head: raw.subarray(0, at + 1), cut: true };
    at = raw.indexOf('\n--', at + 3);
  }
  return { head: raw, cut: false };
}

const cut = (s: string | undefined, max: number): [string | null, boolean] =>
  s === undefined ? [null, false] : s.length > max ? [s.slice(0, max), true] : [s, false];

function size(c: Attachment['content']): Uint8Array {
  if (typeof c === 'string') return Buffer.from(c, 'utf8');
  return c instanceof Uint8Array ? c : new Uint8Array(c);
}

function addressText(a: unknown): string | null {
  if (!a) return null;
  const list = Array.isArray(a) ? a : [a];
  return (list as { name?: string; address?: string; group?: { name?: string; address?: string }[] }[])
    .flatMap((x) => (x.group ? x.group : [x]))
    .map((x) => (x.name ? `${x.name} <${x.address ?? ''}>` : (x.address ?? '')))
    .join(', ');
}

/** A metadata record that is not a JSON object (cut short, edited by hand, a bad disk). */
export class DamagedRecord extends Error {}

/** Reads and parses the message at `path` with its metadata record at `jsonPath`. */
export async function messageView(path: string, jsonPath: string): Promise<MessageView> {
  const [raw, json] = await Promise.all([readFile(path), readFile(jsonPath, 'utf8')]);
  let metadata: MessageMetadata;
  try {
    metadata = JSON.parse(json) as MessageMetadata;
  } catch (e) {
    throw new DamagedRecord(`not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata) || typeof metadata.id !== 'string') throw new DamagedRecord('not a metadata record (no id)');
  const view: MessageView = {
    id: metadata.id,
    metadata,
    headers: [],
    headerCount: 0,
    subject: null,
    from: null,
    to: null,
    date: null,
    text: null,
    textTruncated: false,
    htmlSource: null,
    htmlTruncated: false,
    attachments: [],
    attachmentCount: 0,
  };
  const { head, cut: partsCut } = boundedParts(raw);
  if (partsCut) view.partsCut = DELIMITERS_MAX;
  try {
    const email = await PostalMime.parse(head, { attachmentEncoding: 'arraybuffer', maxNestingDepth: 64, maxHeadersSize: 1024 * 1024 });
    view.headerCount = email.headers.length;
    view.headers = email.headers.slice(0, HEADERS_MAX).map((h) => ({
      name: h.originalKey,
      value: h.value.length > HEADER_VALUE_MAX ? h.value.slice(0, HEADER_VALUE_MAX) : h.value,
    }));
    view.subject = email.subject ?? null;
    view.from = addressText(email.from);
    view.to = addressText(email.to);
    view.date = email.date ?? null;
    [view.text, view.textTruncated] = cut(email.text, PART_MAX);
    [view.htmlSource, view.htmlTruncated] = cut(email.html, PART_MAX);
    view.attachmentCount = email.attachments.length;
    view.attachments = email.attachments.slice(0, ATTACHMENTS_MAX).map((a) => {
      const bytes = size(a.content);
      return {
        filename: a.filename,
        mimeType: a.mimeType,
        disposition: a.disposition,
        size: bytes.byteLength,
        sha256: createHash('sha256').update(bytes).digest('hex'),
      };
    });
  } catch (e) {
    view.parseError = e instanceof Error ? e.message : String(e);
  }
  return view;
}
