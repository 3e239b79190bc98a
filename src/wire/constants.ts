/** Numbers of the DNS protocol: types, classes, rcodes, opcodes, EDNS options. */

export const TYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  HINFO: 13,
  MX: 15,
  TXT: 16,
  RP: 17,
  AAAA: 28,
  SRV: 33,
  NAPTR: 35,
  DNAME: 39,
  OPT: 41,
  DS: 43,
  SSHFP: 44,
  RRSIG: 46,
  NSEC: 47,
  DNSKEY: 48,
  NSEC3: 50,
  NSEC3PARAM: 51,
  TLSA: 52,
  CDS: 59,
  CDNSKEY: 60,
  SVCB: 64,
  HTTPS: 65,
  TSIG: 250,
  IXFR: 251,
  AXFR: 252,
  ANY: 255,
  CAA: 257,
} as const;

export type TypeName = keyof typeof TYPE;

const typeNames = new Map<number, string>(Object.entries(TYPE).map(([k, v]) => [v, k]));

/** Mnemonic for a type number, or RFC 3597 `TYPEnnn`. */
export function typeToText(type: number): string {
  return typeNames.get(type) ?? `TYPE${type}`;
}

/** Type number for a mnemonic or `TYPEnnn` (case-insensitive); undefined when unknown. */
export function typeFromText(text: string): number | undefined {
  const up = text.toUpperCase();
  const known = (TYPE as Record<string, number>)[up];
  if (known !== undefined) return known;
  const m = /^TYPE([0-9]{1,5})$/.exec(up);
  if (m) {
    const n = Number(m[1]);
    if (n <= 0xffff) return n;
  }
  return undefined;
}

/** Meta and question-only types that cannot appear as zone data. */
export function isMetaType(type: number): boolean {
  return type === TYPE.OPT || (type >= 128 && type <= 255) || type === 0;
}

export const CLASS = { IN: 1, CH: 3, HS: 4, NONE: 254, ANY: 255 } as const;

export function classFromText(text: string): number | undefined {
  const up = text.toUpperCase();
  if (up === 'IN') return CLASS.IN;
  if (up === 'CH' || up === 'CHAOS') return CLASS.CH;
  if (up === 'HS') return CLASS.HS;
  const m = /^CLASS([0-9]{1,5})$/.exec(up);
  if (m) {
    const n = Number(m[1]);
    if (n <= 0xffff) return n;
  }
  return undefined;
}

export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  YXDOMAIN: 6,
  NOTAUTH: 9,
  BADVERS: 16,
} as const;

const rcodeNames = new Map<number, string>(Object.entries(RCODE).map(([k, v]) => [v, k]));
export function rcodeToText(rcode: number): string {
  return rcodeNames.get(rcode) ?? `RCODE${rcode}`;
}

export const OPCODE = { QUERY: 0, IQUERY: 1, STATUS: 2, NOTIFY: 4, UPDATE: 5 } as const;

export const EDNS_OPTION = { NSID: 3, COOKIE: 10, PADDING: 12 } as const;

/** Largest TTL allowed (RFC 2181 §8). */
export const MAX_TTL = 0x7fffffff;
