/**
 * Where a control request runs: in this process (one server), or forwarded to the workers by the
 * primary (`--workers N`): `one` verbs to the first live worker, `each` verbs to every worker in
 * turn (so a reload rolls through them, and the others keep answering meanwhile).
 */
import type { ProcessInfo } from '../server/status.js';
import type { WorkerPool } from '../server/workers.js';
import type { CtlRequest } from './socket.js';
import { type CtlContext, type CtlOutput, getVerb, mergeOutputs, runLocal, unknownVerb } from './verbs.js';

export type Dispatch = (req: CtlRequest) => Promise<CtlOutput>;

/** Runs every request here, against this process's server. */
export function localDispatch(ctx: () => CtlContext): Dispatch {
  return (req) => runLocal(ctx(), req.verb, req.args);
}

const gone = (i: number): CtlOutput => {
  const msg = `worker ${i} exited before it answered [POPDNS_E_CTL]`;
  return { ok: false, text: `${msg}\n`, data: { error: msg } };
};

/** Forwards requests from the primary to its workers. */
export function poolDispatch(pool: WorkerPool, proc: () => ProcessInfo): Dispatch {
  return async (req) => {
    const verb = getVerb(req.verb);
    if (!verb) return unknownVerb(req.verb);
    const live = pool.liveWorkers();
    if (live.length === 0) {
      const msg = 'no worker is running [POPDNS_E_CTL]';
      return { ok: false, text: `${msg}\n`, data: { error: msg } };
    }
    const ask = async (i: number): Promise<CtlOutput> =>
      ((await pool.ctl(i, req.verb, req.args, proc())) as CtlOutput | null) ?? gone(i);
    if (verb.scope === 'one') return ask(live[0]!);
    const parts: CtlOutput[] = [];
    for (const i of live) parts.push(await ask(i));
    return (verb.merge ?? mergeOutputs)(parts);
  };
}
