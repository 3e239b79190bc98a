/**
 * The end-to-end check of pre-signed zones, run by the presigned-*.test.ts files
 * (a few variants per file keeps each under the test runner's time limit).
 *
 * Pre-signed zones as real validators see them: a parent zone (with an empty non-terminal, a wildcard,
 * a CNAME to the wildcard, a secure delegation with DS, insecure delegations, and an empty
 * non-terminal above an insecure delegation only) and its secure child, signed by ldns-signzone
 * (NSEC; NSEC3 with salt and iterations; NSEC3 opt-out) and by dnssec-signzone (NSEC; NSEC3 opt-out,
 * which leaves insecure delegations out of the chain), loaded by popdns with no keys of its own.
 * Unbound and delv, with the signer's key as trust anchor, must validate every answer: positive,
 * NODATA, NXDOMAIN, empty non-terminal, wildcard answer, wildcard NODATA, referral with DS, proof of
 * no DS. The negative control: one signature broken in memory must SERVFAIL. Then Knot serves the
 * same signed files and every DO=1 answer must be the same as popdns's, section by section.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { defaultConfig } from '../../src/server/config.js';
import { PopdnsServer } from '../../src/server/server.js';
import { TYPE } from '../../src/wire/constants.js';
import { nameFromText } from '../../src/wire/name.js';
import { parseZoneFile } from '../../src/zone/load.js';
import { findNode } from '../../src/zone/zone.js';
import { buildQuery, tcpExchange } from '../helpers/dns.js';
import { normalizeWire, startKnot } from '../helpers/knot.js';
import { freePort, needTool, tmpDir } from '../helpers/peers.js';
import { delvWith, dig, startUnbound } from '../helpers/validators.js';
import { spawnSync } from '../helpers/spawn.js';

const quiet = { info: () => {}, error: (m: string) => process.stderr.write(`${m}\n`) };

const PARENT = 'presigned.test.';
const CHILD = 'secure.presigned.test.';
const INSECURE = 'insecure.presigned.test.';

function parentZone(childDs: string): string {
  return `$ORIGIN ${PARENT}
$TTL 300
@ IN SOA ns1 hostmaster 2026113001 3600 900 604800 300
@ IN NS ns1
ns1 IN A 127.0.0.1
www IN A 192.0.2.1
www IN AAAA 2001:db8::1
a.b IN A 192.0.2.2
*.wild IN A 192.0.2.3
*.wild IN TXT "from the wildcard"
alias IN CNAME x.wild
bad IN A 192.0.2.66
secure IN NS ns.secure
secure IN DS ${childDs}
ns.secure IN A 127.0.0.1
insecure IN NS ns.insecure
ns.insecure IN A 127.0.0.1
x.ent IN NS ns.x.ent
ns.x.ent IN A 127.0.0.1
`;
}

const CHILD_ZONE = `$ORIGIN ${CHILD}
$TTL 300
@ IN SOA ns hostmaster 1 3600 900 604800 300
@ IN NS ns
ns IN A 127.0.0.1
www IN A 192.0.2.10
`;

const INSECURE_ZONE = `$ORIGIN ${INSECURE}
$TTL 300
@ IN SOA ns hostmaster 1 3600 900 604800 300
@ IN NS ns
ns IN A 127.0.0.1
host IN A 192.0.2.20
`;

/**
 * name, type, rcode, what; and `span`: the proof rests on an NSEC3 that covers the next closer name
 * (or, with `omit`, on a delegation left out of the chain), which under opt-out proves nothing
 * securely (RFC 5155 §6): there validators answer insecure (no AD) — never SERVFAIL. All others
 * must validate (AD) with every signer.
 */
const CASES: [string, string, string, string, 'cover' | 'omit' | null][] = [
  [PARENT, 'SOA', 'NOERROR', 'apex', null],
  [PARENT, 'DNSKEY', 'NOERROR', 'DNSKEY', null],
  [`www.${PARENT}`, 'A', 'NOERROR', 'positive', null],
  [`www.${PARENT}`, 'TXT', 'NOERROR', 'NODATA', null],
  [`nx.${PARENT}`, 'A', 'NXDOMAIN', 'NXDOMAIN', 'cover'],
  [`deep.nx.${PARENT}`, 'AAAA', 'NXDOMAIN', 'NXDOMAIN two labels down', 'cover'],
  [`b.${PARENT}`, 'A', 'NOERROR', 'empty non-terminal', null],
  [`x.wild.${PARENT}`, 'A', 'NOERROR', 'wildcard answer', 'cover'],
  [`x.y.wild.${PARENT}`, 'TXT', 'NOERROR', 'wildcard answer, two labels deep', 'cover'],
  [`x.wild.${PARENT}`, 'MX', 'NOERROR', 'wildcard NODATA', 'cover'],
  [`alias.${PARENT}`, 'A', 'NOERROR', 'CNAME to a wildcard', 'cover'],
  [`secure.${PARENT}`, 'DS', 'NOERROR', 'DS at a secure delegation', null],
  [`www.${CHILD}`, 'A', 'NOERROR', 'below the secure delegation (referral with DS)', null],
  [`insecure.${PARENT}`, 'DS', 'NOERROR', 'no DS at an insecure delegation', 'omit'],
  [`ent.${PARENT}`, 'A', 'NOERROR', 'empty non-terminal above an insecure delegation only', 'omit'],
];

export interface Variant {
  label: string;
  tool: 'ldns' | 'bind';
  args: string[];
  /** NSEC3 opt-out: the flag on every NSEC3 (`flag`), or also insecure delegations left out (`omit`). */
  optOut?: 'flag' | 'omit';
}

export const VARIANTS: Variant[] = [
  { label: 'ldns-signzone NSEC', tool: 'ldns', args: [] },
  { label: 'ldns-signzone NSEC3 (salt, 2 iterations)', tool: 'ldns', args: ['-n', '-s', '2a7c', '-t', '2'] },
  { label: 'ldns-signzone NSEC3 opt-out', tool: 'ldns', args: ['-n', '-p'], optOut: 'flag' },
  { label: 'dnssec-signzone NSEC', tool: 'bind', args: [] },
  { label: 'dnssec-signzone NSEC3 opt-out', tool: 'bind', args: ['-3', '-', '-A'], optOut: 'omit' },
];

function sh(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** A key made by the signer's own tool; returns its base name (K<zone>+<alg>+<tag>) in `dir`. */
function keygen(tool: Variant['tool'], zone: string, dir: string): string {
  const origin = zone.replace(/\.$/, '');
  if (tool === 'ldns') return sh('ldns-keygen', ['-a', 'ECDSAP256SHA256', '-k', origin], dir).trim();
  return sh('dnssec-keygen', ['-q', '-K', dir, '-a', 'ECDSAP256SHA256', '-f', 'KSK', origin], dir).trim();
}

/** The DNSKEY RDATA (flags protocol algorithm key) from a key's .key file. */
function dnskeyOf(dir: string, base: string): string {
  const line = readFileSync(join(dir, `${base}.key`), 'utf8')
    .split('\n')
    .find((l) => !l.startsWith(';') && /\sDNSKEY\s/.test(l))!;
  return line
    .replace(/;.*$/, '')
    .split(/\sDNSKEY\s/)[1]!
    .trim();
}

/** The DS RDATA (SHA-256) for a key, computed by BIND's dnssec-dsfromkey. */
function dsOf(dir: string, base: string): string {
  const out = sh('dnssec-dsfromkey', ['-2', join(dir, `${base}.key`)], dir);
  return out.split(/\sDS\s/)[1]!.trim();
}

/** Signs `file` for `zone` with the variant's tool and key; returns the signed file's path. */
function signWith(v: Variant, zone: string, file: string, keyDir: string, key: string): string {
  const out = `${file}.signed`;
  const origin = zone.replace(/\.$/, '');
  if (v.tool === 'ldns') {
    sh('ldns-signzone', [...v.args, '-o', origin, '-f', out, file, join(keyDir, key)], keyDir);
  } else {
    sh(
      'dnssec-signzone',
      ['-S', '-z', '-K', keyDir, '-d', keyDir, '-o', origin, '-f', out, ...v.args, file],
      keyDir,
    );
  }
  return out;
}

/** Signs the zones with `v`, serves them from popdns, and checks them with Unbound, delv and Knot. */
export function testVariant(top: Test, v: Variant): void {
  top.test(`${v.label}: served as signed; Unbound, delv and Knot agree`, async (t) => {
    const tool = v.tool === 'ldns' ? 'ldns-signzone' : 'dnssec-signzone';
    const pkg = v.tool === 'ldns' ? 'ldnsutils' : 'bind9-utils';
    if (!needTool(t, tool, pkg) || !needTool(t, 'dnssec-dsfromkey', 'bind9-utils')) return;
    if (!needTool(t, 'unbound', 'unbound') || !needTool(t, 'dig', 'bind9-dnsutils')) return;
    const dir = tmpDir(t);
    const src = join(dir, 'src');
    const keyDir = join(dir, 'signer-keys');
    const zones = join(dir, 'zones');
    for (const d of [src, keyDir, zones, join(dir, 'popdns-keys')]) mkdirSync(d);

    const childKey = keygen(v.tool, CHILD, keyDir);
    const childFile = join(src, 'child.zone');
    writeFileSync(childFile, CHILD_ZONE);
    const parentKey = keygen(v.tool, PARENT, keyDir);
    const parentFile = join(src, 'parent.zone');
    writeFileSync(parentFile, parentZone(dsOf(keyDir, childKey)));
    writeFileSync(join(zones, `${INSECURE}zone`), INSECURE_ZONE);
    writeFileSync(
      join(zones, `${PARENT}zone`),
      readFileSync(signWith(v, PARENT, parentFile, keyDir, parentKey)),
    );
    writeFileSync(join(zones, `${CHILD}zone`), readFileSync(signWith(v, CHILD, childFile, keyDir, childKey)));

    const port = await freePort();
    const cfg = defaultConfig('test', 1);
    cfg.zones = zones;
    cfg.keys = join(dir, 'popdns-keys'); // empty: popdns has no keys, it serves what the signer made
    cfg.listen = [{ host: '127.0.0.1', port, family: 4 }];
    cfg.metrics = null;
    const server = new PopdnsServer(cfg, quiet);
    const r = server.loadZones();
    t.equal(r.failed, 0, 'all zones load');
    const parent = server.handler.zones.find(nameFromText(PARENT));
    t.ok(parent?.dnssec?.presigned, 'the parent is recognised as pre-signed');
    t.ok(server.handler.zones.find(nameFromText(CHILD))?.dnssec?.presigned, 'so is the child');
    t.notOk(server.handler.zones.find(nameFromText(INSECURE))?.dnssec, 'the insecure child is unsigned');
    const nsec3 = v.args.includes('-n') || v.args.includes('-3');
    t.equal(parent?.dnssec?.nsec3 != null, nsec3, nsec3 ? 'NSEC3 chain' : 'NSEC chain');
    // RFC 4035 §2.2: the delegation NS and glue are not signed; the DS is.
    const secure = parent && findNode(parent, nameFromText(`secure.${PARENT}`));
    t.notOk(secure?.rrsets.get(TYPE.NS)?.sigs, 'delegation NS: no RRSIG');
    t.ok(secure?.rrsets.get(TYPE.DS)?.sigs?.length, 'DS at the delegation: signed');
    const glue = parent && findNode(parent, nameFromText(`ns.secure.${PARENT}`));
    t.notOk(glue?.rrsets.get(TYPE.A)?.sigs, 'glue: no RRSIG');
    t.notOk(
      parent?.apex.rrsets.get(TYPE.RRSIG),
      'no RRSIG RRset of its own: each RRSIG is on the set it covers',
    );
    if (nsec3) {
      t.notOk(
        parent && [...parent.apex.children.values()].some((c) => c.rrsets.has(TYPE.NSEC3)),
        'NSEC3 owners are not names of the zone',
      );
    }

    // The negative control: break the signature of bad.presigned.test. A.
    const bad = parent && findNode(parent, nameFromText(`bad.${PARENT}`));
    const sig = bad?.rrsets.get(TYPE.A)?.sigs?.[0];
    t.ok(sig, 'bad A is signed');
    const broken = sig ? Uint8Array.from(sig) : null;
    if (broken && bad) {
      broken[broken.length - 5] = broken[broken.length - 5]! ^ 0xff;
      bad.rrsets.get(TYPE.A)!.sigs = [broken];
    }
    await server.listen();
    t.teardown(() => server.close());

    const anchorKey = dnskeyOf(keyDir, parentKey);
    const ub = await startUnbound(t, dir, port, [PARENT, CHILD, INSECURE], `${PARENT} DNSKEY ${anchorKey}`);
    /** Insecure by opt-out (see CASES) for this signer. */
    const optedOut = (span: 'cover' | 'omit' | null): boolean =>
      (span === 'cover' && v.optOut !== undefined) || (span === 'omit' && v.optOut === 'omit');
    for (const [name, type, rcode, what, span] of CASES) {
      const d = await dig(ub.port, name, type);
      t.equal(d.status, rcode, `unbound: ${what}: ${name} ${type} → ${rcode}`);
      const secure = !optedOut(span);
      if (d.status !== rcode || d.ad !== secure) t.comment(d.out, ub.output().slice(-3000));
      t.equal(
        d.ad,
        secure,
        `unbound: ${what}: ${name} ${type} ${secure ? 'validated (AD)' : 'insecure by opt-out'}`,
      );
    }
    const insecure = await dig(ub.port, `host.${INSECURE}`, 'A');
    t.equal(insecure.status, 'NOERROR', 'below the insecure delegation: answered, not SERVFAIL');
    t.notOk(insecure.ad, 'below the insecure delegation: insecure, so no AD');
    const bogus = await dig(ub.port, `bad.${PARENT}`, 'A');
    t.equal(bogus.status, 'SERVFAIL', 'negative control: the broken signature is bogus');

    if (needTool(t, 'delv', 'bind9-dnsutils')) {
      const delv = delvWith(dir, port, PARENT, anchorKey);
      const own = CASES.filter(([name]) => !name.endsWith(CHILD)); // delv asks one server for one zone
      // All at once: each delv is a process of its own that validates from the trust anchor down.
      const outs = await Promise.all(own.map(([name, type]) => delv(name, type)));
      for (const [i, [name, type, , what, span]] of own.entries()) {
        // Under opt-out, delv (BIND) and Unbound may judge a span differently; neither may fail it.
        const want = optedOut(span)
          ? /; (negative response, )?(unsigned answer|fully validated)/
          : /; (negative response, )?fully validated/;
        t.match(outs[i], want, `delv: ${what}: ${name} ${type}`);
      }
      t.notMatch(await delv(`bad.${PARENT}`, 'A'), /fully validated/, 'delv: the broken signature fails');
    }

    // Knot serves the same signed files as they are: every DO=1 answer must match popdns's.
    if (needTool(t, 'knotd', 'knot')) {
      const parsed = readdirSync(zones).map((f) => parseZoneFile(join(zones, f)));
      const knot = await startKnot(t, parsed);
      const all: [string, string][] = [
        ...CASES.map(([n, ty]): [string, string] => [n, ty]),
        [`host.${INSECURE}`, 'A'],
        [`www.secure.${PARENT}`, 'A'], // a referral from the parent
        [`www.x.ent.${PARENT}`, 'A'], // a referral to the insecure delegation under the ENT
        [`ns1.${PARENT}`, 'MX'],
        [`a.b.${PARENT}`, 'A'],
      ];
      const mismatches: string[] = [];
      // One TCP connection to each server, every question on it.
      // Query i has ID i; answers may come back in any order (RFC 7766 §6.2.1.1).
      const queries = all.map(([name, type], id) =>
        buildQuery(name, type, { id, edns: true, bufsize: 4096, dnssecOk: true }),
      );
      const byId = (answers: Buffer[]) => new Map(answers.map((a) => [a.readUInt16BE(0), a]));
      const [ourAnswers, knotAnswers] = (
        await Promise.all([tcpExchange(port, queries, 10000), tcpExchange(knot.port, queries, 10000)])
      ).map(byId);
      for (const [i, [name, type]] of all.entries()) {
        const ours = ourAnswers!.get(i);
        const theirs = knotAnswers!.get(i);
        const a = JSON.stringify(normalizeWire(ours!));
        const b = JSON.stringify(normalizeWire(theirs!));
        if (a !== b) mismatches.push(`${name} ${type}\n  popdns: ${a}\n    knot: ${b}`);
      }
      t.equal(
        mismatches.length,
        0,
        `${all.length} DO=1 answers compared with Knot:\n${mismatches.join('\n')}`,
      );
    }
  });
}
