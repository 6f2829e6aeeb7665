// The corpus index's entries in receive order (ascending `at`, ties in the order they came in),
// held so that the two common growths are cheap: a day older than everything (the start-up scan
// goes newest day first) is prepended, a message newer than everything (live) is appended.

export interface Timed {
  at: number;
}

/**
 * A deque of two arrays: `front` holds the older part newest first (so prepending is a push),
 * `back` the newer part oldest first. The sequence is `front` reversed, then `back`.
 */
export class TimeOrder<T extends Timed> {
  private front: T[] = [];
  private back: T[] = [];

  get length(): number {
    return this.front.length + this.back.length;
  }

  /** The i-th oldest. */
  get(i: number): T {
    const f = this.front.length;
    return (i < f ? this.front[f - 1 - i] : this.back[i - f])!;
  }

  /** Inserts after every entry not newer than `e` (the place a stable sort by `at` would give it). */
  insert(e: T): void {
    // Live messages are nearly always the newest: found within a step or two from the end.
    let i = this.length;
    while (i > 0 && this.get(i - 1).at > e.at) i--;
    const f = this.front.length;
    if (i >= f) this.back.splice(i - f, 0, e);
    else this.front.splice(f - i, 0, e);
  }

  /**
   * Adds `run` (in any order) as if all entries were pushed and stably sorted by `at`: the run
   * is sorted once, and only the entries it overlaps in time are merged with it, so a run older
   * than everything costs its own length and not the index's.
   */
  addRun(run: readonly T[]): void {
    if (run.length === 0) return;
    const r = [...run].sort((a, b) => a.at - b.at);
    const last = r[r.length - 1]!.at;
    // The oldest entries that a run entry must follow or interleave with (`at` <= the run's newest).
    const older: T[] = [];
    while (this.front.length > 0 && this.front[this.front.length - 1]!.at <= last) older.push(this.front.pop()!);
    if (this.front.length === 0 && this.back.length > 0 && this.back[0]!.at <= last) {
      let k = 0;
      while (k < this.back.length && this.back[k]!.at <= last) k++;
      for (let j = 0; j < k; j++) older.push(this.back[j]!);
      this.back = this.back.slice(k);
    }
    // Merged from the newest down onto `front` (whose end is the oldest); on a tie the entry
    // already here goes first in time, as it came in first.
    let a = older.length - 1;
    let b = r.length - 1;
    while (a >= 0 || b >= 0) {
      if (b < 0 || (a >= 0 && older[a]!.at > r[b]!.at)) this.front.push(older[a--]!);
      else this.front.push(r[b--]!);
    }
  }

  /** Removes one entry (looked for newest first); false when it is not here. */
  remove(e: T): boolean {
    let i = this.back.lastIndexOf(e);
    if (i >= 0) {
      this.back.splice(i, 1);
      return true;
    }
    i = this.front.indexOf(e);
    if (i < 0) return false;
    this.front.splice(i, 1);
    return true;
  }

  /** Keeps the entries `keep` accepts, in order; returns how many went. */
  retain(keep: (e: T) => boolean): number {
    const before = this.length;
    this.front = this.front.filter(keep);
    this.back = this.back.filter(keep);
    return before - this.length;
  }

  /** Oldest first. */
  forEach(fn: (e: T) => void): void {
    for (let i = this.front.length - 1; i >= 0; i--) fn(this.front[i]!);
    for (const e of this.back) fn(e);
  }
}
