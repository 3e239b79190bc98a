/** Knot DNS as the differential oracle: zones written as RFC 1035 files, knotd on a loopback port. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import packet from 'dns-packet';
import type { Test } from 'tap';
import type { Answer } from '../../src/query/types.js';
import { typeFromText, typeToText } from '../../src/wire/constants.js';
import { nameToText } from '../../src/wire/name.js';
import { writeMasterFile } from '../../src/zone/masterfile.js';
import type { ParsedZone } from '../../src/zone/types.js';
import { queryTcp } from './dns.js';
import { freePort, startProcess, tmpDir } from './peers.js';

export async function startKnot(t: Test, zones: ParsedZone[]): Promise<{ port: number }> {
  return startKnotText(
    t,
    zones.map((z) => ({
      origin: nameToText(z.origin),
      text: writeMasterFile(
        z.origin,
        z.records,
        z.defaultTtl !== undefined ? { defaultTtl: z.defaultTtl } : {},
      ),
    })),
  );
}

/** knotd serving zones given as RFC 1035 text (origin with its trailing dot), read by Knot's own parser. */
export async function startKnotText(
  t: Test,
  zones: { origin: string; text: string }[],
): Promise<{ port: number }> {
  const dir = tmpDir(t, 'popdns-knot-');
  const port = await freePort();
  const conf = [
    'server:',
    `    listen: 127.0.0.1@${port}`,
    `    rundir: ${dir}`,
    'database:',
    `    storage: ${dir}`,
    'log:',
    '  - target: stderr',
    '    any: warning',
    'template:',
    '  - id: default',
    `    storage: ${dir}`,
    '    semantic-checks: off',
    '    zonefile-sync: -1',
    '    zonefile-load: whole',
    '    journal-content: none',
    'zone:',
  ];
  for (const z of zones) {
    const file = `${z.origin}zone`;
    writeFileSync(join(dir, file), z.text);
    conf.push(`  - domain: ${z.origin}`, `    file: ${file}`);
  }
  writeFileSync(join(dir, 'knot.conf'), `${conf.join('\n')}\n`);
  await startProcess(t, 'knotd', ['-c', join(dir, 'knot.conf')], async () => {
    for (const z of zones) {
      try {
        const r = await queryTcp(port, z.origin, 'SOA');
        if ((r as PacketExtras).rcode !== 'NOERROR' || (r.answers?.length ?? 0) === 0) return false;
      } catch {
        return false;
      }
    }
    return true;
  });
  return { port };
}

export interface NormRRset {
  owner: string;
  type: string;
  ttl: number;
  rdata: string[];
}

export interface NormResponse {
  rcode: string;
  aa: boolean;
  tc: boolean;
  answer: NormRRset[];
  authority: NormRRset[];
  additional: NormRRset[];
}

/** The parts of dns-packet's runtime API its typings leave out. */
interface PacketExtras {
  rcode?: string;
}
const codecs = packet as unknown as { record(type: string): { decode(b: Buffer): unknown } };

function lowerNames(v: unknown): unknown {
  if (typeof v === 'string') return v.toLowerCase();
  if (Buffer.isBuffer(v)) return v.toString('hex');
  if (Array.isArray(v)) return v.map(lowerNames);
  if (v && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) o[k] = lowerNames(x);
    return o;
  }
  return v;
}

/** Type as a number string, whatever name dns-packet or we gave it (`UNKNOWN_65`, `HTTPS`, `TYPE65`). */
function normType(name: string): string {
  const m = /^UNKNOWN_([0-9]+)$/.exec(name);
  return m ? m[1]! : String(typeFromText(name) ?? name);
}

function group(records: packet.Answer[] | undefined): NormRRset[] {
  const sets = new Map<string, NormRRset>();
  for (const r of records ?? []) {
    if (r.type === 'OPT') continue;
    const owner = r.name.toLowerCase().replace(/\.$/, '') || '.';
    const key = `${owner}/${r.type}`;
    let s = sets.get(key);
    if (!s) {
      s = { owner, type: normType(r.type), ttl: 'ttl' in r ? (r.ttl ?? 0) : 0, rdata: [] };
      sets.set(key, s);
    }
    s.rdata.push(JSON.stringify(lowerNames('data' in r ? r.data : null)));
  }
  for (const s of sets.values()) s.rdata.sort();
  return [...sets.values()].sort((a, b) => (a.owner + a.type < b.owner + b.type ? -1 : 1));
}

export function normalizeWire(msg: Buffer): NormResponse {
  const p = packet.decode(msg);
  return {
    rcode: (p as PacketExtras).rcode ?? 'NOERROR',
    aa: ((p.flags ?? 0) & packet.AUTHORITATIVE_ANSWER) !== 0,
    tc: ((p.flags ?? 0) & packet.TRUNCATED_RESPONSE) !== 0,
    answer: group(p.answers),
    authority: group(p.authorities),
    additional: group(p.additionals),
  };
}

/** A name the way dns-packet's decoder writes it: labels joined with dots, no escapes. */
function plainName(n: Uint8Array): string {
  const labels: string[] = [];
  let i = 0;
  while (i < n.length && n[i] !== 0) {
    labels.push(Buffer.from(n.subarray(i + 1, i + 1 + n[i]!)).toString('latin1'));
    i += n[i]! + 1;
  }
  return labels.length ? `${labels.join('.')}.` : '.';
}

const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'YXDOMAIN'];

/** Our engine's Answer in the same normal form (RDATA decoded by dns-packet, independently of us). */
export function normalizeAnswer(a: Answer): NormResponse {
  const conv = (sets: Answer['answer']): packet.Answer[] =>
    sets.flatMap((s) =>
      s.rdatas.map((rd) => {
        const typeName = typeToText(s.type);
        // dns-packet decodes RDATA behind its 2-byte length; unknown types come back as a Buffer.
        const framed = Buffer.concat([Buffer.from([rd.length >> 8, rd.length & 0xff]), Buffer.from(rd)]);
        const codec = codecs.record(typeName);
        return {
          name: plainName(s.owner),
          type: typeName,
          ttl: s.ttl,
          data: codec.decode(framed),
        } as packet.Answer;
      }),
    );
  return {
    rcode: RCODES[a.rcode] ?? String(a.rcode),
    aa: a.aa,
    tc: false,
    answer: group(conv(a.answer)),
    authority: group(conv(a.authority)),
    additional: group(conv(a.additional)),
  };
}
