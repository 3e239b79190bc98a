/**
 * The differential corpus (test/diff) for transfer tests: the corpus zones as RFC 1035 text (what a
 * primary loads), and the comparison of a secondary's answers with a reference server's (Knot serving
 * the same files, as in test/diff/knot.test.ts, or the primary itself) over TCP, query by query.
 */
import { typeToText } from '../../src/wire/constants.js';
import { nameToText } from '../../src/wire/name.js';
import { rdataToText } from '../../src/wire/rdata.js';
import { writeMasterFile } from '../../src/zone/masterfile.js';
import { listZoneFiles, parseZoneFile } from '../../src/zone/load.js';
import type { ParsedZone } from '../../src/zone/types.js';
import { type Case, generateCases } from '../diff/corpus.js';
import { tolerated } from '../diff/tolerances.js';
import { buildQuery, tcpExchange } from './dns.js';
import { type NormResponse, normalizeWire } from './knot.js';

export interface Corpus {
  parsed: ParsedZone[];
  /** Zone name without the trailing dot → zone file text. */
  zones: Record<string, string>;
  /**
   * The same with every name absolute, also in RDATA: PowerDNS 4.7's zone parser leaves a relative
   * NAPTR replacement or SVCB/HTTPS target unqualified (`_sip._udp` is served as `_sip._udp.`).
   */
  absoluteZones: Record<string, string>;
  cases: Case[];
}

/** The corpus zones (zones/ and test/fixtures/diff) and their queries. */
export function loadCorpus(): Corpus {
  const files = [...listZoneFiles('zones'), ...listZoneFiles('test/fixtures/diff')];
  const parsed = files.map((f) => parseZoneFile(f));
  const zones: Record<string, string> = {};
  const absoluteZones: Record<string, string> = {};
  for (const z of parsed) {
    const name = nameToText(z.origin).replace(/\.$/, '');
    zones[name] = writeMasterFile(
      z.origin,
      z.records,
      z.defaultTtl !== undefined ? { defaultTtl: z.defaultTtl } : {},
    );
    // SOA first (RFC 1035 §5.2), then the rest in file order.
    const soaFirst = [...z.records].sort((a, b) => Number(b.type === 6) - Number(a.type === 6));
    absoluteZones[name] = `${soaFirst
      .map((r) => `${nameToText(r.owner)} ${r.ttl} IN ${typeToText(r.type)} ${rdataToText(r.type, r.rdata)}`)
      .join('\n')}\n`;
  }
  return { parsed, zones, absoluteZones, cases: generateCases(parsed) };
}

/** Sends every query on one TCP connection; responses by query ID (a server may answer out of order). */
async function askAll(port: number, queries: Buffer[]): Promise<Map<number, Buffer>> {
  const out = await tcpExchange(port, queries, 30_000);
  return new Map(out.map((m) => [m.readUInt16BE(0), m]));
}

/**
 * Asks `ours` and `reference` every corpus query (EDNS, 1232) over TCP and compares the normalized
 * answers (rcode, flags, each section as RRsets with TTLs). With `knotTolerances`, the documented
 * popdns-vs-Knot differences (test/diff/TOLERANCES.md) are not mismatches: pass it when the reference
 * is Knot. With `answerOnly`, only the data counts: rcode, flags and the answer RRsets at the query
 * name (not the authority and additional sections, nor the rest of a CNAME chain, which each
 * implementation fills in its own way), and no ANY or meta-type query (each server's own choice).
 * Returns the number
 * compared and the mismatches, described.
 */
export async function compareCorpus(
  corpus: Corpus,
  ours: number,
  reference: number,
  knotTolerances: boolean,
  o: { answerOnly?: boolean } = {},
): Promise<{ compared: number; mismatches: string[] }> {
  const queries = corpus.cases.map((c, i) =>
    buildQuery(c.name, c.type, { edns: true, bufsize: 1232, id: i + 1 }),
  );
  const [a, b] = await Promise.all([askAll(ours, queries), askAll(reference, queries)]);
  const mismatches: string[] = [];
  let compared = 0;
  corpus.cases.forEach((c, i) => {
    // RFC 8482 leaves the answer to ANY to the server (popdns: one RRset), and meta and query types
    // (0, OPT, 128-255: RFC 6895 §3.1) get each server's own rcode: not data to compare.
    if (o.answerOnly && (c.type === 'ANY' || c.type === 'OPT' || /^TYPE(0|1[2-9]\d|2\d\d)$/.test(c.type)))
      return;
    compared++;
    const x = a.get(i + 1);
    const y = b.get(i + 1);
    if (!x || !y) {
      mismatches.push(`${c.name} ${c.type}: no answer from ${x ? 'the reference' : 'the secondary'}`);
      return;
    }
    const norm = (m: Buffer): NormResponse => {
      const n = normalizeWire(m);
      if (!o.answerOnly) return n;
      // The data at the query name; how far a CNAME chain is followed (and the rcode at its end) is
      // each server's policy, not data.
      const owner = c.name.toLowerCase().replace(/\.$/, '');
      const answer = n.answer.filter((r) => r.owner === owner);
      const chain = answer.some((r) => r.type === '5') && c.type !== 'CNAME';
      return { ...n, rcode: chain ? '-' : n.rcode, answer, authority: [], additional: [] };
    };
    const no = norm(x);
    const nr = norm(y);
    if (JSON.stringify(no) !== JSON.stringify(nr) && !(knotTolerances && tolerated(c, no, nr)))
      mismatches.push(
        `${c.name} ${c.type}\n  secondary: ${JSON.stringify(no)}\n  reference: ${JSON.stringify(nr)}`,
      );
  });
  return { compared, mismatches };
}
