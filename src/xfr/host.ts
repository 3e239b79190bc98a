/**
 * Wires the secondary side into a running server: one SecondaryManager whose versions go straight
 * into the server's zone set (a single process), or, with workers, into every worker by a message
 * naming the persisted file (see src/cli/serve.ts). NOTIFYs and timers always live in one process.
 */
import type { ServerConfig } from '../server/config.js';
import type { Logger, PopdnsServer } from '../server/server.js';
import { verifyNotifyTsig } from './auth.js';
import { type Publish, SecondaryManager } from './secondary.js';

export function hasSecondaries(cfg: ServerConfig): boolean {
  return cfg.secondaries.length > 0 || cfg.catalogs.length > 0;
}

/** A manager for the config's secondaries and catalogs; `publish` receives every change. */
export function makeSecondaryManager(
  cfg: ServerConfig,
  log: Logger,
  publish: (zone: string, p: Publish) => void,
  fileZones?: () => ReadonlySet<string>,
): SecondaryManager {
  return new SecondaryManager({
    dataDir: cfg.dataDir,
    keys: cfg.tsigKeys,
    log,
    publish,
    verifyNotify: verifyNotifyTsig,
    ...(fileZones ? { fileZones } : {}),
  });
}

/**
 * Single process: the manager feeds `server` directly and answers its NOTIFYs. Loads the saved
 * versions from data-dir before returning. Null when the config follows no zones.
 */
export async function attachSecondaries(
  server: PopdnsServer,
  cfg: ServerConfig,
  log: Logger,
): Promise<SecondaryManager | null> {
  if (!hasSecondaries(cfg)) return null;
  const m = makeSecondaryManager(
    cfg,
    log,
    (zone, p) =>
      server.setSecondaryZone(
        zone,
        p.kind === 'zone' ? p.zone : p.kind === 'unavailable' ? 'unavailable' : null,
      ),
    () => server.fileZoneNames(),
  );
  server.notifyHook = (msg, from) => m.notify(msg, from);
  await m.start(cfg.secondaries, cfg.catalogs);
  return m;
}
