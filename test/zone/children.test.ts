/** The trie's child sets: lookup by label bytes in any case, insertion order, growth and deletion. */
import t, { type Test } from 'tap';
import { Children } from '../../src/zone/children.js';

interface L {
  label: string;
}

/** A name with one label, as wire bytes: length byte, label, root. */
function wire(label: string): Uint8Array {
  return Uint8Array.from([label.length, ...Buffer.from(label, 'latin1'), 0]);
}

function check(tt: Test, c: Children<L>, present: L[], absent: string[]): void {
  tt.equal(c.size, present.length, 'size');
  tt.same(
    [...c.values()].map((x) => x.label),
    present.map((x) => x.label),
    'values in insertion order',
  );
  for (const x of present) {
    if (c.find(wire(x.label), 0) !== x) tt.fail(`find ${x.label}`);
    if (c.find(wire(x.label.toUpperCase()), 0) !== x) tt.fail(`find ${x.label} upper-cased`);
    if (c.get(x.label.toUpperCase()) !== x) tt.fail(`get ${x.label}`);
  }
  for (const a of absent) {
    if (c.find(wire(a), 0) !== undefined) tt.fail(`${a} should be absent`);
    if (c.get(a) !== undefined) tt.fail(`${a} should be absent (get)`);
  }
}

t.test('small and large sets find labels by bytes, case-insensitively (RFC 4343)', (tt) => {
  for (const n of [1, 8, 9, 100, 5000]) {
    const c = new Children<L>();
    const nodes = Array.from({ length: n }, (_, i) => ({ label: i % 3 === 0 ? `Host${i}` : `h${i}` }));
    for (const x of nodes) c.add(x);
    check(tt, c, nodes, ['nope', `h${n}`, `host${n + 3}`, '*']);
  }
  const c = new Children<L>();
  const star = { label: '*' };
  c.add({ label: 'a' });
  c.add(star);
  tt.equal(c.get('*'), star, 'the wildcard label');
  tt.equal(c.find(wire('*'), 0), star);
  // A label offset inside a longer name: "b" in b.a.
  const name = Uint8Array.from([1, 0x42, 1, 0x61, 0]);
  tt.equal(c.find(name, 2)?.label, 'a', 'label at an offset');
  tt.equal(c.find(name, 0), undefined);
  tt.end();
});

t.test('labels differ only in non-letters or length; bytes above 0x7f compare exactly', (tt) => {
  const c = new Children<L>();
  const labels = ['a', 'a-', 'a_', 'A0', 'ab', '\xc0', '\xe0', '\\.', 'a.b'];
  const nodes = labels.map((label) => ({ label }));
  for (const x of nodes) c.add(x);
  for (let i = 0; i < 30; i++) c.add({ label: `pad${i}` });
  for (const x of nodes) tt.equal(c.find(wire(x.label), 0), x, `find ${JSON.stringify(x.label)}`);
  // 0xC0 and 0xE0 are not letters to DNS: they stay distinct.
  tt.not(c.get('\xc0'), c.get('\xe0'));
  tt.end();
});

t.test('deletion keeps every other child reachable, in both layouts', (tt) => {
  for (const n of [6, 40, 3000]) {
    const c = new Children<L>();
    const nodes = Array.from({ length: n }, (_, i) => ({ label: `n${i}` }));
    for (const x of nodes) c.add(x);
    const kept: L[] = [];
    const gone: string[] = [];
    nodes.forEach((x, i) => {
      if (i % 3 === 1) {
        tt.equal(c.delete(x), true);
        gone.push(x.label);
      } else kept.push(x);
    });
    tt.equal(c.delete({ label: 'n0' }), false, 'another object with the same label is not a member');
    check(tt, c, kept, gone);
    // Delete most of the rest (compaction back to a list), then grow again.
    for (const x of kept.splice(0, kept.length - 3)) {
      c.delete(x);
      gone.push(x.label);
    }
    check(tt, c, kept, gone);
    const more = Array.from({ length: 50 }, (_, i) => ({ label: `m${i}` }));
    for (const x of more) c.add(x);
    check(tt, c, [...kept, ...more], gone);
  }
  tt.end();
});
