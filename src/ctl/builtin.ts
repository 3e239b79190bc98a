/**
 * The built-in control verbs: `reload [ZONE…]`, `status [ZONE…]`, `zone-dump ZONE`.
 */
import { signedZoneText } from '../dnssec/signzone.js';
import type { ZoneOutcome } from '../server/server.js';
import { serverReport, type ZoneReport, zoneReports } from '../server/status.js';
import { type CtlOutput, registerVerb } from './verbs.js';

const key = (n: string): string => (n.endsWith('.') ? n : `${n}.`).toLowerCase();

/** One line of `ctl reload`: zone, serial old → new, records, result, seconds or the first error. */
export function reloadLine(o: ZoneOutcome): string {
  const serial =
    o.serialOld === null
      ? `serial ${o.serial ?? '-'} (new)`
      : o.serial === null
        ? `serial ${o.serialOld} → -`
        : `serial ${o.serialOld} → ${o.serial}`;
  const records = o.records === null ? '' : `, ${o.records} records`;
  switch (o.result) {
    case 'failed':
      return `${o.zone} failed: ${o.serial === null ? 'not served' : `still serving serial ${o.serial}`}: ${o.error ?? 'not loaded'}`;
    case 'removed':
      return `${o.zone} removed: ${serial} (${o.file} is gone)`;
    case 'unchanged':
      return `${o.zone} unchanged: serial ${o.serial ?? '-'}${records}`;
    default:
      return `${o.zone} loaded: ${serial}${records}, ${o.seconds.toFixed(3)} s`;
  }
}

interface ReloadData {
  ok: boolean;
  zones: ZoneOutcome[];
  unknown: string[];
}

registerVerb({
  name: 'reload',
  usage: '[ZONE…]',
  summary:
    're-read changed zone files (or re-read the zones named) and wait: one line per zone; fails unless every zone loaded',
  scope: 'each',
  async run({ server }, args) {
    const r = await server.reloadStepwise(args.length > 0 ? args : undefined);
    const seen = new Set(r.zones.map((z) => key(z.zone)));
    const unknown = args.filter((a) => !seen.has(key(a)));
    const lines = r.zones.map(reloadLine);
    for (const u of unknown) lines.push(`${u} failed: no such zone [POPDNS_E_CTL_ZONE]`);
    const ok = r.ok && unknown.length === 0 && r.zones.every((z) => z.result !== 'failed');
    const data: ReloadData = { ok, zones: r.zones, unknown };
    return { ok, text: lines.map((l) => `${l}\n`).join(''), data };
  },
  merge(parts) {
    // Every worker reloads the same files: show the first worker's lines, and any worker that
    // disagrees (a file changed between two workers' turns, say) under its number.
    const first = parts[0];
    if (!first) return { ok: false, text: 'no worker answered [POPDNS_E_CTL]\n', data: { ok: false } };
    const ok = parts.every((p) => p.ok);
    // Compared without the timings, which always differ.
    const gist = (p: CtlOutput): string =>
      JSON.stringify((p.data as ReloadData | undefined)?.zones?.map((z) => ({ ...z, seconds: 0 })) ?? p.text);
    let text = first.text;
    parts.forEach((p, i) => {
      if (i > 0 && gist(p) !== gist(first)) text += `worker ${i}:\n${p.text.replace(/^(?=.)/gm, '  ')}`;
    });
    text += `reload ${ok ? 'done' : 'failed'} (${parts.length} workers)\n`;
    const data = { ...(first.data as ReloadData), ok, workers: parts.map((p) => p.data as ReloadData) };
    return { ok, text, data };
  },
});

/** One zone of `ctl status`, as text. */
export function statusLines(z: ZoneReport): string[] {
  const out = [`${z.zone}`];
  out.push(`  source: file ${z.source.path}`);
  if (z.serial === null) out.push('  serial: - (not served)');
  else out.push(`  serial: ${z.serial}, ${z.records ?? 0} records, loaded ${z.loadedAt}`);
  out.push(
    z.signed
      ? `  signed: ${z.signed.denial.toUpperCase()}, earliest signature expiry ${z.signed.earliestExpiry}`
      : '  signed: no',
  );
  out.push(
    z.lastError
      ? `  last error: ${z.lastError} (at ${z.lastErrorAt}; ${z.loadFailures} failed loads)`
      : '  last error: none',
  );
  return out;
}

registerVerb({
  name: 'status',
  usage: '[ZONE…]',
  summary:
    'the server (identity, version, uptime, workers, draining) and each zone (serial, source, signing, errors)',
  scope: 'one',
  run({ server, proc }, args) {
    const s = serverReport(server, proc);
    const { zones, unknown } = zoneReports(server, args);
    const lines = [
      `identity: ${s.identity}`,
      `version: ${s.version}`,
      `uptime: ${s.uptimeSeconds} s (since ${s.startedAt})`,
      `workers: ${s.workers}`,
      `draining: ${s.draining ? 'yes' : 'no'}`,
      `zones: ${zones.length}${args.length > 0 ? ' asked for' : ''}`,
    ];
    for (const z of zones) lines.push(...statusLines(z));
    for (const u of unknown) lines.push(`${u}: no such zone [POPDNS_E_CTL_ZONE]`);
    const out: CtlOutput = {
      ok: unknown.length === 0,
      text: lines.map((l) => `${l}\n`).join(''),
      data: { server: s, zones, unknown },
    };
    return Promise.resolve(out);
  },
});

registerVerb({
  name: 'zone-dump',
  usage: 'ZONE',
  summary: 'the zone exactly as served (signatures and NSEC/NSEC3 included), as an RFC 1035 master file',
  scope: 'one',
  run({ server }, args) {
    if (args.length !== 1) {
      const msg = 'zone-dump takes one zone name [POPDNS_E_CTL_USAGE]';
      return Promise.resolve({ ok: false, text: `${msg}\n`, data: { error: msg }, usage: true });
    }
    const want = key(args[0]!);
    const zone = server.handler.zones.zones.find((z) => z.originText.toLowerCase() === want);
    if (!zone) {
      const msg = `${args[0]}: no such zone is served [POPDNS_E_CTL_ZONE]`;
      return Promise.resolve({ ok: false, text: `${msg}\n`, data: { error: msg } });
    }
    // The signer's export, with a header saying what this is.
    const body = signedZoneText(zone);
    const text =
      `; ${zone.originText} serial ${zone.serial} as served by ${server.cfg.identity} at ` +
      `${new Date().toISOString()}${zone.dnssec ? `, signed (${zone.dnssec.nsec3 ? 'NSEC3' : 'NSEC'}${zone.dnssec.presigned ? ', pre-signed' : ''})` : ''}\n` +
      body.slice(body.indexOf('\n') + 1);
    return Promise.resolve({ ok: true, text, data: { zone: zone.originText, serial: zone.serial, text } });
  },
});
