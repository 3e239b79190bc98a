/**
 * Catalog zones (RFC 9432, version 2): reading the member list out of a transferred catalog zone.
 * Members are PTR records at `<unique-id>.zones.<catalog>`; `coo.<unique-id>.zones.<catalog>` PTR
 * names the catalog a member moves to (§5.4); `version.<catalog>` TXT must say "2" (§4.2).
 */
import { TYPE } from '../wire/constants.js';
import { nameFromText, nameToLower, nameToText, readName } from '../wire/name.js';
import type { Zone } from '../zone/zone.js';
import { findNode } from '../zone/zone.js';

export interface CatalogMember {
  /** The member zone, lower-case text with the trailing dot. */
  zone: string;
  /** The unique ID: the label under `zones.` (lower case). */
  id: string;
  /** The catalog named by the member's `coo` property, lower-case text; null when none. */
  coo: string | null;
}

export interface CatalogParse {
  members: CatalogMember[];
  /** Problems that make single members (or the whole catalog) unusable, with POPDNS_* codes. */
  problems: string[];
  /** False when the catalog as a whole must not be used (wrong or missing version). */
  ok: boolean;
}

/** Reads the members of a catalog zone (RFC 9432 §4). */
export function parseCatalog(zone: Zone): CatalogParse {
  const problems: string[] = [];
  const cat = zone.originText;
  const version = findNode(zone, nameFromText('version', zone.origin));
  const txt = version?.rrsets.get(TYPE.TXT);
  const versions = txt
    ? txt.rdatas.map((rd) => Buffer.from(rd.subarray(1, 1 + rd[0]!)).toString('latin1'))
    : [];
  if (versions.length !== 1 || versions[0] !== '2') {
    return {
      ok: false,
      members: [],
      problems: [
        `catalog ${cat}: version.${cat} TXT must be "2" (RFC 9432 §4.2), found ${versions.length ? versions.map((v) => `"${v}"`).join(', ') : 'none'} [POPDNS_E_CATALOG_VERSION]`,
      ],
    };
  }
  const zonesName = nameFromText('zones', zone.origin);
  const zonesNode = findNode(zone, zonesName);
  const members: CatalogMember[] = [];
  const seen = new Map<string, string>();
  if (zonesNode) {
    for (const child of zonesNode.children.values()) {
      const id = child.label.toLowerCase();
      const ptr = child.rrsets.get(TYPE.PTR);
      if (!ptr) continue;
      if (ptr.rdatas.length !== 1) {
        problems.push(
          `catalog ${cat}: member ${id} has ${ptr.rdatas.length} PTR records; exactly one is allowed (RFC 9432 §4.1): ignored [POPDNS_W_CATALOG_MEMBER]`,
        );
        continue;
      }
      const member = nameToText(nameToLower(readName(ptr.rdatas[0]!, 0).name));
      const dup = seen.get(member);
      if (dup !== undefined) {
        problems.push(
          `catalog ${cat}: ${member} is listed twice (IDs ${dup} and ${id}); the first is kept [POPDNS_W_CATALOG_MEMBER]`,
        );
        continue;
      }
      seen.set(member, id);
      let coo: string | null = null;
      const cooNode = child.children.get('coo') ?? child.children.get('COO');
      const cooPtr = cooNode?.rrsets.get(TYPE.PTR);
      if (cooPtr && cooPtr.rdatas.length === 1)
        coo = nameToText(nameToLower(readName(cooPtr.rdatas[0]!, 0).name));
      members.push({ zone: member, id, coo });
    }
  }
  members.sort((a, b) => (a.zone < b.zone ? -1 : a.zone > b.zone ? 1 : 0));
  return { ok: true, members, problems };
}
