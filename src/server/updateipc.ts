/**
 * RFC 2136 updates with `--workers N`: one writer for the whole pool, as transfers have one place.
 *
 * The worker that receives an UPDATE (UDP or TCP) does not answer it: it forwards the raw message,
 * the peer address and the transport to the primary process (`update`), which passes it, in arrival
 * order, to the writer — worker 0 while it lives, else the lowest-numbered live worker
 * (`update-apply`). The writer runs it through its own handler exactly as a single server would:
 * TSIG verified (RFC 8945 §5.2), policy checked, the update applied (src/update), journalled and
 * fsync'd, the response TSIG-signed (§5.3). It answers with the signed bytes and the zones whose
 * serial changed (`update-done`). The primary then tells every other live worker to catch up with
 * the update journal (`update-publish`), waits until each one serves the new version
 * (`update-applied`), and only then hands the response back to the receiving worker
 * (`update-reply`), which sends the bytes as they are. So once NOERROR is sent, a query to any
 * worker sees the change, and an update's prerequisites see every update acknowledged before it.
 *
 * Every wait is bounded: the receiving worker gives up after RECEIVER_WAIT_MS (the client gets no
 * answer and may retry), the primary after WRITER_WAIT_MS for the writer, and a worker that does not
 * confirm a new version within PUBLISH_WAIT_MS is killed (it would answer from an old version; it
 * loses nothing, the journal is on disk). A writer that dies mid-update answers nothing; the next
 * writer first catches up with the journal (an update journalled but never answered is kept, as
 * after a restart), so nothing acknowledged is lost and the journal never forks.
 */
import cluster, { type Worker } from 'node:cluster';
import { applyChangesets } from '../update/engine.js';
import type { ServerConfig } from './config.js';
import type { Logger, PopdnsServer } from './server.js';
import type { PrimaryMessage, UpdatePublish, WorkerMessage, WorkerPool } from './workers.js';

/** How long a receiving worker waits for the response before giving up (no answer is sent). */
export const RECEIVER_WAIT_MS = 12_000;
/** How long the primary waits for the writer's answer to one update. */
export const WRITER_WAIT_MS = 6_000;
/** How long the primary waits for one worker to confirm a new version before killing it. */
export const PUBLISH_WAIT_MS = 4_000;

/**
 * Brings the zone `origin` (lower case, trailing dot) of `server` up to the end of the update
 * journal. 'ok' when it serves the journal's last version (or the zone or journal is not there),
 * 'behind' when the journal does not continue from the served serial (a reload of the zone fixes it).
 */
export function catchUp(server: PopdnsServer, origin: string): 'ok' | 'behind' {
  const updates = server.updates;
  const zone = server.fileZone(origin);
  if (!updates || !zone) return 'ok';
  const last = updates.journal.lastSerial(origin);
  if (last === null || last === zone.serial) return 'ok';
  const cs = updates.journal.readChangesets(origin, zone.serial);
  const end = cs?.at(-1)?.added[0];
  if (!cs || !end) return 'behind';
  const r = applyChangesets(zone, cs, { ttl: end.ttl, rdata: end.rdata });
  if (typeof r === 'string') return 'behind';
  // A zone this process signs: the replayed (unsigned) version is re-signed where it changed, as the
  // writer did; failing that, a reload (which signs the replay like any load) brings it level.
  const owners = cs.flatMap((c) => [...c.removed, ...c.added].map((x) => x.owner));
  const signed = updates.resignReplayed(zone, r, owners);
  if (typeof signed === 'string') return 'behind';
  server.commitUpdate(zone, signed.zone);
  return 'ok';
}

/** catchUp for every zone that takes updates; the origins still behind. */
function catchUpAll(server: PopdnsServer): string[] {
  const behind: string[] = [];
  for (const origin of server.cfg.updates.keys())
    if (catchUp(server, origin.toLowerCase()) === 'behind') behind.push(origin);
  return behind;
}

/**
 * In a worker: forwards every UPDATE to the primary and sends back what comes; as the writer, applies
 * the updates the primary passes on; otherwise catches up with the journal when told (and after each
 * reload, which may have swapped in a version read before the latest update). No-op without `updates:`.
 */
export function attachUpdatesWorker(
  server: PopdnsServer,
  cfg: ServerConfig,
  send: (m: WorkerMessage) => void,
  log: Logger,
): void {
  const updates = server.updates;
  if (cfg.updates.size === 0 || !updates) return;
  let seq = 0;
  let repaired = false;
  const waiting = new Map<number, (b: Buffer | null) => void>();
  server.updateHook = (msg, from, tcp) =>
    new Promise((resolve) => {
      const id = ++seq;
      const timer = setTimeout(() => {
        waiting.delete(id);
        resolve(null);
      }, RECEIVER_WAIT_MS);
      waiting.set(id, (b) => {
        clearTimeout(timer);
        resolve(b);
      });
      send({ kind: 'update', seq: id, msg: msg.toString('base64'), peer: from, tcp });
    });
  server.onReloaded = () => void catchUpAll(server);
  process.on('message', (m: PrimaryMessage) => {
    if (m.kind === 'update-reply') {
      const cb = waiting.get(m.seq);
      waiting.delete(m.seq);
      cb?.(m.msg === null ? null : Buffer.from(m.msg, 'base64'));
    } else if (m.kind === 'update-apply') {
      // The writer. Taking over, it cuts a tail torn by a writer killed mid-write (what follows
      // would be unreadable). A previous writer may have journalled an update it never published:
      // serve the journal's end first, so this update's prerequisites see it and its changeset
      // continues it.
      if (!repaired) {
        repaired = true;
        for (const origin of cfg.updates.keys()) {
          try {
            updates.journal.repair(origin.toLowerCase());
          } catch (e) {
            log.error(`update: ${(e as Error).message} [POPDNS_E_UPDATE_JOURNAL]`);
          }
        }
      }
      const behind = catchUpAll(server);
      if (behind.length > 0) {
        log.error(
          `update: zones ${behind.join(' ')} do not continue the update journal; reloading them before taking updates [POPDNS_E_UPDATE_JOURNAL]`,
        );
        void server.reloadStepwise(behind);
        send({ kind: 'update-done', id: m.id, msg: null, changed: [] });
        return;
      }
      const before = new Map<string, number>();
      for (const o of cfg.updates.keys()) {
        const z = server.fileZone(o.toLowerCase());
        if (z) before.set(o.toLowerCase(), z.serial);
      }
      const out = server.handler.handle(Buffer.from(m.msg, 'base64'), m.tcp, m.peer);
      const changed: UpdatePublish[] = [];
      for (const [origin, serial] of before) {
        const z = server.fileZone(origin);
        if (z && z.serial !== serial)
          changed.push({
            origin,
            serial: z.serial,
            ttl: z.soa.ttl,
            rdata: Array.from(z.soa.rdatas[0] ?? []),
          });
      }
      send({
        kind: 'update-done',
        id: m.id,
        msg: out ? Buffer.from(out).toString('base64') : null,
        changed,
      });
    } else if (m.kind === 'update-publish') {
      void (async () => {
        let ok = true;
        for (const c of m.changed) {
          if (catchUp(server, c.origin) === 'ok') continue;
          // The journal was started over (a file edit rebased it): read file and journal again.
          await server.reloadStepwise([c.origin]);
          if (catchUp(server, c.origin) !== 'ok') ok = false;
        }
        send({ kind: 'update-applied', id: m.id, ok });
      })();
    }
  });
}

interface Request {
  /** The worker that received the UPDATE, and its number for the answer. */
  from: Worker;
  seq: number;
  writer: Worker;
  timer: NodeJS.Timeout;
  /** Resolved when the request is over (answered, given up, or its writer died). */
  done: () => void;
  finished: Promise<void>;
}

/** What the primary side offers the rest of the primary (serve.ts). */
export interface UpdateRouter {
  /**
   * Resolves when every update pending now is over (answered or given up), or after `maxMs`: the
   * NOTIFY for an update's serial waits for it, so a secondary never asks a worker that lags.
   */
  settled(maxMs?: number): Promise<void>;
  /**
   * Called for each new version once every live worker serves it, with `first` true when worker 0
   * (which reports serial changes itself, for NOTIFY) was the writer.
   */
  onCommitted: ((c: UpdatePublish, first: boolean) => void) | null;
}

/**
 * In the primary of a worker pool: routes each UPDATE to the one writer, publishes each new version to
 * every other worker and answers the receiving worker once they all serve it. Null without `updates:`.
 * Registers on node:cluster's message and exit events (call before the workers start).
 */
export function attachUpdatesPrimary(pool: WorkerPool, cfg: ServerConfig, log: Logger): UpdateRouter | null {
  if (cfg.updates.size === 0) return null;
  let nextId = 0;
  const atWriter = new Map<number, Request>();
  /** Every request not over yet (at the writer, or waiting for confirmations). */
  const inFlight = new Set<Promise<void>>();
  /** Publications waiting for confirmations: id → workers still to confirm, and what to do then. */
  const publishing = new Map<number, { left: Set<Worker>; then: () => void; timer: NodeJS.Timeout }>();

  const reply = (r: Request, msg: string | null): void => {
    clearTimeout(r.timer);
    if (r.from.isConnected()) r.from.send({ kind: 'update-reply', seq: r.seq, msg } satisfies PrimaryMessage);
    r.done();
  };

  /** The writer: worker 0 (where the IXFR history is written) while it lives, else the lowest live. */
  const writer = (): Worker | null => pool.all().find((w) => w.isConnected() && !w.isDead()) ?? null;

  const route = (from: Worker, m: WorkerMessage & { kind: 'update' }): void => {
    const w = writer();
    if (!w) {
      from.send({ kind: 'update-reply', seq: m.seq, msg: null } satisfies PrimaryMessage);
      return;
    }
    const id = ++nextId;
    let done = (): void => {};
    const finished = new Promise<void>((resolve) => (done = resolve));
    inFlight.add(finished);
    void finished.then(() => inFlight.delete(finished));
    const r: Request = {
      from,
      seq: m.seq,
      writer: w,
      done,
      finished,
      timer: setTimeout(() => {
        atWriter.delete(id);
        log.error(
          `update from ${m.peer}: no answer from the writer within ${WRITER_WAIT_MS} ms; none sent [POPDNS_E_UPDATE_WRITER]`,
        );
        reply(r, null);
      }, WRITER_WAIT_MS),
    };
    atWriter.set(id, r);
    w.send({ kind: 'update-apply', id, msg: m.msg, peer: m.peer, tcp: m.tcp } satisfies PrimaryMessage);
  };

  const publish = (w: Worker, changed: UpdatePublish[], then: () => void): void => {
    const others = changed.length === 0 ? [] : pool.all().filter((x) => x !== w && x.isConnected());
    if (others.length === 0) return then();
    const id = ++nextId;
    const left = new Set(others);
    const timer = setTimeout(() => {
      publishing.delete(id);
      for (const x of left) {
        log.error(
          `update: worker ${x.process.pid} did not confirm serving ${changed.map((c) => `${c.origin} serial ${c.serial}`).join(', ')} within ${PUBLISH_WAIT_MS} ms; killed so it cannot answer from an old version [POPDNS_E_UPDATE_PUBLISH]`,
        );
        x.kill('SIGKILL');
      }
      then();
    }, PUBLISH_WAIT_MS);
    publishing.set(id, { left, then, timer });
    for (const x of others) x.send({ kind: 'update-publish', id, changed } satisfies PrimaryMessage);
  };

  const confirmed = (id: number, w: Worker): void => {
    const p = publishing.get(id);
    if (!p || !p.left.delete(w) || p.left.size > 0) return;
    clearTimeout(p.timer);
    publishing.delete(id);
    p.then();
  };

  cluster.on('message', (w: Worker, m: WorkerMessage) => {
    if (m.kind === 'update') route(w, m);
    else if (m.kind === 'update-done') {
      const r = atWriter.get(m.id);
      atWriter.delete(m.id);
      if (r) clearTimeout(r.timer);
      // Published even when the request was given up: the change is journalled and will be served.
      publish(w, m.changed, () => {
        if (r) reply(r, m.msg);
        const first = pool.all()[0] === w;
        for (const c of m.changed) router.onCommitted?.(c, first);
      });
    } else if (m.kind === 'update-applied') {
      if (!m.ok) {
        log.error(
          `update: worker ${w.process.pid} could not load the new version; killed so it cannot answer from an old one [POPDNS_E_UPDATE_PUBLISH]`,
        );
        w.kill('SIGKILL');
      }
      confirmed(m.id, w);
    }
  });
  cluster.on('exit', (w: Worker) => {
    // A dead worker confirms nothing and serves nothing: stop waiting for it.
    for (const id of [...publishing.keys()]) confirmed(id, w);
    // Updates at a writer that died: no answer (the client may retry; the next writer catches up).
    for (const [id, r] of atWriter) {
      if (r.writer !== w) continue;
      atWriter.delete(id);
      reply(r, null);
    }
  });
  const router: UpdateRouter = {
    onCommitted: null,
    settled: async (maxMs = WRITER_WAIT_MS + PUBLISH_WAIT_MS) => {
      const pending = [...inFlight];
      if (pending.length === 0) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(pending),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, maxMs))),
      ]);
      clearTimeout(timer);
    },
  };
  return router;
}
