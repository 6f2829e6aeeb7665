// The DATA body reader: a byte-level state machine that finds the only terminator,
// <CRLF>.<CRLF> (RFC 5321 §4.1.1.4), and removes dot-stuffing (§4.5.2). Bare LF and bare
// CR never end a line here, so <LF>.<LF>, <CR>.<CR>, <LF>.<CRLF> and <CRLF>.<LF> are
// message content (SMTP smuggling defence) and are passed on exactly as they came.
// Runs of ordinary lines are skipped with one Buffer.indexOf for "\r\n.", never byte by byte in JS.

const CR = 13;
const LF = 10;
const DOT = 46;
const CR_BUF = Buffer.from([CR]);
const CRLF_DOT = Buffer.from([CR, LF, DOT]);

const enum S {
  /** Just after CRLF (or at the start of DATA). */
  LineStart,
  /** "." seen at line start; withheld. */
  Dot,
  /** ".\r" seen at line start; both withheld. */
  DotCr,
  /** Inside a line. */
  Mid,
  /** "\r" seen inside a line (already emitted). */
  Cr,
}

export interface FeedResult {
  /** Body segments (subarrays of the input, or a constant CR), in order. */
  segments: Buffer[];
  /** Index just past the terminating ".\r\n", or -1 when the body goes on. */
  end: number;
}

export class DataReader {
  private state = S.LineStart;
  /** Octets of body emitted so far (after unstuffing). */
  size = 0;

  feed(chunk: Buffer): FeedResult {
    const segments: Buffer[] = [];
    const len = chunk.length;
    let i = 0;
    let run = 0; // start of the pending run of bytes to emit as-is
    const flush = (to: number) => {
      if (to > run) {
        segments.push(chunk.subarray(run, to));
        this.size += to - run;
      }
    };
    while (i < len) {
      switch (this.state) {
        case S.Mid: {
          // Inside a line only "\r\n." matters (a line that starts with a dot): one search
          // per run of content lines, not one per CR.
          const j = chunk.indexOf(CRLF_DOT, i);
          if (j >= 0) {
            i = j + 2;
            this.state = S.LineStart;
            break;
          }
          // None in the rest: its last octets say where the next chunk starts. (The CRLF test
          // needs no bound on i: a CR before i followed by an LF would have left Mid already.)
          if (chunk[len - 1] === CR) this.state = S.Cr;
          else if (chunk[len - 2] === CR && chunk[len - 1] === LF) this.state = S.LineStart;
          i = len;
          break;
        }
        case S.Cr: {
          const b = chunk[i++];
          this.state = b === LF ? S.LineStart : b === CR ? S.Cr : S.Mid;
          break;
        }
        case S.LineStart: {
          const b = chunk[i];
          if (b === DOT) {
            flush(i);
            i++;
            run = i; // the dot is withheld: dropped if stuffed, part of the terminator otherwise
            this.state = S.Dot;
          } else {
            i++;
            this.state = b === CR ? S.Cr : S.Mid;
          }
          break;
        }
        case S.Dot: {
          const b = chunk[i];
          if (b === CR) {
            i++;
            run = i;
            this.state = S.DotCr;
          } else {
            // §4.5.2: a leading dot followed by other characters is deleted; the rest
            // of the line (including a second dot, or a bare LF) is content.
            i++;
            this.state = S.Mid;
          }
          break;
        }
        case S.DotCr: {
          const b = chunk[i];
          if (b === LF) {
            i++;
            this.state = S.LineStart;
            return { segments, end: i };
          }
          // ".\r" + something else: the dot is stuffing, the CR is a lone CR kept as sent.
          segments.push(CR_BUF);
          this.size += 1;
          run = i;
          this.state = S.Mid;
          break;
        }
      }
    }
    if (this.state !== S.Dot && this.state !== S.DotCr) flush(len);
    return { segments, end: -1 };
  }
}
