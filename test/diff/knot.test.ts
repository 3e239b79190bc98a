/**
 * Differential test against Knot DNS, the oracle: the same zones in knotd and in popdns, every query
 * of the corpus compared by rcode, AA, TC and each section as a set of RRsets with TTLs.
 * 1. engine: popdns's answer engine called directly vs knotd over TCP (no size limit);
 * 2. wire: `popdns serve` vs knotd over UDP and TCP, with and without EDNS, bufsize 512 and 1232,
 *    and the query name in mixed case.
 * Intentional differences are in tolerances.ts, each with its reason (and TOLERANCES.md).
 */
import { copyFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import packet from 'dns-packet';
import t from 'tap';
import { resolve } from '../../src/query/engine.js';
import { typeFromText } from '../../src/wire/constants.js';
import { nameFromText } from '../../src/wire/name.js';
import { listZoneFiles, loadZoneFile, parseZoneFile } from '../../src/zone/load.js';
import type { Zone } from '../../src/zone/zone.js';
import { ZoneSet } from '../../src/zone/zoneset.js';
import { buildQuery, questionEnd, tcpExchange, udpExchange } from '../helpers/dns.js';
import { type NormResponse, normalizeAnswer, normalizeWire, startKnot } from '../helpers/knot.js';
import { needTool, startPopdns, tmpDir } from '../helpers/peers.js';
import { generateCases } from './corpus.js';
import { tolerated } from './tolerances.js';

const files = [...listZoneFiles('zones'), ...listZoneFiles('test/fixtures/diff')];
const parsed = files.map((f) => parseZoneFile(f));
const zones = files.map((f) => loadZoneFile(f).zone).filter((z): z is Zone => z !== null);
const zoneSet = new ZoneSet(zones);
const cases = generateCases(parsed);

/** Whether a response carries an OPT record. */
function hasOpt(m: Buffer): boolean {
  return (packet.decode(m).additionals ?? []).some((r) => r.type === 'OPT');
}

function diff(a: NormResponse, b: NormResponse): string | null {
  const ja = JSON.stringify(a);
  const jb = JSON.stringify(b);
  return ja === jb ? null : `popdns: ${ja}\n  knot: ${jb}`;
}

function mixCase(name: string): string {
  let i = 0;
  return name.replace(/[a-z]/g, (c) => (i++ % 2 === 0 ? c.toUpperCase() : c));
}

t.test('the corpus is big enough', (tt) => {
  tt.equal(zones.length, files.length, 'every zone loads');
  tt.ok(cases.length >= 200, `${cases.length} queries`);
  tt.end();
});

t.test('engine vs knotd', async (tt) => {
  if (!needTool(tt, 'knotd', 'knot')) return;
  const knot = await startKnot(tt, parsed);
  const mismatches: string[] = [];
  let compared = 0;
  for (const c of cases) {
    const type = typeFromText(c.type)!;
    const ours = normalizeAnswer(resolve(zoneSet, nameFromText(c.name), type));
    const [raw] = await tcpExchange(knot.port, [buildQuery(c.name, c.type, { edns: true, bufsize: 4096 })]);
    const theirs = normalizeWire(raw!);
    compared++;
    const d = diff(ours, theirs);
    if (d && !tolerated(c, ours, theirs)) mismatches.push(`${c.name} ${c.type}\n  ${d}`);
  }
  tt.equal(
    mismatches.length,
    0,
    `${compared} queries compared; mismatches:\n${mismatches.slice(0, 15).join('\n')}`,
  );
});

t.test('popdns serve vs knotd over the wire', async (tt) => {
  if (!needTool(tt, 'knotd', 'knot')) return;
  const dir = tmpDir(tt);
  for (const f of files) copyFileSync(f, join(dir, basename(f)));
  const [knot, ours] = await Promise.all([startKnot(tt, parsed), startPopdns(tt, dir, ['--workers', '1'])]);
  const variants: { label: string; tcp: boolean; edns: boolean; bufsize?: number; mixed?: boolean }[] = [
    { label: 'udp no-edns', tcp: false, edns: false },
    { label: 'udp edns 512', tcp: false, edns: true, bufsize: 512 },
    { label: 'udp edns 1232 mixed-case', tcp: false, edns: true, bufsize: 1232, mixed: true },
    { label: 'tcp edns', tcp: true, edns: true, bufsize: 1232 },
    { label: 'tcp no-edns mixed-case', tcp: true, edns: false, mixed: true },
  ];
  const mismatches: string[] = [];
  let compared = 0;
  for (const v of variants) {
    for (const c of cases) {
      const name = v.mixed ? mixCase(c.name) : c.name;
      const q = buildQuery(name, c.type, { edns: v.edns, bufsize: v.bufsize ?? 0, id: 4242 });
      const send = async (port: number): Promise<Buffer | null> =>
        v.tcp ? ((await tcpExchange(port, [q]))[0] ?? null) : udpExchange(port, q);
      const [a, b] = await Promise.all([send(ours.port), send(knot.port)]);
      if (!a || !b) {
        mismatches.push(`${v.label} ${name} ${c.type}: no answer from ${a ? 'knot' : 'popdns'}`);
        continue;
      }
      compared++;
      // The ID and the question must be echoed byte for byte (0x20 case preserved).
      const qEnd = questionEnd(q);
      if (a.readUInt16BE(0) !== 4242 || !a.subarray(12, qEnd).equals(q.subarray(12, qEnd))) {
        mismatches.push(`${v.label} ${name} ${c.type}: ID or question not echoed exactly`);
      }
      // An OPT comes back exactly when Knot sends one, and the question as often (RFC 6891 §7).
      const shape = (m: Buffer): string => `qd ${m.readUInt16BE(4)} opt ${hasOpt(m)}`;
      if (shape(a) !== shape(b)) {
        mismatches.push(`${v.label} ${name} ${c.type}: popdns ${shape(a)}, knot ${shape(b)}`);
      }
      const na = normalizeWire(a);
      const nb = normalizeWire(b);
      const d = diff(na, nb);
      if (d && !tolerated(c, na, nb)) mismatches.push(`${v.label} ${name} ${c.type}\n  ${d}`);
    }
  }
  tt.equal(
    mismatches.length,
    0,
    `${compared} exchanges compared; mismatches:\n${mismatches.slice(0, 15).join('\n')}`,
  );
});

/**
 * Messages that are not plain queries: popdns must answer them as Knot does — rcode, flags, the
 * question echoed or not, an OPT or not (RFC 6891 §7: errors to a query with a valid OPT carry one;
 * a message that cannot be walked to its end has no valid OPT).
 */
t.test('error responses vs knotd', async (tt) => {
  if (!needTool(tt, 'knotd', 'knot')) return;
  const dir = tmpDir(tt);
  for (const f of files) copyFileSync(f, join(dir, basename(f)));
  const [knot, ours] = await Promise.all([startKnot(tt, parsed), startPopdns(tt, dir, ['--workers', '1'])]);
  const hex = (x: string): Buffer => Buffer.from(x.replace(/\s+/g, ''), 'hex');
  const Q = '03777777 06747269636b79 0474657374 00 0001 0001'; // www.tricky.test. A IN
  const OPT = '00 0029 04d0 00 00 8000 0000'; // UDP 1232, DO
  const cases: Record<string, string> = {
    'opcode STATUS with EDNS': `abcd 1000 0001 0000 0000 0001 ${Q} ${OPT}`,
    'opcode 3 with EDNS': `abcd 1800 0001 0000 0000 0001 ${Q} ${OPT}`,
    'opcode STATUS without EDNS': `abcd 1000 0001 0000 0000 0000 ${Q}`,
    'QDCOUNT 0 with EDNS': `abcd 0000 0000 0000 0000 0001 ${OPT}`,
    'two OPTs': `abcd 0000 0001 0000 0000 0002 ${Q} ${OPT} ${OPT}`,
    'OPT in the answer section': `abcd 0000 0001 0001 0000 0000 ${Q} ${OPT}`,
    'trailing garbage after the OPT': `abcd 0000 0001 0000 0000 0001 ${Q} ${OPT} 00`,
    'EDNS version 1': `abcd 0000 0001 0000 0000 0001 ${Q} 00 0029 04d0 00 01 0000 0000`,
  };
  const mismatches: string[] = [];
  for (const [label, h] of Object.entries(cases)) {
    const q = hex(h);
    for (const tcp of [false, true]) {
      const send = async (port: number): Promise<Buffer | null> =>
        tcp ? ((await tcpExchange(port, [q]))[0] ?? null) : udpExchange(port, q);
      const [a, b] = await Promise.all([send(ours.port), send(knot.port)]);
      if (!a || !b) {
        mismatches.push(`${label}: no answer from ${a ? 'knot' : 'popdns'}`);
        continue;
      }
      const shape = (m: Buffer): string =>
        `flags ${m.readUInt16BE(2).toString(16)} counts ${m.subarray(4, 12).toString('hex')} ` +
        `question ${m.readUInt16BE(4) ? m.subarray(12, 12 + Q.replace(/\s+/g, '').length / 2).toString('hex') : '-'} ` +
        `opt ${m.readUInt16BE(10) ? m.subarray(m.length - 11).toString('hex') : '-'}`;
      if (shape(a) !== shape(b)) {
        mismatches.push(`${label} (${tcp ? 'tcp' : 'udp'})\n  popdns: ${shape(a)}\n    knot: ${shape(b)}`);
      }
    }
  }
  tt.equal(mismatches.length, 0, `mismatches:\n${mismatches.join('\n')}`);
});
