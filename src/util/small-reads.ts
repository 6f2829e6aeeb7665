// Queues of received octets (a session's pending command input, a message being written)
// hold what a client sent as the Buffers its reads produced. Each one costs an object and a
// backing store of ~100+ octets beyond its own, so a client that splits its input into
// one-octet segments made a queue bounded in octets cost ~100 times that in memory. Here a
// small read is copied, once, into an append-only block shared with the reads around it.

/** A read this small is copied into a block; a larger one is queued as it came. */
export const SMALL_READ = 512;
/**
 * Size of a block small reads are copied into: small, since a session that drips a command
 * line holds its current block until the line is read (a 512-octet line, at most).
 */
const BLOCK = 4 * 1024;

export class SmallReads {
  private block: Buffer | null = null;
  private filled = 0;
  /** A small read has been queued as is since the last large one. */
  private loose = false;

  /**
   * Append `chunk` to `queue`. The first small read after a large one is queued as is (a lone
   * one, such as a short message's body, costs no copy); the small ones after it, a run, are
   * copied behind the last one in the current block (the queue's last view then grows in
   * place) or into a fresh block. Octets already queued or handed out (to a writev, a sink) are
   * never overwritten: a block is only appended to.
   */
  push(queue: Buffer[], chunk: Buffer): void {
    if (chunk.length >= SMALL_READ || !this.loose) {
      this.loose = chunk.length < SMALL_READ;
      queue.push(chunk);
      return;
    }
    let b = this.block;
    if (b && this.filled + chunk.length <= b.length) {
      chunk.copy(b, this.filled);
      const end = this.filled + chunk.length;
      const last = queue.length - 1;
      const tail = queue[last];
      if (tail !== undefined && tail.buffer === b.buffer && tail.byteOffset + tail.length === this.filled) queue[last] = b.subarray(tail.byteOffset, end);
      else queue.push(b.subarray(this.filled, end));
      this.filled = end;
      return;
    }
    this.block = b = Buffer.allocUnsafeSlow(BLOCK);
    chunk.copy(b, 0);
    this.filled = chunk.length;
    queue.push(b.subarray(0, chunk.length));
  }

  /** Let the block go (nothing queued refers to it any more, or the queue is dropped). */
  reset(): void {
    this.block = null;
    this.loose = false;
  }
}
