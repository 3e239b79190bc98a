/**
 * The table of RR types: for every data type popdns reads by mnemonic, the layout of its RDATA as a
 * list of typed fields, and the per-type rules that follow from the RFCs. Like Knot's descriptor table
 * and miekg/dns's generated tables, this one table drives the presentation parser and printer, the
 * wire validator, the YAML field names, name compression in responses, canonical lower-casing for
 * DNSSEC and duplicate detection. A type number missing here is kept as opaque RFC 3597 data.
 */
import { TYPE } from './constants.js';

/** How one RDATA field is written in presentation format and on the wire. */
export type Kind =
  /** Unsigned integers in decimal. */
  | 'u8'
  | 'u16'
  | 'u32'
  /** A 32-bit number of seconds; BIND units (`1h30m`) accepted. */
  | 'period'
  /** A 32-bit time: `YYYYMMDDHHmmSS` or seconds since 1970 (RFC 4034 §3.2). */
  | 'time'
  /** A DNSSEC algorithm: number or mnemonic (RFC 4034 §2.2, §3.2, §5.3; RFC 4398 §2.2). */
  | 'alg'
  /** A CERT type: number or mnemonic (RFC 4398 §2.2). */
  | 'certtype'
  /** A 16-bit RR type: mnemonic or `TYPEnnn`. */
  | 'type'
  /** A domain name, uncompressed on the wire. */
  | 'name'
  | 'ipv4'
  | 'ipv6'
  /** One character-string (RFC 1035 §3.3). */
  | 'cstr'
  /** One or more character-strings up to the end. */
  | 'cstrs'
  /** Hex up to the end (whitespace allowed inside); `-` or nothing is empty when optional. */
  | 'hex'
  /** Base64 up to the end (whitespace allowed inside). */
  | 'base64'
  /** NSEC3 salt: length octet + hex, `-` for none (RFC 5155 §3.3). */
  | 'salt'
  /** NSEC3 next hashed owner: length octet + base32hex (RFC 5155 §3.3). */
  | 'b32hex'
  /** NSEC/NSEC3/CSYNC type bitmap (RFC 4034 §4.1.2), possibly empty. */
  | 'bitmap'
  /** NXT type bitmap, types 1-127 (RFC 2535 §5.2). */
  | 'nxtbitmap'
  | 'caatag'
  | 'caavalue'
  | 'svcparams'
  /** EUI-48 / EUI-64 as hex pairs joined by `-` (RFC 7043 §3.2, §4.2). */
  | 'eui48'
  | 'eui64'
  /** A 64-bit ILNP locator or node id: four groups of four hex digits joined by `:` (RFC 6742 §2.3). */
  | 'ilnp64'
  /** The whole RDATA of LOC (RFC 1876 §3). */
  | 'loc'
  /** The whole RDATA of APL (RFC 3123 §5). */
  | 'apl'
  /** WKS protocol and service bitmap (RFC 1035 §3.4.2). */
  | 'wks'
  /** The whole RDATA of A6 (RFC 2874 §3.1.1). */
  | 'a6'
  /** NSAP address: `0x` + hex, dots allowed (RFC 1706 §5). */
  | 'nsap'
  /** IPSECKEY gateway type, algorithm, gateway, key (RFC 4025 §3). */
  | 'ipseckey'
  /** HIP algorithm, HIT, public key, rendezvous servers (RFC 8005 §5). */
  | 'hip'
  /** AMTRELAY D-bit, type and relay (RFC 8777 §4.3). */
  | 'amtrelay'
  /** URI target: one quoted string filling the rest of the RDATA (RFC 7553 §4.4). */
  | 'uri';

export interface Field {
  /** The field's name (also its YAML key). */
  name: string;
  kind: Kind;
  /** May be absent at the end of the RDATA (ISDN subaddress, IPSECKEY key, an empty hex field). */
  optional?: true;
  /** Smallest length in octets (ZONEMD digest: 12, RFC 8976 §2.2.4). */
  min?: number;
  /** A character-string's text must match this (checked when reading presentation format). */
  pattern?: { re: RegExp; what: string };
}

export interface RRTypeInfo {
  type: number;
  fields: readonly Field[];
  /** Names in the RDATA may be compressed in responses: RFC 1035 types only (RFC 3597 §4). */
  compress?: true;
  /** Names in the RDATA are lower-cased in the canonical form (RFC 4034 §6.2 less NSEC, RFC 6840 §5.1). */
  lower?: true;
  /** YAML gets the presentation string only, no structured mapping. */
  textOnly?: true;
  /** The RDATA is character-strings only (TXT-like): YAML takes a plain string as the text itself. */
  text?: true;
}

const f = (name: string, kind: Kind, extra: Partial<Field> = {}): Field => ({ name, kind, ...extra });
const REAL = { re: /^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)$/, what: 'a real number' };

const name1 = [f('target', 'name')];
const dsFields = [f('keytag', 'u16'), f('algorithm', 'alg'), f('digesttype', 'u8'), f('digest', 'hex')];
const keyFields = [f('flags', 'u16'), f('protocol', 'u8'), f('algorithm', 'alg'), f('key', 'base64')];
const sigFields = [
  f('covered', 'type'),
  f('algorithm', 'alg'),
  f('labels', 'u8'),
  f('ttl', 'u32'),
  f('expiration', 'time'),
  f('inception', 'time'),
  f('keytag', 'u16'),
  f('signer', 'name'),
  f('signature', 'base64'),
];
const tlsaFields = [f('usage', 'u8'), f('selector', 'u8'), f('matchingtype', 'u8'), f('data', 'hex')];
const strings = [f('strings', 'cstrs')];
const prefName = (n: string): Field[] => [f('preference', 'u16'), f(n, 'name')];
const svcb = [f('priority', 'u16'), f('target', 'name'), f('params', 'svcparams')];

/** Every data type popdns knows, by number. */
export const RRTYPES: ReadonlyMap<number, RRTypeInfo> = new Map(
  (
    [
      { type: TYPE.A, fields: [f('address', 'ipv4')] },
      { type: TYPE.NS, fields: name1, compress: true, lower: true },
      { type: TYPE.MD, fields: name1, compress: true, lower: true },
      { type: TYPE.MF, fields: name1, compress: true, lower: true },
      { type: TYPE.CNAME, fields: name1, compress: true, lower: true },
      {
        type: TYPE.SOA,
        fields: [
          f('mname', 'name'),
          f('rname', 'name'),
          f('serial', 'u32'),
          f('refresh', 'period'),
          f('retry', 'period'),
          f('expire', 'period'),
          f('minimum', 'period'),
        ],
        compress: true,
        lower: true,
      },
      { type: TYPE.MB, fields: name1, compress: true, lower: true },
      { type: TYPE.MG, fields: name1, compress: true, lower: true },
      { type: TYPE.MR, fields: name1, compress: true, lower: true },
      { type: TYPE.WKS, fields: [f('address', 'ipv4'), f('services', 'wks')], textOnly: true },
      { type: TYPE.PTR, fields: name1, compress: true, lower: true },
      { type: TYPE.HINFO, fields: [f('cpu', 'cstr'), f('os', 'cstr')] },
      {
        type: TYPE.MINFO,
        fields: [f('rmailbx', 'name'), f('emailbx', 'name')],
        compress: true,
        lower: true,
      },
      { type: TYPE.MX, fields: prefName('exchange'), compress: true, lower: true },
      { type: TYPE.TXT, fields: strings, text: true },
      { type: TYPE.RP, fields: [f('mbox', 'name'), f('txt', 'name')], lower: true },
      { type: TYPE.AFSDB, fields: [f('subtype', 'u16'), f('hostname', 'name')], lower: true },
      {
        type: TYPE.X25,
        // RFC 1183 §3.1: an X.121 address, decimal digits (BIND wants at least four).
        fields: [
          f('address', 'cstr', { pattern: { re: /^[0-9]{4,}$/, what: 'at least four decimal digits' } }),
        ],
      },
      { type: TYPE.ISDN, fields: [f('address', 'cstr'), f('subaddress', 'cstr', { optional: true })] },
      { type: TYPE.RT, fields: prefName('host'), lower: true },
      { type: TYPE.NSAP, fields: [f('address', 'nsap')] },
      { type: TYPE['NSAP-PTR'], fields: name1 },
      { type: TYPE.SIG, fields: sigFields, lower: true, textOnly: true },
      { type: TYPE.KEY, fields: keyFields },
      {
        type: TYPE.PX,
        fields: [f('preference', 'u16'), f('map822', 'name'), f('mapx400', 'name')],
        lower: true,
      },
      {
        type: TYPE.GPOS,
        // RFC 1712 §3: each a real number as text.
        fields: ['longitude', 'latitude', 'altitude'].map((n) => f(n, 'cstr', { pattern: REAL })),
      },
      { type: TYPE.AAAA, fields: [f('address', 'ipv6')] },
      { type: TYPE.LOC, fields: [f('location', 'loc')], textOnly: true },
      { type: TYPE.NXT, fields: [f('next', 'name'), f('types', 'nxtbitmap')], lower: true, textOnly: true },
      {
        type: TYPE.SRV,
        fields: [f('priority', 'u16'), f('weight', 'u16'), f('port', 'u16'), f('target', 'name')],
        lower: true,
      },
      {
        type: TYPE.NAPTR,
        fields: [
          f('order', 'u16'),
          f('preference', 'u16'),
          f('flags', 'cstr'),
          f('services', 'cstr'),
          f('regexp', 'cstr'),
          f('replacement', 'name'),
        ],
        lower: true,
      },
      { type: TYPE.KX, fields: prefName('exchanger'), lower: true },
      {
        type: TYPE.CERT,
        fields: [f('certtype', 'certtype'), f('keytag', 'u16'), f('algorithm', 'alg'), f('cert', 'base64')],
      },
      { type: TYPE.A6, fields: [f('a6', 'a6')], lower: true, textOnly: true },
      { type: TYPE.DNAME, fields: name1, lower: true },
      {
        type: TYPE.SINK,
        fields: [
          f('meaning', 'u8'),
          f('coding', 'u8'),
          f('subcoding', 'u8'),
          f('data', 'base64', { optional: true }),
        ],
      },
      { type: TYPE.APL, fields: [f('prefixes', 'apl')], textOnly: true },
      { type: TYPE.DS, fields: dsFields },
      { type: TYPE.SSHFP, fields: [f('algorithm', 'u8'), f('fptype', 'u8'), f('fingerprint', 'hex')] },
      {
        type: TYPE.IPSECKEY,
        fields: [f('precedence', 'u8'), f('gateway', 'ipseckey')],
        textOnly: true,
      },
      { type: TYPE.RRSIG, fields: sigFields, lower: true, textOnly: true },
      { type: TYPE.NSEC, fields: [f('next', 'name'), f('types', 'bitmap')], textOnly: true },
      { type: TYPE.DNSKEY, fields: keyFields },
      { type: TYPE.DHCID, fields: [f('data', 'base64')] },
      {
        type: TYPE.NSEC3,
        fields: [
          f('hash', 'u8'),
          f('flags', 'u8'),
          f('iterations', 'u16'),
          f('salt', 'salt'),
          f('next', 'b32hex'),
          f('types', 'bitmap'),
        ],
        textOnly: true,
      },
      {
        type: TYPE.NSEC3PARAM,
        fields: [f('hash', 'u8'), f('flags', 'u8'), f('iterations', 'u16'), f('salt', 'salt')],
      },
      { type: TYPE.TLSA, fields: tlsaFields },
      { type: TYPE.SMIMEA, fields: tlsaFields },
      { type: TYPE.HIP, fields: [f('hip', 'hip')], textOnly: true },
      { type: TYPE.NINFO, fields: strings, text: true },
      { type: TYPE.RKEY, fields: keyFields },
      { type: TYPE.TALINK, fields: [f('previous', 'name'), f('next', 'name')] },
      { type: TYPE.CDS, fields: dsFields },
      { type: TYPE.CDNSKEY, fields: keyFields },
      { type: TYPE.OPENPGPKEY, fields: [f('key', 'base64')] },
      {
        type: TYPE.CSYNC,
        fields: [f('serial', 'u32'), f('flags', 'u16'), f('types', 'bitmap')],
        textOnly: true,
      },
      {
        type: TYPE.ZONEMD,
        fields: [f('serial', 'u32'), f('scheme', 'u8'), f('hashalg', 'u8'), f('digest', 'hex', { min: 12 })],
      },
      { type: TYPE.SVCB, fields: svcb, textOnly: true },
      { type: TYPE.HTTPS, fields: svcb, textOnly: true },
      { type: TYPE.SPF, fields: strings, text: true },
      { type: TYPE.NID, fields: [f('preference', 'u16'), f('nodeid', 'ilnp64')] },
      { type: TYPE.L32, fields: [f('preference', 'u16'), f('locator', 'ipv4')] },
      { type: TYPE.L64, fields: [f('preference', 'u16'), f('locator', 'ilnp64')] },
      { type: TYPE.LP, fields: [f('preference', 'u16'), f('fqdn', 'name')] },
      { type: TYPE.EUI48, fields: [f('address', 'eui48')] },
      { type: TYPE.EUI64, fields: [f('address', 'eui64')] },
      { type: TYPE.URI, fields: [f('priority', 'u16'), f('weight', 'u16'), f('target', 'uri')] },
      { type: TYPE.CAA, fields: [f('flags', 'u8'), f('tag', 'caatag'), f('value', 'caavalue')] },
      { type: TYPE.AVC, fields: strings, text: true },
      {
        type: TYPE.DOA,
        fields: [
          f('enterprise', 'u32'),
          f('type', 'u32'),
          f('location', 'u8'),
          f('mediatype', 'cstr'),
          f('data', 'base64', { optional: true }),
        ],
      },
      { type: TYPE.AMTRELAY, fields: [f('precedence', 'u8'), f('relay', 'amtrelay')], textOnly: true },
      { type: TYPE.RESINFO, fields: strings, text: true },
      { type: TYPE.TA, fields: dsFields },
      { type: TYPE.DLV, fields: dsFields },
    ] satisfies RRTypeInfo[]
  ).map((d): [number, RRTypeInfo] => [d.type, d]),
);

/** DNSSEC algorithm mnemonics (RFC 4034 Appendix A.1, IANA "DNS Security Algorithm Numbers"). */
export const ALGORITHMS: ReadonlyMap<string, number> = new Map([
  ['RSAMD5', 1],
  ['DH', 2],
  ['DSA', 3],
  ['RSASHA1', 5],
  ['DSA-NSEC3-SHA1', 6],
  ['RSASHA1-NSEC3-SHA1', 7],
  ['RSASHA256', 8],
  ['RSASHA512', 10],
  ['ECC-GOST', 12],
  ['ECDSAP256SHA256', 13],
  ['ECDSAP384SHA384', 14],
  ['ED25519', 15],
  ['ED448', 16],
  ['INDIRECT', 252],
  ['PRIVATEDNS', 253],
  ['PRIVATEOID', 254],
]);

/** CERT type mnemonics (RFC 4398 §2.2). */
export const CERT_TYPES: ReadonlyMap<string, number> = new Map([
  ['PKIX', 1],
  ['SPKI', 2],
  ['PGP', 3],
  ['IPKIX', 4],
  ['ISPKI', 5],
  ['IPGP', 6],
  ['ACPKIX', 7],
  ['IACPKIX', 8],
  ['URI', 253],
  ['OID', 254],
]);

/**
 * SvcParamKeys by name (IANA "Service Parameter Keys (SvcParamKeys)": RFC 9460 §14.3.2, RFC 9461 §5,
 * RFC 9540 §4, draft-ietf-tls-key-share-prediction). Others are written `keyNNNNN`; 65535 is invalid.
 */
export const SVC_KEYS: readonly string[] = [
  'mandatory',
  'alpn',
  'no-default-alpn',
  'port',
  'ipv4hint',
  'ech',
  'ipv6hint',
  'dohpath',
  'ohttp',
  'tls-supported-groups',
];
