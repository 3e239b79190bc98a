/**
 * The primary side's config: `data-dir`, `tsig-keys` and `transfer` (allow, notify). Parsed from the
 * YAML nodes handed over by src/server/config.ts, so errors carry the file's line:col. The secondary
 * side (`secondaries`, `catalogs`) has its own parse function.
 */
import { BlockList, isIP } from 'node:net';
import { isMap, isScalar, isSeq, type Node } from 'yaml';
import {
  TSIG_ALGORITHMS,
  tsigAlgorithmFromText,
  tsigKeyName,
  type TsigKey,
  type TsigKeyring,
} from '../wire/tsig.js';

/** One `transfer.allow` entry: clients in `from` may transfer; with `key`, only requests signed with it. */
export interface TransferAllow {
  /** As written, for logs. */
  from: string;
  network: string;
  prefix: number;
  family: 4 | 6;
  /** Keyring name (lower-case, trailing dot), or null: unsigned requests allowed too. */
  key: string | null;
}

/** One `transfer.notify` target. */
export interface NotifyTarget {
  /** As written ("192.0.2.10:53"). */
  to: string;
  host: string;
  port: number;
  key: string | null;
}

export interface TransferConfig {
  allow: TransferAllow[];
  notify: NotifyTarget[];
}

/** The keys this part of the config adds to ServerConfig. */
export interface PrimaryConfig {
  /** Transferred zones, IXFR history and journals live here; created if missing. Default ./data. */
  dataDir: string;
  tsigKeys: TsigKeyring;
  transfer: TransferConfig;
}

export const PRIMARY_DEFAULTS: PrimaryConfig = {
  dataDir: 'data',
  tsigKeys: new Map(),
  transfer: { allow: [], notify: [] },
};

export const PRIMARY_KEYS = ['data-dir', 'tsig-keys', 'transfer'] as const;

/** Reports an error at a YAML node and does not return (the caller's `fail`). */
export type Fail = (node: Node | null | undefined, msg: string) => never;

/**
 * Parses one of PRIMARY_KEYS into `cfg`. `tsig-keys` must come before the `transfer` entries that name
 * them; key references are checked by checkPrimaryConfig after the whole file is read.
 */
export function parsePrimaryKey(
  key: (typeof PRIMARY_KEYS)[number],
  v: Node,
  cfg: PrimaryConfig,
  fail: Fail,
): void {
  const str = (n: Node, what: string): string => {
    if (!isScalar(n) || (typeof n.value !== 'string' && typeof n.value !== 'number'))
      fail(n, `${what} must be a string`);
    return String((n as { value: unknown }).value);
  };
  const entries = (n: Node, what: string): Node[] => {
    if (isScalar(n) && n.value === null) return [];
    if (!isSeq(n)) return fail(n, `${what} is a list`);
    return n.items as Node[];
  };
  const fields = (n: Node, what: string, known: string[]): Map<string, Node> => {
    if (!isMap(n)) return fail(n, `each of ${what} is a mapping like { ${known.join(': …, ')}: … }`);
    const out = new Map<string, Node>();
    for (const pair of n.items) {
      const k = isScalar(pair.key) ? String(pair.key.value) : '';
      if (!known.includes(k))
        fail(pair.key as Node, `unknown ${what} setting "${k}" (known: ${known.join(', ')})`);
      out.set(k, pair.value as Node);
    }
    return out;
  };
  switch (key) {
    case 'data-dir':
      cfg.dataDir = str(v, 'data-dir');
      break;
    case 'tsig-keys': {
      const ring = new Map<string, TsigKey>();
      if (!(isScalar(v) && v.value === null)) {
        if (!isMap(v)) fail(v, 'tsig-keys is a mapping of key names to { algorithm, secret }');
        for (const pair of (v as { items: { key: unknown; value: unknown }[] }).items) {
          const kn = pair.key as Node;
          let name: string;
          try {
            name = tsigKeyName(str(kn, 'a TSIG key name'));
          } catch (e) {
            return fail(kn, `TSIG key name: ${(e as Error).message}`);
          }
          if (ring.has(name)) fail(kn, `TSIG key ${name} is defined twice`);
          const f = fields(pair.value as Node, 'tsig-keys', ['algorithm', 'secret']);
          const algNode = f.get('algorithm');
          const algText = algNode ? str(algNode, 'algorithm') : 'hmac-sha256';
          const algorithm = tsigAlgorithmFromText(algText);
          if (!algorithm)
            fail(algNode, `unknown TSIG algorithm "${algText}" (known: ${TSIG_ALGORITHMS.join(', ')})`);
          const secNode = f.get('secret');
          if (!secNode) return fail(pair.value as Node, `TSIG key ${name} has no secret`);
          const text = str(secNode, 'secret').replace(/\s+/g, '');
          if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text) || text.length % 4 !== 0)
            fail(secNode, `the secret of TSIG key ${name} is not base64`);
          const secret = Buffer.from(text, 'base64');
          if (secret.length === 0) fail(secNode, `the secret of TSIG key ${name} is empty`);
          ring.set(name, { name, algorithm: algorithm!, secret });
        }
      }
      cfg.tsigKeys = ring;
      break;
    }
    case 'transfer': {
      if (!isMap(v)) return fail(v, 'transfer is a mapping with allow: and notify: lists');
      const f = fields(v, 'transfer', ['allow', 'notify']);
      const allowNode = f.get('allow');
      const notifyNode = f.get('notify');
      const keyRef = (n: Node | undefined): string | null => {
        if (!n || (isScalar(n) && n.value === null)) return null;
        try {
          return tsigKeyName(str(n, 'key'));
        } catch (e) {
          return fail(n, `key: ${(e as Error).message}`);
        }
      };
      cfg.transfer = {
        allow: allowNode
          ? entries(allowNode, 'transfer.allow').map((n) => {
              const e = fields(n, 'transfer.allow', ['from', 'key']);
              const fromNode = e.get('from');
              if (!fromNode) return fail(n, 'a transfer.allow entry needs from: (an address or CIDR prefix)');
              const from = str(fromNode, 'from');
              const net = parseCidr(from);
              if (!net) return fail(fromNode, `"${from}" is not an address or CIDR prefix like 192.0.2.0/24`);
              return withKeyNode({ from, ...net, key: keyRef(e.get('key')) }, e.get('key'));
            })
          : [],
        notify: notifyNode
          ? entries(notifyNode, 'transfer.notify').map((n) => {
              const e = fields(n, 'transfer.notify', ['to', 'key']);
              const toNode = e.get('to');
              if (!toNode) return fail(n, 'a transfer.notify entry needs to: "ADDR:PORT"');
              const to = str(toNode, 'to');
              const hp = parseHostPort(to);
              if (!hp) return fail(toNode, `"${to}" is not ADDR:PORT (IPv6 as "[2001:db8::1]:53")`);
              return withKeyNode({ to, ...hp, key: keyRef(e.get('key')) }, e.get('key'));
            })
          : [],
      };
      break;
    }
  }
}

/** Where each `key:` under transfer was written, for the error when it names no known key. */
const keyNodes = new WeakMap<object, Node>();

function withKeyNode<T extends object>(entry: T, node: Node | undefined): T {
  if (node) keyNodes.set(entry, node);
  return entry;
}

/**
 * After the whole file (tsig-keys may come after transfer): every `key:` named under transfer must be
 * one of tsig-keys. Also used by `popdns check --config`.
 */
export function checkPrimaryConfig(cfg: PrimaryConfig, fail: Fail): void {
  for (const r of [...cfg.transfer.allow, ...cfg.transfer.notify]) {
    if (r.key !== null && !cfg.tsigKeys.has(r.key)) {
      const known = [...cfg.tsigKeys.keys()].join(', ') || 'none';
      fail(keyNodes.get(r), `transfer: key ${r.key} is not in tsig-keys (known: ${known})`);
    }
  }
}

/** Parses "192.0.2.0/24", "2001:db8::/32" or a bare address (a /32 or /128). */
export function parseCidr(text: string): { network: string; prefix: number; family: 4 | 6 } | null {
  const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(text.trim());
  if (!m) return null;
  const fam = isIP(m[1]!);
  if (fam === 0) return null;
  const max = fam === 4 ? 32 : 128;
  const prefix = m[2] === undefined ? max : Number(m[2]);
  if (prefix > max) return null;
  return { network: m[1]!, prefix, family: fam as 4 | 6 };
}

/** Parses "192.0.2.10:53" or "[2001:db8::1]:53" (port 53 when omitted). */
export function parseHostPort(text: string): { host: string; port: number } | null {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:]+)(?::(\d+))?$/.exec(text);
  if (!m || isIP(m[1]!) === 0) return null;
  const port = m[2] === undefined ? 53 : Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return null;
  return { host: m[1]!, port };
}

/** A matcher for transfer.allow: which entries a client address falls in, in config order. */
export class AllowList {
  private readonly lists: BlockList[];

  constructor(readonly entries: readonly TransferAllow[]) {
    this.lists = entries.map((e) => {
      const b = new BlockList();
      b.addSubnet(e.network, e.prefix, e.family === 4 ? 'ipv4' : 'ipv6');
      return b;
    });
  }

  /**
   * Whether `address` may transfer with the request's key (`keyName` null = unsigned): some entry
   * covers the address and either names no key or names this one.
   */
  allows(address: string, keyName: string | null): boolean {
    const fam = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    for (let i = 0; i < this.entries.length; i++) {
      const e = this.entries[i]!;
      if (!this.lists[i]!.check(address, fam)) continue;
      if (e.key === null || e.key === keyName) return true;
    }
    return false;
  }
}
