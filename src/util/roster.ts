// An insertion-ordered set of objects that come and go all the time (sessions, banner waits):
// a doubly linked list whose link sits on the object itself, so add, delete and the oldest
// are O(1) with no hash table. Why not a Set: V8 rebuilds a Set's table as entries come and
// go, and each outgrown table keeps a pointer to its successor. Once one of them has reached
// old space, every scavenge treats it as live and follows that chain, so each object ever
// added survived and was promoted, to be freed only by a full GC: with Sets of sessions, 11 %
// of what a connection allocated survived a scavenge, against 5 % without (bench/RESULTS.md,
// Round 17).

interface Link<T extends object, D> {
  readonly v: T;
  /** What the roster keeps with the member (e.g. the console's record of a session). */
  readonly d: D | undefined;
  readonly in: Roster<T, D>;
  prev: Link<T, D> | null;
  next: Link<T, D> | null;
}

type Holder<T extends object, D> = Record<symbol, Link<T, D> | undefined>;

export class Roster<T extends object, D = undefined> {
  private head: Link<T, D> | null = null;
  private tail: Link<T, D> | null = null;
  private n = 0;

  /**
   * `key`: the property each member carries its link in; one per kind of roster, so one object
   * may sit in several. An object sits in at most one roster per key: a second one's add()
   * would take the property over, and the first could no longer let it go.
   */
  constructor(private readonly key: symbol) {}

  get size(): number {
    return this.n;
  }

  has(x: T): boolean {
    return this.linkOf(x) !== null;
  }

  /** Adds x at the end (the newest), with `data`; a member stays where it is, with its data. */
  add(x: T, data?: D): void {
    if (this.linkOf(x)) return;
    const l: Link<T, D> = { v: x, d: data, in: this, prev: this.tail, next: null };
    if (this.tail) this.tail.next = l;
    else this.head = l;
    this.tail = l;
    this.n++;
    (x as unknown as Holder<T, D>)[this.key] = l;
  }

  /** Removes x; false if it was not a member. Its link is emptied, so no dead link points at a live one. */
  delete(x: T): boolean {
    const l = this.linkOf(x);
    if (!l) return false;
    if (l.prev) l.prev.next = l.next;
    else this.head = l.next;
    if (l.next) l.next.prev = l.prev;
    else this.tail = l.prev;
    l.prev = l.next = null;
    (x as unknown as Holder<T, D>)[this.key] = undefined;
    this.n--;
    return true;
  }

  /** The data kept with x, or undefined when x is no member. */
  get(x: T): D | undefined {
    return this.linkOf(x)?.d;
  }

  /** The oldest member, or undefined. */
  first(): T | undefined {
    return this.head?.v;
  }

  /** The members, oldest first, as an array: the roster may change while the caller goes through it. */
  toArray(): T[] {
    const out: T[] = [];
    for (let l = this.head; l; l = l.next) out.push(l.v);
    return out;
  }

  /** The data of the oldest `max` members (all by default), oldest first, as an array. */
  dataArray(max = Infinity): (D | undefined)[] {
    const out: (D | undefined)[] = [];
    for (let l = this.head; l && out.length < max; l = l.next) out.push(l.d);
    return out;
  }

  private linkOf(x: T): Link<T, D> | null {
    const l = (x as unknown as Holder<T, D>)[this.key];
    return l !== undefined && l.in === this ? l : null;
  }
}
