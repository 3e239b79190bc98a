/**
 * Signing on threads (dnssec/signpool.ts, signZoneAsync): the zone signed on a pool of two threads
 * holds exactly what the single-threaded signer makes (every record, every RRSIG field; only the
 * ECDSA signature octets differ, RFC 6605 §4 signatures being randomised), and every RRSIG verifies
 * with node:crypto against the DNSKEY over a canonical form built here from RFC 4034 §3.1.8.1 and
 * §6.2/§6.3, not by the signer's code. A failing signing thread fails the signing with
 * POPDNS_E_SIGN. NSEC and NSEC3.
 */
import { createPublicKey, verify } from 'node:crypto';
import t from 'tap';
import { ALGORITHM, type DnssecKey, generateKey } from '../../src/dnssec/keys.js';
import { SignPool } from '../../src/dnssec/signpool.js';
import {
  makePolicy,
  SignatureCache,
  signedZoneText,
  signZone,
  signZoneAsync,
} from '../../src/dnssec/signzone.js';
import { TYPE } from '../../src/wire/constants.js';
import { nameFromText } from '../../src/wire/name.js';
import { parseMasterFile } from '../../src/zone/masterfile.js';
import { buildZone, type RRset, walk, type Zone } from '../../src/zone/zone.js';

const ORIGIN = nameFromText('pool.test.');
const NOW = Math.floor(Date.now() / 1000);
/** Small (the machine is shared); `minPooled: 0` below makes the pool take it anyway. */
const NAMES = 300;

/** A lower-case zone (so canonical RDATA = wire RDATA for the name-holding types). */
function zone(): Zone {
  const lines = [
    '$ORIGIN pool.test.',
    '$TTL 3600',
    '@ SOA ns1 hostmaster 1 7200 3600 1209600 300',
    '@ NS ns1',
    'ns1 A 192.0.2.1',
    '@ MX 10 mail',
    'mail A 192.0.2.2',
    'mail A 192.0.2.3',
    'sub NS ns.sub',
    'ns.sub A 192.0.2.53',
  ];
  for (let i = 0; i < NAMES; i++) lines.push(`h${i} A 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
  const parsed = parseMasterFile(`${lines.join('\n')}\n`, { file: 'pool.test.zone', origin: ORIGIN });
  const built = buildZone(parsed, { now: NOW });
  if (!built.zone) throw new Error(built.diagnostics.map((d) => d.message).join('; '));
  return built.zone;
}

/** Every signed RRset of the zone (trie and NSEC3 chain). */
function signedSets(z: Zone): RRset[] {
  const out: RRset[] = [];
  walk(z.apex, (n) => {
    for (const s of n.rrsets.values()) if (s.sigs && s.sigs.length > 0) out.push(s);
  });
  for (const { nsec3 } of z.dnssec?.nsec3?.chain ?? []) out.push(nsec3);
  return out;
}

const lower = (b: Uint8Array): Buffer => Buffer.from(b.map((c) => (c >= 0x41 && c <= 0x5a ? c | 0x20 : c)));

/** RFC 4034 §3.1.8.1: RRSIG RDATA minus the signature || the RRs in canonical form and order. */
function signedData(set: RRset, rrsig: Uint8Array, headLength: number): Buffer {
  const owner = lower(set.owner);
  const ttl = Buffer.from(rrsig.subarray(4, 8)); // original TTL
  const rdatas = [...set.rdatas].map((r) => Buffer.from(r)).sort(Buffer.compare);
  const parts: Buffer[] = [Buffer.from(rrsig.subarray(0, headLength))];
  for (const rd of rdatas) {
    const fixed = Buffer.alloc(10);
    fixed.writeUInt16BE(set.type, 0);
    fixed.writeUInt16BE(1, 2);
    ttl.copy(fixed, 4);
    fixed.writeUInt16BE(rd.length, 8);
    parts.push(owner, fixed, rd);
  }
  return Buffer.concat(parts);
}

/** The P-256 public key of an ECDSAP256SHA256 DNSKEY RDATA (RFC 6605 §4: x || y after 4 octets). */
function publicKey(dnskey: Uint8Array): ReturnType<typeof createPublicKey> {
  const xy = Buffer.from(dnskey.subarray(4));
  return createPublicKey({
    key: {
      kty: 'EC',
      crv: 'P-256',
      x: xy.subarray(0, 32).toString('base64url'),
      y: xy.subarray(32).toString('base64url'),
    },
    format: 'jwk',
  });
}

/** Checks every RRSIG of the zone; returns how many verified and how many did not. */
function verifyAll(z: Zone, key: DnssecKey): { good: number; bad: number } {
  const pub = publicKey(key.dnskey);
  const head = 18 + ORIGIN.length;
  let good = 0;
  let bad = 0;
  for (const set of signedSets(z)) {
    for (const sig of set.sigs!) {
      const ok =
        Buffer.from(sig.subarray(0, 2)).readUInt16BE(0) === set.type &&
        Buffer.from(sig.subarray(16, 18)).readUInt16BE(0) === key.tag &&
        verify(
          'sha256',
          signedData(set, sig, head),
          { key: pub, dsaEncoding: 'ieee-p1363' },
          sig.subarray(head),
        );
      if (ok) good++;
      else bad++;
    }
  }
  return { good, bad };
}

/** The signed zone's text with the signature field of each RRSIG line cut off. */
const withoutSignatures = (z: Zone): string =>
  signedZoneText(z).replace(/( RRSIG \S+ \d+ \d+ \d+ \d+ \d+ \d+ \S+) \S+$/gm, '$1');

for (const denial of ['nsec', 'nsec3'] as const) {
  t.test(`${denial}: two threads make the single-threaded zone, and every RRSIG verifies`, async (tt) => {
    const key = generateKey(ORIGIN, ALGORITHM.ECDSAP256SHA256, 'csk');
    // No jitter: every expiration is the same, so the RRSIG heads of both runs must be equal.
    const policy = makePolicy({ denial, jitter: 0 });
    const single = zone();
    const r1 = signZone(single, [key], policy, { now: NOW });
    const pool = new SignPool(2);
    tt.teardown(() => pool.close());
    const pooled = zone();
    const r2 = await signZoneAsync(pooled, [key], policy, { now: NOW, pool, minPooled: 0 });
    tt.same(r2, { ...r1, pooled: true }, 'the same counts, made on the threads');
    tt.ok(r2.signatures > NAMES, `${r2.signatures} signatures`);
    tt.equal(withoutSignatures(pooled), withoutSignatures(single), 'the same records and RRSIG fields');
    tt.not(signedZoneText(pooled), signedZoneText(single), 'ECDSA signatures differ (randomised)');
    tt.same(verifyAll(pooled, key), { good: r2.signatures, bad: 0 }, 'every pooled RRSIG verifies');
    tt.same(verifyAll(single, key), { good: r1.signatures, bad: 0 }, 'every single-thread RRSIG verifies');
    // The negative control: a signature with one bit flipped no longer verifies.
    const a = signedSets(pooled).find((s) => s.type === TYPE.A)!;
    a.sigs![0]![18 + ORIGIN.length + 5]! ^= 1;
    tt.equal(verifyAll(pooled, key).bad, 1, 'a damaged signature fails');
  });
}

t.test('the cache works the same on threads: a second signing reuses every signature', async (tt) => {
  const key = generateKey(ORIGIN, ALGORITHM.ECDSAP256SHA256, 'csk');
  const policy = makePolicy({});
  const pool = new SignPool(2);
  tt.teardown(() => pool.close());
  const cache = new SignatureCache();
  const first = await signZoneAsync(zone(), [key], policy, { now: NOW, cache, pool, minPooled: 0 });
  tt.equal(first.reused, 0);
  tt.equal(cache.size, first.signatures, 'every new signature kept');
  const again = zone();
  const second = await signZoneAsync(again, [key], policy, { now: NOW + 60, cache, pool, minPooled: 0 });
  tt.same(second, { signatures: 0, reused: first.signatures, pooled: true });
  tt.same(verifyAll(again, key), { good: first.signatures, bad: 0 });
});

for (const fault of ['throw', 'exit'] as const) {
  t.test(`a signing thread that fails (${fault}) fails the signing with POPDNS_E_SIGN`, async (tt) => {
    const key = generateKey(ORIGIN, ALGORITHM.ECDSAP256SHA256, 'csk');
    const pool = new SignPool(2, { fault });
    tt.teardown(() => pool.close());
    const cache = new SignatureCache();
    await tt.rejects(
      signZoneAsync(zone(), [key], makePolicy({}), { now: NOW, cache, pool, minPooled: 0 }),
      /a signing thread (failed|exited).*\[POPDNS_E_SIGN\]/,
    );
    tt.equal(cache.size, 0, 'nothing of the failed run kept');
  });
}

t.test('the pool refuses a bad size, and a closed pool refuses work', async (tt) => {
  tt.throws(() => new SignPool(0), /POPDNS_E_SIGN/);
  const pool = new SignPool(1);
  await pool.close();
  const key = generateKey(ORIGIN, ALGORITHM.ECDSAP256SHA256, 'csk');
  await tt.rejects(
    signZoneAsync(zone(), [key], makePolicy({}), { now: NOW, pool, minPooled: 0 }),
    /signing pool is closed.*\[POPDNS_E_SIGN\]/,
  );
});
