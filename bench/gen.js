// @ts-check
/**
 * Bench data generators: a realistic zone (RFC 1035 and YAML), the query file with the mix
 * (60% A, 10% AAAA, 5% MX, 5% CNAME, 15% NXDOMAIN, 5% NODATA), and a big zone of N A records.
 * Deterministic (a fixed-seed PRNG) so runs are comparable. Output goes to bench/gen/ (not committed).
 */
import { mkdirSync, writeFileSync, createWriteStream } from 'node:fs';
import { join } from 'node:path';

export const ORIGIN = 'bench.test.';

function prng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return s / 4294967296;
  };
}

/** The realistic zone: `names` hosts with A, every 4th with AAAA, every 10th an MX, every 8th an alias. */
export function realisticZone(dir, names = 2000) {
  mkdirSync(dir, { recursive: true });
  const z = [
    `$ORIGIN ${ORIGIN}`,
    '$TTL 3600',
    '@ SOA ns1 hostmaster 1 7200 3600 1209600 300',
    '@ NS ns1',
    '@ NS ns2',
    'ns1 A 192.0.2.1',
    'ns2 A 192.0.2.2',
  ];
  for (let i = 0; i < names; i++) {
    const a = `192.0.${(i >> 8) & 255}.${i & 255}`;
    z.push(`host${i} A ${a}`);
    if (i % 4 === 0) z.push(`host${i} AAAA 2001:db8::${i.toString(16)}`);
    if (i % 10 === 0) z.push(`host${i} MX 10 host${(i + 1) % names}`);
    if (i % 8 === 0) z.push(`alias${i} CNAME host${i}`);
  }
  writeFileSync(join(dir, `${ORIGIN}zone`), `${z.join('\n')}\n`);
  return { names };
}

/** dnsperf query file with the realistic mix. */
export function queryFile(path, names = 2000, count = 100000) {
  const r = prng(42);
  const lines = [];
  for (let i = 0; i < count; i++) {
    const p = r();
    const n = Math.floor(r() * names);
    const h4 = n - (n % 4);
    const h10 = n - (n % 10);
    const h8 = n - (n % 8);
    if (p < 0.6) lines.push(`host${n}.${ORIGIN} A`);
    else if (p < 0.7) lines.push(`host${h4}.${ORIGIN} AAAA`);
    else if (p < 0.75) lines.push(`host${h10}.${ORIGIN} MX`);
    else if (p < 0.8) lines.push(`alias${h8}.${ORIGIN} A`);
    else if (p < 0.95) lines.push(`nx${n}.${ORIGIN} A`);
    else lines.push(`host${n}.${ORIGIN} TXT`);
  }
  writeFileSync(path, `${lines.join('\n')}\n`);
}

/** A zone of `n` A records, as RFC 1035 and (optionally) YAML, written as a stream. */
export async function bigZone(dir, n, yaml = true) {
  mkdirSync(dir, { recursive: true });
  const origin = 'big.test.';
  const head = `$ORIGIN ${origin}\n$TTL 3600\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n`;
  const write = (file, first, line) =>
    new Promise((resolve, reject) => {
      const s = createWriteStream(file);
      s.on('error', reject);
      s.write(first);
      let i = 0;
      const pump = () => {
        let ok = true;
        while (i < n && ok) {
          ok = s.write(line(i));
          i++;
        }
        if (i < n) s.once('drain', pump);
        else s.end(resolve);
      };
      pump();
    });
  const ip = (i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  await write(join(dir, `${origin}zone`), head, (i) => `h${i} A ${ip(i)}\n`);
  if (yaml) {
    const ydir = join(dir, 'yaml');
    mkdirSync(ydir, { recursive: true });
    await write(
      join(ydir, `${origin}yaml`),
      'ttl: 3600\nsoa: { mname: ns1, serial: 1, minimum: 300 }\nrecords:\n  "@": { NS: ns1 }\n  ns1: { A: 192.0.2.1 }\n',
      (i) => `  h${i}: { A: ${ip(i)} }\n`,
    );
  }
  return origin;
}
