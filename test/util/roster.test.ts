// The roster (src/util/roster.ts): an insertion-ordered set whose links live on the members.
// Order, membership, data, several rosters over one object, and that a member let go keeps no
// link into the roster (the property that keeps scavenges from promoting every session).
import { describe, expect, it } from 'vitest';
import { Roster } from '../../src/util/roster.js';

const KEY = Symbol('test.roster');
const OTHER = Symbol('test.other');
type Item = { n: number };
const items = (k: number): Item[] => Array.from({ length: k }, (_, n) => ({ n }));
const ns = (r: Roster<Item, unknown>) => r.toArray().map((x) => x.n);

describe('Roster', () => {
  const cases: { name: string; run: (r: Roster<Item>, x: Item[]) => void; order: number[] }[] = [
    { name: 'keeps the order members came in', run: (r, x) => x.forEach((i) => r.add(i)), order: [0, 1, 2, 3, 4] },
    { name: 'a member added again keeps its place', run: (r, x) => [x[0]!, x[1]!, x[0]!].forEach((i) => r.add(i)), order: [0, 1] },
    { name: 'removes the oldest', run: (r, x) => (x.forEach((i) => r.add(i)), r.delete(x[0]!)), order: [1, 2, 3, 4] },
    { name: 'removes the newest', run: (r, x) => (x.forEach((i) => r.add(i)), r.delete(x[4]!)), order: [0, 1, 2, 3] },
    { name: 'removes one in the middle', run: (r, x) => (x.forEach((i) => r.add(i)), r.delete(x[2]!)), order: [0, 1, 3, 4] },
    { name: 'a member removed and added again goes to the end', run: (r, x) => (x.forEach((i) => r.add(i)), r.delete(x[1]!), r.add(x[1]!)), order: [0, 2, 3, 4, 1] },
    { name: 'empties and fills again', run: (r, x) => (x.forEach((i) => r.add(i)), x.forEach((i) => r.delete(i)), r.add(x[3]!)), order: [3] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = new Roster<Item>(KEY);
      const x = items(5);
      c.run(r, x);
      expect(ns(r)).toEqual(c.order);
      expect(r.size).toBe(c.order.length);
      expect(r.first()?.n).toBe(c.order[0]);
      for (const i of x) expect(r.has(i), `has ${i.n}`).toBe(c.order.includes(i.n));
    });
  }

  it('delete answers whether the object was a member', () => {
    const r = new Roster<Item>(KEY);
    const [a, b] = items(2) as [Item, Item];
    r.add(a);
    expect(r.delete(b)).toBe(false);
    expect(r.delete(a)).toBe(true);
    expect(r.delete(a)).toBe(false);
    expect(r.size).toBe(0);
    expect(r.first()).toBeUndefined();
  });

  it('keeps data with each member until it leaves', () => {
    const r = new Roster<Item, string>(KEY);
    const [a, b] = items(2) as [Item, Item];
    r.add(a, 'first');
    r.add(b, 'second');
    r.add(a, 'ignored: already a member');
    expect([r.get(a), r.get(b)]).toEqual(['first', 'second']);
    expect(r.dataArray()).toEqual(['first', 'second']);
    expect(r.dataArray(1)).toEqual(['first']);
    expect(r.dataArray(0)).toEqual([]);
    r.delete(a);
    expect(r.get(a)).toBeUndefined();
  });

  it('one object in two rosters of different keys, and not confused with another roster of the same key', () => {
    const r1 = new Roster<Item>(KEY);
    const r2 = new Roster<Item>(OTHER);
    const r3 = new Roster<Item>(KEY);
    const [a] = items(1) as [Item];
    r1.add(a);
    r2.add(a);
    expect(r3.has(a)).toBe(false);
    expect(r3.delete(a)).toBe(false);
    expect(r1.delete(a)).toBe(true);
    expect(r2.has(a)).toBe(true);
    expect(ns(r2)).toEqual([0]);
  });

  it('toArray is a snapshot: members may leave while it is gone through', () => {
    const r = new Roster<Item>(KEY);
    const x = items(4);
    x.forEach((i) => r.add(i));
    const seen: number[] = [];
    for (const i of r.toArray()) {
      seen.push(i.n);
      r.delete(i);
      if (i.n === 0) r.delete(x[2]!);
    }
    expect(seen).toEqual([0, 1, 2, 3]);
    expect(r.size).toBe(0);
  });

  it('a member let go keeps no link into the roster, and the roster none to it', () => {
    const r = new Roster<Item>(KEY);
    const x = items(3);
    x.forEach((i) => r.add(i));
    const link = (x[1] as unknown as Record<symbol, { prev: unknown; next: unknown; v: Item } | undefined>)[KEY]!;
    expect(link.v).toBe(x[1]);
    r.delete(x[1]!);
    expect((x[1] as unknown as Record<symbol, unknown>)[KEY]).toBeUndefined();
    expect([link.prev, link.next]).toEqual([null, null]);
    // Its neighbours now point at each other.
    const l0 = (x[0] as unknown as Record<symbol, { next: { v: Item } }>)[KEY]!;
    expect(l0.next.v).toBe(x[2]);
  });

  it('takes many members and lets them go in any order in linear time', () => {
    const r = new Roster<Item>(KEY);
    const x = items(100_000);
    x.forEach((i) => r.add(i));
    for (let i = 0; i < x.length; i += 2) r.delete(x[i]!);
    expect(r.size).toBe(50_000);
    expect(r.first()?.n).toBe(1);
    for (let i = x.length - 1; i >= 0; i -= 2) r.delete(x[i]!);
    expect(r.size).toBe(0);
  });
});
