/**
 * Wires the secondary side into a running server: one SecondaryManager whose versions go straight
 * into the server's zone set (a single process), or, with workers, into every worker by a message
 * naming the persisted file (see src/cli/serve.ts). NOTIFYs and timers always live in one process.
 */
import type { ServerConfig } from '../server/config.js';
import type { Logger, PopdnsServer } from '../server/server.js';
import type { PrimaryMessage, WorkerMessage, WorkerPool } from '../server/workers.js';
import { type loadZone, loadZoneSteps } from '../zone/load.js';
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
        p.kind === 'unavailable' ? p.reason : undefined,
      ),
    () => server.fileZoneNames(),
  );
  server.notifyHook = (msg, from) => m.notify(msg, from);
  await m.start(cfg.secondaries, cfg.catalogs);
  return m;
}

/**
 * With workers, in the primary process: the one manager (NOTIFYs, timers, transfers, data-dir) tells
 * every worker to load each new version from its file in data-dir, and answers the NOTIFYs the
 * workers pass on. `notReady` also lists versions some worker does not serve yet.
 */
export async function attachSecondariesPrimary(
  pool: WorkerPool,
  cfg: ServerConfig,
  log: Logger,
): Promise<{ manager: SecondaryManager; sendAll: () => void; notReady: () => string[] } | null> {
  if (!hasSecondaries(cfg)) return null;
  const current = new Map<string, PrimaryMessage & { kind: 'secondary' }>();
  /** What each worker (by cluster id) serves, per zone: serial, or null for SERVFAIL/removed. */
  const served = new Map<number, Map<string, number | null>>();
  const manager = makeSecondaryManager(cfg, log, (zone, p) => {
    const m: PrimaryMessage & { kind: 'secondary' } = {
      kind: 'secondary',
      zone,
      state: p.kind,
      path: p.kind === 'zone' ? p.path : '',
      serial: p.kind === 'zone' ? p.zone.serial : 0,
      ...(p.kind === 'unavailable' ? { reason: p.reason } : {}),
    };
    if (p.kind === 'removed') current.delete(zone);
    else current.set(zone, m);
    pool.broadcast(m);
  });
  pool.onMessage = (w, m) => {
    if (m.kind === 'notify') {
      const out = manager.notify(Buffer.from(m.msg, 'base64'), m.from);
      w.send({
        kind: 'notify-reply',
        seq: m.seq,
        msg: out ? out.toString('base64') : null,
      } satisfies PrimaryMessage);
    } else if (m.kind === 'secondary-loaded') {
      let s = served.get(w.id);
      if (!s) served.set(w.id, (s = new Map()));
      s.set(m.zone, m.serial);
    }
  };
  await manager.start(cfg.secondaries, cfg.catalogs);
  return {
    manager,
    sendAll: () => {
      for (const m of current.values()) pool.broadcast(m);
    },
    notReady: () => {
      const out = manager.unready();
      const workers = pool.connected();
      for (const st of manager.status()) {
        if (st.state !== 'loaded' || st.role === 'catalog') continue;
        const behind = workers.filter((w) => served.get(w.id)?.get(st.zone) !== st.serial).length;
        if (behind > 0) out.push(`${st.zone} (serial ${st.serial} not loaded by ${behind} workers yet)`);
      }
      return out;
    },
  };
}

/**
 * In a worker: loads each version the primary announces (from data-dir, in the order announced, with
 * the same checks as any zone file) and swaps it in; passes NOTIFYs on to the primary.
 */
export function attachSecondariesWorker(
  server: PopdnsServer,
  cfg: ServerConfig,
  send: (m: WorkerMessage) => void,
): void {
  if (!hasSecondaries(cfg)) return;
  let seq = 0;
  const waiting = new Map<number, (b: Buffer | null) => void>();
  server.notifyHook = (msg, from) =>
    new Promise((resolve) => {
      const id = ++seq;
      const timer = setTimeout(() => {
        waiting.delete(id);
        resolve(null);
      }, 5000);
      waiting.set(id, (b) => {
        clearTimeout(timer);
        resolve(b);
      });
      send({ kind: 'notify', seq: id, msg: msg.toString('base64'), from });
    });
  const servedSerial = new Map<string, number | null>();
  let chain: Promise<void> = Promise.resolve();
  process.on('message', (m: PrimaryMessage) => {
    if (m.kind === 'notify-reply') {
      const cb = waiting.get(m.seq);
      waiting.delete(m.seq);
      cb?.(m.msg === null ? null : Buffer.from(m.msg, 'base64'));
      return;
    }
    if (m.kind !== 'secondary') return;
    chain = chain.then(async () => {
      if (m.state === 'zone') {
        if (servedSerial.get(m.zone) === m.serial) {
          send({ kind: 'secondary-loaded', zone: m.zone, serial: m.serial });
          return;
        }
        const { result } = await stepwiseLoad(m.path);
        if (!result.zone || result.zone.serial !== m.serial) {
          // A newer version replaced the file meanwhile: its own message follows.
          return;
        }
        server.setSecondaryZone(m.zone, result.zone);
        servedSerial.set(m.zone, m.serial);
        send({ kind: 'secondary-loaded', zone: m.zone, serial: m.serial });
      } else {
        server.setSecondaryZone(m.zone, m.state === 'unavailable' ? 'unavailable' : null, m.reason);
        servedSerial.set(m.zone, null);
        send({ kind: 'secondary-loaded', zone: m.zone, serial: null });
      }
    });
  });
}

/** loadZone in slices, letting the worker answer queries between them. */
async function stepwiseLoad(path: string): Promise<ReturnType<typeof loadZone>> {
  const steps = loadZoneSteps(path);
  let t = performance.now();
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    if (performance.now() - t > 5) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      t = performance.now();
    }
  }
}
