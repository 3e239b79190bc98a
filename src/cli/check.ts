/**
 * `popdns check [PATH...] [--config FILE] [--keys DIR] [--origin ZONE] [--against ADDR:PORT]`: loads
 * zone files exactly as `popdns serve` does — the same parser, checks, zone-name rule, duplicate-zone
 * rule and DNSSEC decision (signingPlan) with the same config — and prints every problem once.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { SignatureCache, signZone } from '../dnssec/signzone.js';
import { ConfigError, defaultConfig, type ServerConfig } from '../server/config.js';
import { signingPlan } from '../server/signingplan.js';
import { VERSION } from '../version.js';
import { type Name, NameError, nameFromText, nameKey, nameToText } from '../wire/name.js';
import { isZoneFileName, listZoneFiles, loadZone } from '../zone/load.js';
import { dnssecSummary } from '../zone/dnssec.js';
import { type Diagnostic, formatDiagnostic } from '../zone/types.js';
import type { Zone } from '../zone/zone.js';
import { compareWithServer } from './against.js';
import { checkTransferConfig, zonesSetting } from './checkconfig.js';
import { zoneFileMap } from './health.js';
import { resolveConfig } from './serve.js';

export interface CheckOptions {
  strict?: boolean;
  quiet?: boolean;
  /** The zone's name (one file only), like `named-checkzone ZONE FILE` and `kzonecheck -o`. */
  origin?: string;
  /** The server's config file: its zones directory, keys directory and per-zone dnssec settings. */
  config?: string;
  /** Keys directory (as `serve --keys`). */
  keys?: string;
  /** A running server (ADDR:PORT) to compare serials and content with. */
  against?: string;
}

export interface CheckSummary {
  files: number;
  errors: number;
  warnings: number;
  lines: string[];
  /** The zones that loaded, by file (for --against). */
  zones: { file: string; zone: Zone }[];
}

/** Expands directories to the zone files inside them; files are taken as given. */
export function expandZonePaths(paths: string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch {
      out.push(p); // loadZone reports the read error with the path
      continue;
    }
    if (isDir) out.push(...listZoneFiles(p));
    else out.push(p);
  }
  return out;
}

function byPosition(a: Diagnostic, b: Diagnostic): number {
  return a.pos.file.localeCompare(b.pos.file) || a.pos.line - b.pos.line || a.pos.col - b.pos.col;
}

/** What the check runs with: the server's config (keys, dnssec settings) and an explicit zone name. */
export interface CheckContext {
  cfg?: ServerConfig;
  origin?: Name;
  /** Report config `dnssec:` entries for zones not among the checked files (checking the zones dir). */
  configFile?: string;
}

/** The code in a message that ends with `[POPDNS_…]`. */
function codeOf(message: string): { code: string; text: string } {
  const m = /^(.*) \[(POPDNS_[A-Z0-9_]+)\]$/s.exec(message);
  return m ? { text: m[1]!, code: m[2]! } : { text: message, code: 'POPDNS_E_SIGN' };
}

/**
 * Checks zone files (directories expand to the zone files in them) as the server loads them. With
 * a config, each zone that loads also goes through the server's DNSSEC decision and is signed, so a
 * zone the server would refuse (POPDNS_E_KEYS_MISSING, POPDNS_E_KEY, POPDNS_E_SIGN) fails here too.
 */
export function checkZones(paths: string[], ctx: CheckContext = {}): CheckSummary {
  const diags: Diagnostic[] = [];
  const existing: string[] = [];
  for (const p of paths) {
    if (existsSync(p)) existing.push(p);
    else {
      diags.push({
        severity: 'error',
        code: 'POPDNS_E_NOT_FOUND',
        message: 'no such file or directory: the path does not exist',
        pos: { file: p, line: 0, col: 0 },
      });
    }
  }
  const files = expandZonePaths(existing);
  const seen = new Map<string, string>();
  /** Every zone name the files give, whether the zone loads or not (for the config's dnssec entries). */
  const named = new Set<string>();
  const ok: string[] = [];
  const zones: { file: string; zone: Zone }[] = [];
  const cfg = ctx.cfg ?? defaultConfig(VERSION, 1);
  for (const file of files) {
    if (!isZoneFileName(file) && !ctx.origin) {
      diags.push({
        severity: 'warning',
        code: 'POPDNS_W_NOT_A_ZONE_FILE',
        message:
          'not a zone file name (*.yaml, *.yml, *.zone, *.db); the server would not load it (its zone name comes from its first $ORIGIN here)',
        pos: { file, line: 1, col: 1 },
      });
    }
    const { parsed, result: res } = loadZone(file, undefined, ctx.origin);
    if (!parsed.incomplete) named.add(nameToText(parsed.origin).toLowerCase());
    diags.push(...[...res.diagnostics].sort(byPosition));
    let zone = res.zone;
    if (zone) {
      const plan = signingPlan(zone, parsed, cfg, false);
      let problem: string | null = plan.kind === 'refuse' ? plan.message : null;
      if (plan.kind === 'sign') {
        try {
          signZone(zone, plan.keys, plan.policy, {
            now: Math.floor(Date.now() / 1000),
            cache: new SignatureCache(),
          });
        } catch (e) {
          problem = `signing ${zone.originText} failed: ${(e as Error).message} [POPDNS_E_SIGN]`;
        }
      }
      if (problem) {
        const { code, text } = codeOf(problem);
        diags.push({ severity: 'error', code, message: text, pos: { file, line: 1, col: 1 } });
        zone = null;
      }
    }
    if (zone) {
      const key = nameKey(zone.origin);
      const other = seen.get(key);
      if (other) {
        diags.push({
          severity: 'error',
          code: 'POPDNS_E_DUPLICATE_ZONE',
          message: `zone ${zone.originText} is also defined in ${other}`,
          pos: { file, line: 1, col: 1 },
        });
      } else {
        seen.set(key, file);
        zones.push({ file, zone });
        ok.push(
          `${file}: ${nameToText(zone.origin)} serial ${zone.serial}, ${zone.recordCount} records${dnssecSummary(zone)}`,
        );
      }
    }
  }
  if (ctx.configFile && ctx.cfg) {
    let text = '';
    try {
      text = readFileSync(ctx.configFile, 'utf8');
    } catch {
      // read once already by the config loader; positions fall back to 1:1
    }
    for (const zone of ctx.cfg.dnssec.keys()) {
      if (named.has(zone)) continue;
      const bare = zone.replace(/\.$/, '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      const lines = text.split('\n');
      const ln = lines.findIndex((l) => new RegExp(`^\\s+["']?${bare}\\.?["']?\\s*:`, 'i').test(l));
      diags.push({
        severity: 'warning',
        code: 'POPDNS_W_CONFIG_UNKNOWN_ZONE',
        message: `the dnssec: entry for ${zone} names no zone in ${ctx.cfg.zones} (a typo? the settings apply to nothing)`,
        pos: {
          file: ctx.configFile,
          line: ln >= 0 ? ln + 1 : 1,
          col: ln >= 0 ? lines[ln]!.search(/\S/) + 1 : 1,
        },
      });
    }
  }
  const errors = diags.filter((d) => d.severity === 'error').length;
  return {
    files: files.length,
    errors,
    warnings: diags.length - errors,
    lines: [
      ...diags.map((d) =>
        d.pos.line === 0 ? `${d.pos.file}: ${d.severity}: ${d.message} [${d.code}]` : formatDiagnostic(d),
      ),
      ...ok,
    ],
    zones,
  };
}

/** Runs the check, prints the result, returns the exit code. */
export async function runCheck(paths: string[], opts: CheckOptions): Promise<number> {
  const ctx: CheckContext = {};
  let cfg: ServerConfig | null = null;
  let cfgError: Error | null = null;
  try {
    cfg = opts.config
      ? resolveConfig({ config: opts.config, ...(opts.keys ? { keys: opts.keys } : {}) })
      : defaultConfig(VERSION, availableParallelism());
    if (!opts.config && opts.keys) cfg.keys = opts.keys;
  } catch (e) {
    cfgError = e as Error;
  }
  // The transfer settings, all problems at once (the loader above stops at its first).
  let transferErrors = 0;
  let transferWarnings = 0;
  if (opts.config) {
    let text: string | null = null;
    try {
      text = readFileSync(opts.config, 'utf8');
    } catch {
      // the loader said why
    }
    // The zones directory for the zones-named-once rule, also when the rest of the file does not load.
    const zonesDir = cfg?.zones ?? (text === null ? null : zonesSetting(text));
    const diags =
      text === null
        ? []
        : checkTransferConfig(text, opts.config, zonesDir ? zoneFileMap(zonesDir) : new Map());
    const seenAt = new Set<string>();
    for (const d of diags) {
      seenAt.add(`${d.pos.file}:${d.pos.line}:${d.pos.col}:`);
      if (d.severity === 'error') transferErrors++;
      else transferWarnings++;
      process.stdout.write(`${formatDiagnostic(d)}\n`);
    }
    // The loader's own message, unless it is about a place already reported.
    if (cfgError && ![...seenAt].some((at) => cfgError!.message.startsWith(at)))
      process.stdout.write(`${cfgError.message}\n`);
  } else if (cfgError) process.stdout.write(`${cfgError.message}\n`);
  if (cfgError || transferErrors > 0 || !cfg) {
    process.stderr.write(`popdns check: the config file has an error; nothing else checked\n`);
    return cfgError === null || cfgError instanceof ConfigError ? 1 : 2;
  }
  ctx.cfg = cfg;
  if (opts.config && paths.length === 0) ctx.configFile = opts.config;
  const targets = paths.length > 0 ? paths : [cfg.zones];
  if (opts.origin) {
    try {
      ctx.origin = nameFromText(opts.origin.endsWith('.') ? opts.origin : `${opts.origin}.`);
    } catch (e) {
      process.stderr.write(
        `popdns check: --origin ${opts.origin}: ${(e as NameError).message} [POPDNS_E_USAGE]\n`,
      );
      return 2;
    }
    if (expandZonePaths(targets.filter((p) => existsSync(p))).length > 1) {
      process.stderr.write('popdns check: --origin names one zone: give one file [POPDNS_E_USAGE]\n');
      return 2;
    }
  }
  const followed = cfg.secondaries.length + cfg.catalogs.length;
  if (
    opts.config &&
    paths.length === 0 &&
    followed > 0 &&
    (!existsSync(cfg.zones) || expandZonePaths([cfg.zones]).length === 0)
  ) {
    // A PoP with only secondary zones: no zones directory (or an empty one) is what serve expects.
    process.stderr.write(
      `checked the config: no zone files in ${cfg.zones}; ${cfg.secondaries.length} secondary zone${cfg.secondaries.length === 1 ? '' : 's'} and ${cfg.catalogs.length} catalog${cfg.catalogs.length === 1 ? '' : 's'} come from their primaries\n`,
    );
    return 0;
  }
  const s = checkZones(targets, ctx);
  s.warnings += transferWarnings;
  if (opts.against) {
    const extra = await compareWithServer(opts.against, s.zones);
    for (const d of extra) {
      s.lines.splice(s.lines.length - s.zones.length, 0, formatDiagnostic(d));
      if (d.severity === 'error') s.errors++;
      else s.warnings++;
    }
  }
  for (const l of s.lines) {
    if (opts.quiet && !/: (error|warning): /.test(l)) continue;
    process.stdout.write(`${l}\n`);
  }
  const missingOnly = s.files === 0 && s.lines.some((l) => l.endsWith('[POPDNS_E_NOT_FOUND]'));
  const failed = s.errors > 0 || (opts.strict === true && s.warnings > 0) || s.files === 0;
  if (opts.quiet && s.files > 0) return failed ? 1 : 0;
  if (!missingOnly) {
    process.stderr.write(
      `checked ${s.files} zone file${s.files === 1 ? '' : 's'}: ${s.errors} error${s.errors === 1 ? '' : 's'}, ${s.warnings} warning${s.warnings === 1 ? '' : 's'}${s.files === 0 ? ' (no zone files found)' : ''}\n`,
    );
  }
  return failed ? 1 : 0;
}
