// The corpus index's ordered entries (src/console/time-order.ts) against the ordering they
// replace (push then a stable sort by time per day, a walk from the end per live message):
// after every step both must hold the same entries in the same order, ties included.
import { describe, expect, it } from 'vitest';
import { TimeOrder } from '../../src/console/time-order.js';

interface E {
  id: string;
  at: number;
}

/** The index's ordering as it was: the whole array sorted again at each day. */
class Reference {
  a: E[] = [];
  addRun(run: E[]): void {
    this.a.push(...run);
    this.a.sort((x, y) => x.at - y.at);
  }
  insert(e: E): void {
    let i = this.a.length;
    while (i > 0 && this.a[i - 1]!.at > e.at) i--;
    this.a.splice(i, 0, e);
  }
  remove(e: E): void {
    const i = this.a.lastIndexOf(e);
    if (i >= 0) this.a.splice(i, 1);
  }
  retain(keep: (e: E) => boolean): void {
    this.a = this.a.filter(keep);
  }
}

type Step = { run: E[] } | { insert: E } | { remove: string } | { drop: string };

let seq = 0;
/** `n` entries of one day (`day` days after a fixed start) at times from `times` (seconds into the day). */
const day = (d: number, times: number[]): E[] => times.map((t) => ({ id: `d${d}-${seq++}`, at: 1_767_225_600_000 + d * 86_400_000 + t * 1000 }));

/** A small seeded generator (the cases must be the same at every run). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function randomSteps(seed: number, n: number): Step[] {
  const r = rng(seed);
  const steps: Step[] = [];
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const k = r();
    if (k < 0.4) {
      // A day of few distinct seconds, so ties are common; days in any order.
      const run = day(Math.floor(r() * 20), Array.from({ length: Math.floor(r() * 30) }, () => Math.floor(r() * 5)));
      ids.push(...run.map((e) => e.id));
      steps.push({ run });
    } else if (k < 0.8) {
      const [e] = day(Math.floor(r() * 20), [Math.floor(r() * 5)]);
      ids.push(e!.id);
      steps.push({ insert: e! });
    } else if (k < 0.95 && ids.length > 0) steps.push({ remove: ids[Math.floor(r() * ids.length)]! });
    else steps.push({ drop: `d${Math.floor(r() * 20)}-` });
  }
  return steps;
}

const zero: E = { id: 'nodate', at: 0 };

describe('TimeOrder keeps the order a stable sort by time gives', () => {
  it.each<[string, Step[]]>([
    ['days newest first, as the scan goes', [{ run: day(3, [5, 1, 9]) }, { run: day(2, [7, 7, 2]) }, { run: day(1, [4, 3]) }]],
    ['days oldest first', [{ run: day(1, [4, 3]) }, { run: day(2, [7, 7, 2]) }, { run: day(3, [5, 1, 9]) }]],
    ['two store paths, their days interleaved in time', [{ run: day(5, [10, 30, 50]) }, { run: day(5, [20, 30, 40]) }, { run: day(4, [1, 2]) }, { run: day(4, [2, 3]) }]],
    ['ties within a day, across days and with live messages', [{ run: day(2, [0, 0, 0]) }, { insert: day(2, [0])[0]! }, { run: day(2, [0, 0]) }, { run: day(1, [86_400, 86_400]) }]],
    ['a record without a date (at 0) before older days come in', [{ run: day(9, [1]) }, { run: [zero] }, { run: day(8, [1, 2]) }, { run: day(7, [3]) }]],
    [
      'live messages during the scan, removals and a pruned day',
      [{ run: day(6, [1, 2, 3]) }, { insert: day(7, [0])[0]! }, { insert: day(6, [2])[0]! }, { run: day(5, [9, 8]) }, { remove: 'last' }, { remove: 'first' }, { drop: 'd6-' }, { insert: day(0, [0])[0]! }, { run: day(4, [1]) }],
    ],
    ['a seeded mix of every step (1)', randomSteps(1, 300)],
    ['a seeded mix of every step (2)', randomSteps(2, 300)],
  ])('%s', (_name, steps) => {
    const t = new TimeOrder<E>();
    const ref = new Reference();
    const all: E[] = [];
    for (const s of steps) {
      if ('run' in s) {
        all.push(...s.run);
        t.addRun(s.run);
        ref.addRun(s.run);
      } else if ('insert' in s) {
        all.push(s.insert);
        t.insert(s.insert);
        ref.insert(s.insert);
      } else if ('remove' in s) {
        const e = s.remove === 'last' ? ref.a.at(-1) : s.remove === 'first' ? ref.a[0] : all.find((x) => x.id === s.remove);
        if (!e) continue;
        expect(t.remove(e)).toBe(ref.a.includes(e));
        ref.remove(e);
      } else {
        const keep = (e: E) => !e.id.startsWith(s.drop);
        const before = ref.a.length;
        ref.retain(keep);
        expect(t.retain(keep)).toBe(before - ref.a.length);
      }
      const byGet = Array.from({ length: t.length }, (_, i) => t.get(i).id);
      const byEach: string[] = [];
      t.forEach((e) => byEach.push(e.id));
      expect(byGet).toEqual(ref.a.map((e) => e.id));
      expect(byEach).toEqual(byGet);
    }
  });
});
