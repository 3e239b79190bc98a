/**
 * `popdns sign ZONEFILE --keys DIR --out FILE`: loads a zone exactly as the server does, signs it with
 * the zone's keys and its own `dnssec:` settings (flags win), and writes the signed zone as an RFC 1035
 * master file, for audit and offline use.
 */
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { DnssecError, loadKeys } from '../dnssec/keys.js';
import { defaultSigningThreads, SignPool } from '../dnssec/signpool.js';
import { makePolicy, POOL_MIN_RRSETS, signedZoneChunks, signZoneAsync } from '../dnssec/signzone.js';
import { parsePeriod } from '../wire/rdata.js';
import { loadZone } from '../zone/load.js';
import { formatDiagnostic } from '../zone/types.js';
import * as log from '../log/log.js';

export interface SignOptions {
  /** Keys directory; default ./keys. */
  keys?: string;
  /** Output file, or - for standard output. */
  out?: string;
  nsec3?: boolean;
  optOut?: boolean;
  /** Signature validity: seconds or BIND units (14d, 2w); default 14d. */
  validity?: string;
  /** Publish CDS/CDNSKEY at the apex. */
  cds?: boolean;
  /** Signing time (unix seconds), for tests and reproducible output; default: now. */
  now?: number;
  /**
   * Signing threads (text from the command line, or a number): default the cores; 0 signs on the
   * main thread only.
   */
  threads?: string | number;
}

function usage(message: string): number {
  log.error('sign', `${message} [POPDNS_E_USAGE]`);
  return 2;
}

/**
 * Writes the text in its chunks to standard output for `-`, else to a temporary file beside `out`
 * (`.NAME.tmp-PID`), fsync'd and renamed over `out`: a crash or kill mid-write never leaves a
 * half-written file under the final name, and the previous `out` stays until the new one is complete.
 * Throws the file system's error (the temporary file removed).
 */
function writeChunks(out: string, chunks: Iterable<string>): void {
  if (out === '-') {
    for (const c of chunks) {
      const b = Buffer.from(c, 'utf8');
      let off = 0;
      while (off < b.length) off += writeSync(1, b, off);
    }
    return;
  }
  const tmp = join(dirname(out), `.${basename(out)}.tmp-${process.pid}`);
  const fd = openSync(tmp, 'wx', 0o666);
  let done = false;
  try {
    for (const c of chunks) {
      const b = Buffer.from(c, 'utf8');
      let off = 0;
      while (off < b.length) off += writeSync(fd, b, off);
    }
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, out);
    done = true;
  } finally {
    if (!done) {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
      try {
        unlinkSync(tmp);
      } catch {
        // never created or already gone
      }
    }
  }
}

/**
 * Signs one zone file on `opts.threads` signing threads; resolves to the exit code (0, 1 for
 * zone/key/signing problems, 2 for usage).
 */
export async function runSign(zoneFile: string, opts: SignOptions): Promise<number> {
  if (opts.out === undefined || opts.out === '')
    return usage('--out FILE is required (- for standard output)');
  if (opts.optOut && !opts.nsec3) return usage('--opt-out needs --nsec3');
  let validity: number | undefined;
  if (opts.validity !== undefined) {
    validity = parsePeriod(opts.validity);
    if (validity === undefined)
      return usage(`bad --validity "${opts.validity}" (seconds, or units: 14d, 2w)`);
  }
  let threads = defaultSigningThreads();
  if (opts.threads !== undefined) {
    // Decimal digits only: Number() would also take "", " 2", "0x2" and "1e2".
    threads = /^\d{1,3}$/.test(String(opts.threads)) ? Number(opts.threads) : NaN;
    if (!Number.isInteger(threads) || threads < 0 || threads > 256)
      return usage(`bad --threads "${opts.threads}" (0 to 256; 0 signs on the main thread)`);
  }
  const dir = opts.keys ?? 'keys';

  const { parsed, result: res } = loadZone(zoneFile);
  for (const d of res.diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`);
  const zone = res.zone;
  if (!zone) return 1;
  // The zone's own `dnssec:` settings (YAML), as the server applies them; flags win.
  const own = parsed.dnssec;
  if (own === false) {
    log.error('sign', `${zoneFile} says dnssec: false [POPDNS_E_SIGN]`);
    return 1;
  }

  const { keys, errors } = loadKeys(dir, zone.origin);
  // A key that cannot be read must not silently leave a zone signed with fewer keys (or none).
  for (const e of errors) log.error('sign', e.message);
  if (errors.length > 0) return 1;
  if (keys.length === 0) {
    log.error(
      'sign',
      `no keys for ${zone.originText} in ${dir} (make one with: popdns keygen ${zone.originText} --keys ${dir}) [POPDNS_E_NO_KEYS]`,
    );
    return 1;
  }
  try {
    const policy = makePolicy({
      denial: opts.nsec3 ? 'nsec3' : (own?.denial ?? 'nsec'),
      nsec3OptOut: opts.optOut === true || (!opts.nsec3 && own?.optOut === true),
      cds: opts.cds === true || own?.cds === true,
      ...(validity !== undefined
        ? { validity }
        : own?.validity !== undefined
          ? { validity: own.validity }
          : {}),
    });
    const started = process.hrtime.bigint();
    const pool = threads > 0 ? new SignPool(threads) : null;
    let signatures: number;
    let pooled: boolean;
    try {
      ({ signatures, pooled } = await signZoneAsync(zone, keys, policy, {
        now: opts.now ?? Math.floor(Date.now() / 1000),
        pool,
      }));
    } finally {
      await pool?.close();
    }
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    writeChunks(opts.out, signedZoneChunks(zone));
    const keyList = keys.map((k) => `${k.file ?? k.tag} (${k.role})`).join(', ');
    log.info(
      'sign',
      `${zone.originText} serial ${zone.serial}: ${signatures} signatures in ${ms.toFixed(0)} ms (${!pooled ? `main thread${threads > 0 ? `: under ${POOL_MIN_RRSETS} RRsets` : ''}` : threads > 1 ? `${threads} signing threads` : '1 signing thread'}), ${policy.denial.toUpperCase()}${policy.nsec3OptOut ? ' opt-out' : ''}, keys ${keyList}${opts.out === '-' ? '' : `; wrote ${opts.out}`}`,
    );
    return 0;
  } catch (e) {
    const msg = e instanceof DnssecError ? e.message : `${(e as Error).message} [POPDNS_E_SIGN]`;
    log.error('sign', msg);
    return 1;
  }
}
