/** Numbers of the DNS protocol: types, classes, rcodes, opcodes, EDNS options. */

/**
 * Type numbers by mnemonic (IANA "Resource Record (RR) TYPEs"): every data type popdns reads by name
 * (their RDATA layouts are the table in rrtypes.ts) plus the meta and question types. A mnemonic not
 * listed here is not a type: RFC 3597 `TYPEnnn` names the others.
 */
export const TYPE = {
  A: 1,
  NS: 2,
  MD: 3,
  MF: 4,
  CNAME: 5,
  SOA: 6,
  MB: 7,
  MG: 8,
  MR: 9,
  WKS: 11,
  PTR: 12,
  HINFO: 13,
  MINFO: 14,
  MX: 15,
  TXT: 16,
  RP: 17,
  AFSDB: 18,
  X25: 19,
  ISDN: 20,
  RT: 21,
  NSAP: 22,
  'NSAP-PTR': 23,
  SIG: 24,
  KEY: 25,
  PX: 26,
  GPOS: 27,
  AAAA: 28,
  LOC: 29,
  NXT: 30,
  SRV: 33,
  NAPTR: 35,
  KX: 36,
  CERT: 37,
  A6: 38,
  DNAME: 39,
  SINK: 40,
  OPT: 41,
  APL: 42,
  DS: 43,
  SSHFP: 44,
  IPSECKEY: 45,
  RRSIG: 46,
  NSEC: 47,
  DNSKEY: 48,
  DHCID: 49,
  NSEC3: 50,
  NSEC3PARAM: 51,
  TLSA: 52,
  SMIMEA: 53,
  HIP: 55,
  NINFO: 56,
  RKEY: 57,
  TALINK: 58,
  CDS: 59,
  CDNSKEY: 60,
  OPENPGPKEY: 61,
  CSYNC: 62,
  ZONEMD: 63,
  SVCB: 64,
  HTTPS: 65,
  SPF: 99,
  NID: 104,
  L32: 105,
  L64: 106,
  LP: 107,
  EUI48: 108,
  EUI64: 109,
  TKEY: 249,
  TSIG: 250,
  IXFR: 251,
  AXFR: 252,
  MAILB: 253,
  MAILA: 254,
  ANY: 255,
  URI: 256,
  CAA: 257,
  AVC: 258,
  DOA: 259,
  AMTRELAY: 260,
  RESINFO: 261,
  TA: 32768,
  DLV: 32769,
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

/** Meta and question-only types that cannot appear as zone data (OPT, TKEY, TSIG, IXFR, AXFR, MAILB, MAILA, ANY, 128-255, 0). */
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
  BADCOOKIE: 23,
} as const;

const rcodeNames = new Map<number, string>(Object.entries(RCODE).map(([k, v]) => [v, k]));
export function rcodeToText(rcode: number): string {
  return rcodeNames.get(rcode) ?? `RCODE${rcode}`;
}

export const OPCODE = { QUERY: 0, IQUERY: 1, STATUS: 2, NOTIFY: 4, UPDATE: 5 } as const;

export const EDNS_OPTION = { NSID: 3, COOKIE: 10, PADDING: 12 } as const;

/** Largest TTL allowed (RFC 2181 §8). */
export const MAX_TTL = 0x7fffffff;
