/**
 * The compact zone storage (src/zone/zone.ts): a node's RRsets in one field, its flags in one small
 * integer, a one-record RRset's RDATA as (buffer, packed offset and length), owner names of a zone
 * file in copies of their own. What is read back must be what went in, whatever the layout.
 */
import t from 'tap';
import { TYPE } from '../../src/wire/constants.js';
import { nameFromText, nameToText } from '../../src/wire/name.js';
import {
  addRdata,
  findNode,
  newRRset,
  packedRdata,
  type PackedRdata,
  RRsetMap,
  ZoneNode,
} from '../../src/zone/zone.js';

const origin = nameFromText('s.test.');
const zone = (): { apex: ZoneNode; originLabels: number } => ({
  apex: new ZoneNode('', null, origin),
  originLabels: 2,
});

t.test('RRsetMap: one, several, replace, delete back to one and to none', (t) => {
  const node = findNode(zone(), nameFromText('www.s.test.'), true)!;
  const a = newRRset(node, TYPE.A, 300, Uint8Array.of(192, 0, 2, 1));
  const aaaa = newRRset(node, TYPE.AAAA, 300, new Uint8Array(16));
  const txt = newRRset(node, TYPE.TXT, 300, Uint8Array.of(1, 0x61));
  const m: RRsetMap = node.rrsets;
  t.equal(m.size, 0);
  t.equal(m.at(0), undefined);
  m.set(TYPE.A, a);
  t.equal(m.size, 1);
  t.equal(m.get(TYPE.A), a);
  t.equal(m.get(TYPE.AAAA), undefined);
  m.set(TYPE.AAAA, aaaa).set(TYPE.TXT, txt);
  t.equal(m.size, 3);
  t.same([...m.keys()], [TYPE.A, TYPE.AAAA, TYPE.TXT], 'in the order added');
  t.equal(m.at(2), txt);
  const a2 = newRRset(node, TYPE.A, 60, Uint8Array.of(192, 0, 2, 2));
  m.set(TYPE.A, a2);
  t.equal(m.get(TYPE.A), a2, 'replaced in place');
  t.equal(m.size, 3);
  for (const s of m.values()) m.delete(s.type === TYPE.AAAA ? TYPE.AAAA : -1);
  t.notOk(m.has(TYPE.AAAA), 'deleting while iterating values() is safe');
  t.ok(m.delete(TYPE.A));
  t.equal(m.size, 1);
  t.equal(m.at(0), txt);
  t.notOk(m.delete(TYPE.A));
  t.ok(m.delete(TYPE.TXT));
  t.equal(m.size, 0);
  t.same([...m], []);
  t.end();
});

t.test('ZoneNode flags: cut and occluded are independent', (t) => {
  const node = findNode(zone(), nameFromText('sub.s.test.'), true)!;
  t.equal(node.cut, false);
  t.equal(node.occluded, false);
  node.cut = true;
  t.equal(node.cut, true);
  t.equal(node.occluded, false);
  node.occluded = true;
  node.cut = false;
  t.equal(node.cut, false);
  t.equal(node.occluded, true);
  t.end();
});

t.test('a one-record RRset reads back its RDATA wherever it lies in its buffer', (t) => {
  const node = findNode(zone(), nameFromText('x.s.test.'), true)!;
  const big = new Uint8Array(2 ** 20 + 4096);
  const cases: [string, Uint8Array][] = [
    ['slab-like: small offset', big.subarray(100, 104)],
    ['offset past 2^20', big.subarray(2 ** 20 + 10, 2 ** 20 + 14)],
    ['RDATA of 3,000 bytes', big.subarray(8, 3008)],
    ['its own buffer', Uint8Array.of(10, 0, 0, 1)],
  ];
  big.fill(7);
  for (const [what, rd] of cases) {
    rd[0] = 42;
    const set = newRRset(node, TYPE.A, 300, rd);
    t.same(set.rdatas, [rd], `${what}: rdatas`);
    const out: PackedRdata = { src: null, off: 0, len: 0 };
    if (packedRdata(set, out)) {
      t.same(new Uint8Array(out.src!, out.off, out.len), rd, `${what}: packedRdata`);
    } else t.same(set.rdatas[0], rd, `${what}: kept as a list`);
    addRdata(set, Uint8Array.of(10, 0, 0, 2));
    t.same(set.rdatas, [rd, Uint8Array.of(10, 0, 0, 2)], `${what}: a second record`);
    t.notOk(packedRdata(set, out), `${what}: a list now`);
  }
  t.end();
});

t.test('transient names: the same bytes as slab names, in their own buffer', (t) => {
  for (const text of ['www', 'a-very-long-label-of-many-octets', '@', 'x.y.z.']) {
    const a = nameFromText(text, origin);
    const b = nameFromText(text, origin, true);
    t.same(b, a, text);
    t.equal(nameToText(b), nameToText(a));
  }
  const node = findNode(zone(), nameFromText('a-very-long-label-of-many-octets.s.test.', null, true), true)!;
  t.equal(node.label, 'a-very-long-label-of-many-octets', 'a long label from a transient name');
  t.equal(nameToText(node.name), 'a-very-long-label-of-many-octets.s.test.');
  t.end();
});
