/**
 * Children.clone (src/zone/children.ts) for copy-on-write zone versions: a small set is copied flat,
 * a wide one becomes an overlay on the original; whatever is added to, deleted from or replaced in
 * the copy (and in copies of the copy), the original keeps exactly its children, and the copy's
 * find/get/size/values agree with a plain model, also after it flattens past its threshold.
 */
import t, { type Test } from 'tap';
import { Children } from '../../src/zone/children.js';

interface Kid {
  readonly label: string;
  v: number;
}

const bytes = (label: string): Uint8Array => Uint8Array.from([label.length, ...Buffer.from(label, 'latin1')]);

function state(c: Children<Kid>): string[] {
  return c
    .values()
    .map((k) => `${k.label.toLowerCase()}=${k.v}`)
    .sort();
}

function agrees(t: Test, c: Children<Kid>, model: Map<string, Kid>, what: string): void {
  t.equal(c.size, model.size, `${what}: size`);
  t.strictSame(
    state(c),
    [...model.values()].map((k) => `${k.label.toLowerCase()}=${k.v}`).sort(),
    `${what}: values`,
  );
  let bad = 0;
  for (const [label, k] of model) if (c.find(bytes(label.toUpperCase()), 0) !== k) bad++;
  if (c.get('absent-label') !== undefined) bad++;
  t.equal(bad, 0, `${what}: find/get by label bytes, any case`);
}

for (const width of [5, 300]) {
  t.test(`a set of ${width}: clones never change the original`, async (t) => {
    const base = new Children<Kid>();
    const model = new Map<string, Kid>();
    for (let i = 0; i < width; i++) {
      const k = { label: `n${i}`, v: 0 };
      base.add(k);
      model.set(k.label, k);
    }
    const original = state(base);
    let cur = base;
    let m = new Map(model);
    let seed = width;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const versions: { c: Children<Kid>; s: string[] }[] = [];
    for (let v = 1; v <= 150; v++) {
      versions.push({ c: cur, s: state(cur) });
      const next = cur.clone();
      const nm = new Map(m);
      for (let j = 0; j < 3; j++) {
        const label = `n${rnd(width + 20)}`;
        const have = nm.get(label);
        const op = rnd(3);
        if (have && op === 0) {
          t.ok(next.delete(have), 'delete');
          nm.delete(label);
        } else if (have) {
          const k = { label, v };
          t.ok(next.replace(have, k), 'replace');
          nm.set(label, k);
        } else {
          const k = { label, v };
          next.add(k);
          nm.set(label, k);
        }
      }
      cur = next;
      m = nm;
    }
    agrees(t, cur, m, `after 150 versions`);
    t.strictSame(state(base), original, 'the original is as it was');
    t.equal(
      versions.filter((x) => JSON.stringify(state(x.c)) !== JSON.stringify(x.s)).length,
      0,
      'every earlier version is as it was when its copy was made',
    );
  });
}
