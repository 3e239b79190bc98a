/**
 * SortedChain (src/zone/chain.ts), the chunked sorted sequence the NSEC/NSEC3 chains use, against a
 * plain sorted array as the model: random inserts, removals and replacements (enough for chunks to
 * split and to be joined), every lookup after each step, and every earlier version unchanged.
 */
import t, { type Test } from 'tap';
import { SortedChain } from '../../src/zone/chain.js';
import { rng } from '../helpers/rng.js';

const cmp = (e: number, k: number): number => e - k;

/** The model's answers: first index not below k; last entry ≤ k, else the last entry (wrap). */
function lowerBound(a: readonly number[], k: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
function floorWrap(a: readonly number[], k: number): number | undefined {
  const i = lowerBound(a, k);
  if (a[i] === k) return k;
  return i > 0 ? a[i - 1] : a[a.length - 1];
}

function same(t: Test, c: SortedChain<number, number>, a: readonly number[], what: string): boolean {
  const got = [...c];
  if (c.length !== a.length || JSON.stringify(got) !== JSON.stringify(a)) {
    t.strictSame(got, a, `${what}: entries`);
    return false;
  }
  if (JSON.stringify(c.toArray()) !== JSON.stringify(a)) {
    t.fail(`${what}: toArray`);
    return false;
  }
  for (let i = -1; i <= a.length; i++) {
    if (c.at(i) !== a[i]) {
      t.fail(`${what}: at(${i}) = ${c.at(i)}, want ${a[i]}`);
      return false;
    }
  }
  const probes = [-1, 0, ...a, ...a.map((x) => x + 1), 1e9];
  for (const k of probes) {
    if (c.lowerBound(k) !== lowerBound(a, k) || c.floorWrap(k) !== floorWrap(a, k)) {
      t.fail(`${what}: lookups of ${k}`);
      return false;
    }
  }
  return true;
}

t.test('empty, one entry, wrap-around at both ends', (t) => {
  const e = SortedChain.from<number, number>([], cmp);
  t.equal(e.length, 0);
  t.equal(e.floorWrap(5), undefined);
  t.equal(e.lowerBound(5), 0);
  t.equal(e.at(0), undefined);
  const one = e.insertAt(0, 10);
  t.ok(same(t, one, [10], 'one'));
  t.equal(one.floorWrap(3), 10, 'below the only entry: wraps to it');
  t.ok(same(t, one.removeAt(0), [], 'removed again'));
  t.ok(same(t, e, [], 'the empty version is unchanged'));
  const c = SortedChain.from(
    Array.from({ length: 500 }, (_, i) => i * 2 + 10),
    cmp,
  );
  t.equal(c.floorWrap(0), 1008, 'before the first: the last entry covers it');
  t.equal(c.floorWrap(5000), 1008, 'after the last: the last entry covers it');
  t.equal(c.floorWrap(11), 10);
  const before = c.insertAt(0, 1);
  t.equal(before.at(0), 1, 'inserted before the first');
  t.equal(before.floorWrap(0), 1008);
  const after = c.insertAt(c.length, 2000);
  t.equal(after.at(after.length - 1), 2000, 'inserted after the last');
  t.equal(after.floorWrap(1), 2000, 'the new last entry now wraps');
  const noLast = c.removeAt(c.length - 1);
  t.equal(noLast.floorWrap(0), 1006, 'last taken out: its predecessor wraps');
  const noFirst = c.removeAt(0);
  t.equal(noFirst.floorWrap(11), 1008, 'first taken out: what was below it now wraps');
  t.ok(
    same(
      t,
      c,
      Array.from({ length: 500 }, (_, i) => i * 2 + 10),
      'the original is unchanged',
    ),
  );
  t.throws(() => c.insertAt(501, 0), RangeError);
  t.throws(() => c.removeAt(500), RangeError);
  t.throws(() => c.setAt(-1, 0), RangeError);
  t.end();
});

for (const [seed, start] of [
  [1, 0],
  [2, 300],
  [3, 5000],
] as const) {
  t.test(`seed ${seed}, ${start} entries: random changes against a sorted array`, (t) => {
    const r = rng(seed);
    let model = Array.from({ length: start }, (_, i) => i * 10);
    let chain = SortedChain.from(model, cmp);
    const history: [SortedChain<number, number>, number[]][] = [];
    let ok = true;
    for (let step = 0; step < 600 && ok; step++) {
      history.push([chain, model]);
      const k = r();
      const next = model.slice();
      if (k < 0.45 || model.length === 0) {
        // A burst in one place (chunks split) or a single entry anywhere.
        const burst = r() < 0.1 ? 150 : 1;
        const base = Math.floor(r() * 60000);
        for (let b = 0; b < burst; b++) {
          const v = base + b;
          const i = lowerBound(next, v);
          if (next[i] === v) continue;
          next.splice(i, 0, v);
          chain = chain.insertAt(i, v);
        }
      } else if (k < 0.85) {
        // Removals: sometimes a run (chunks shrink and are joined).
        const run = r() < 0.1 ? 120 : 1;
        const i = Math.floor(r() * next.length);
        for (let b = 0; b < run && i < next.length; b++) {
          next.splice(i, 1);
          chain = chain.removeAt(i);
        }
      } else {
        const i = Math.floor(r() * next.length);
        chain = chain.setAt(i, next[i]!);
      }
      model = next;
      // Everything every few steps; the entries and a few lookups at each.
      if (step % 20 === 0) ok = same(t, chain, model, `step ${step}`);
      else {
        ok = chain.length === model.length && chain.toArray().every((x, i) => x === model[i]);
        for (let p = 0; p < 8 && ok; p++) {
          const q = Math.floor(r() * 61000) - 500;
          const i = Math.floor(r() * (model.length + 1));
          ok = chain.floorWrap(q) === floorWrap(model, q) && chain.lowerBound(q) === lowerBound(model, q);
          ok &&= chain.at(i) === model[i];
        }
        if (!ok) t.fail(`step ${step}: entries or lookups differ from the model`);
      }
    }
    for (const [i, [c, m]] of history.entries()) {
      if (!ok) break;
      if (i % 50 === 0) ok = same(t, c, m, `version ${i} afterwards`);
    }
    t.ok(ok, 'every step and every earlier version as the model says');
    t.end();
  });
}

t.test('unshared: only the chunks two versions do not share', (t) => {
  const a = SortedChain.from(
    Array.from({ length: 10000 }, (_, i) => i * 3),
    cmp,
  );
  const a1 = a.insertAt(a.lowerBound(4000), 4000);
  const b = a1.removeAt(a1.lowerBound(9000));
  const { onlyA, onlyB } = SortedChain.unshared(a, b);
  t.ok(onlyA.length < 1000 && onlyB.length < 1000, `a few chunks (${onlyA.length}, ${onlyB.length})`);
  t.ok(onlyA.includes(9000) && !onlyB.includes(9000), 'the removed entry');
  t.ok(onlyB.includes(4000) && !onlyA.includes(4000), 'the added entry');
  const sa = new Set(onlyA);
  const sb = new Set(onlyB);
  const diff = [...onlyA.filter((x) => !sb.has(x)), ...onlyB.filter((x) => !sa.has(x))].sort((x, y) => x - y);
  t.strictSame(diff, [4000, 9000], 'exactly the difference');
  const same = SortedChain.unshared(a, a);
  t.strictSame([same.onlyA.length, same.onlyB.length], [0, 0], 'a version with itself');
  const other = SortedChain.from([1, 2, 3], cmp);
  t.equal(SortedChain.unshared(a, other).onlyA.length, 10000, 'unrelated chains: everything');
  t.end();
});
