/** `popdns convert IN OUT`: RFC 1035 master file ⇄ popdns YAML, losslessly. */
import { writeFileSync } from 'node:fs';
import { type Name, nameFromText } from '../wire/name.js';
import { parseZoneFile } from '../zone/load.js';
import { writeMasterFile } from '../zone/masterfile.js';
import { formatDiagnostic } from '../zone/types.js';
import { writeYamlZone } from '../zone/yamlzone.js';
import * as log from '../log/log.js';

export type ZoneFormat = 'yaml' | 'zone';

export function formatOfPath(path: string): ZoneFormat | null {
  if (/\.ya?ml$/i.test(path)) return 'yaml';
  if (/\.(zone|db)$/i.test(path)) return 'zone';
  return null;
}

/** Converts one zone file; returns the text in the other format, or the parse errors. */
export function convertZone(
  input: string,
  to: ZoneFormat,
  origin?: Name,
): { text: string | null; errors: string[] } {
  const parsed = parseZoneFile(input, origin ? { origin } : {});
  const errors = parsed.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
  if (errors.length > 0) return { text: null, errors };
  const opts = parsed.defaultTtl !== undefined ? { defaultTtl: parsed.defaultTtl } : {};
  const text =
    to === 'yaml'
      ? writeYamlZone(parsed.origin, parsed.records, { ...opts, dnssec: parsed.dnssec })
      : writeMasterFile(parsed.origin, parsed.records, opts);
  if (to === 'zone' && parsed.dnssec !== undefined) {
    // An RFC 1035 file has no place for it: the config file's dnssec: section carries it for such zones.
    log.warn(
      'convert',
      `${input}: the dnssec: settings are not part of an RFC 1035 file; set them in the config file's dnssec: section [POPDNS_W_DNSSEC_DROPPED]`,
    );
  }
  return { text, errors: [] };
}

export function runConvert(input: string, output: string, opts: { to?: string; origin?: string }): number {
  const to = (opts.to as ZoneFormat | undefined) ?? formatOfPath(output);
  const named = output === '-' ? null : formatOfPath(output);
  if (named !== null && to !== named) {
    // The server picks the parser by extension: x.yaml holding master-file text would not load.
    log.error(
      'convert',
      `--to ${to} but "${output}" is named like a ${named === 'yaml' ? 'YAML' : 'RFC 1035'} file: the server would read it as one; name it *.${to === 'yaml' ? 'yaml' : 'zone'} [POPDNS_E_USAGE]`,
    );
    return 2;
  }
  if (to !== 'yaml' && to !== 'zone') {
    log.error(
      'convert',
      `cannot tell the output format of "${output}": name it *.yaml or *.zone, or pass --to yaml|zone [POPDNS_E_USAGE]`,
    );
    return 2;
  }
  let origin: Name | undefined;
  if (opts.origin) {
    try {
      origin = nameFromText(opts.origin.endsWith('.') ? opts.origin : `${opts.origin}.`);
    } catch (e) {
      log.error('convert', `--origin ${opts.origin}: ${(e as Error).message} [POPDNS_E_USAGE]`);
      return 2;
    }
  }
  const res = convertZone(input, to, origin);
  if (res.text === null) {
    for (const e of res.errors) process.stderr.write(`${e}\n`);
    return 1;
  }
  if (output === '-') process.stdout.write(res.text);
  else writeFileSync(output, res.text);
  return 0;
}
