/**
 * The control verbs (`popdns ctl VERB …`) and their registry. A verb is one object: its name,
 * usage, where it runs when the server has workers, and `run`, which does the work inside a serving
 * process and returns both the text for people and the data for `--json`. Adding a verb (transfer
 * status, retransfer, notify, key status …) is one `registerVerb({...})` in a module imported by
 * src/ctl/index.ts; the socket, the client and the worker plumbing need no change.
 */
import type { PopdnsServer } from '../server/server.js';
import type { ProcessInfo } from '../server/status.js';

/** What a verb runs against: the server of this process, and what the serving process knows. */
export interface CtlContext {
  server: PopdnsServer;
  proc: ProcessInfo;
}

/** A verb's answer: `ok` decides the exit code of `popdns ctl` (0 or 1). */
export interface CtlOutput {
  ok: boolean;
  /** For people: printed as it is (ends with a newline, or is empty). */
  text: string;
  /** For `--json`: any JSON value. */
  data: unknown;
  /** The request itself was wrong (unknown verb, bad arguments): `popdns ctl` exits 2. */
  usage?: boolean;
}

export interface CtlVerb {
  /** The word on the command line, e.g. `zone-dump`. */
  name: string;
  /** Arguments after the verb, for help: `[ZONE…]`. */
  usage: string;
  /** One line for `popdns ctl --help`. */
  summary: string;
  /**
   * With `--workers N`: `one` runs in one worker (read-only verbs; every worker serves the same
   * zones), `each` in every worker one after another, and `merge` folds their answers into one.
   */
  scope: 'one' | 'each';
  run(ctx: CtlContext, args: string[]): Promise<CtlOutput>;
  /** Folds the answers of every worker (scope `each`); default: see mergeOutputs. */
  merge?(parts: CtlOutput[]): CtlOutput;
}

const registry = new Map<string, CtlVerb>();

/** Adds a verb; a second verb with the same name is a programming error. */
export function registerVerb(v: CtlVerb): void {
  if (registry.has(v.name)) throw new Error(`control verb ${v.name} registered twice`);
  registry.set(v.name, v);
}

export function getVerb(name: string): CtlVerb | undefined {
  return registry.get(name);
}

/** Every verb, sorted by name. */
export function listVerbs(): CtlVerb[] {
  return [...registry.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
}

/**
 * The default merge of `each` verbs: ok only if every worker said ok; the first worker's text when
 * all agree, otherwise each worker's text under `worker N:`; data `{ workers: [...] }`.
 */
export function mergeOutputs(parts: CtlOutput[]): CtlOutput {
  const ok = parts.length > 0 && parts.every((p) => p.ok);
  const same = parts.every((p) => p.text === parts[0]?.text);
  const text = same
    ? (parts[0]?.text ?? '')
    : parts.map((p, i) => `worker ${i}:\n${p.text.replace(/^/gm, '  ')}`).join('');
  return { ok, text, data: { workers: parts.map((p) => p.data) } };
}

/** Runs a verb in this process (a single server, or inside a worker). Unknown verbs are not ok. */
export async function runLocal(ctx: CtlContext, verb: string, args: string[]): Promise<CtlOutput> {
  const v = registry.get(verb);
  if (!v) return unknownVerb(verb);
  try {
    return await v.run(ctx, args);
  } catch (e) {
    const msg = `${verb} failed: ${(e as Error).message} [POPDNS_E_CTL]`;
    return { ok: false, text: `${msg}\n`, data: { error: msg } };
  }
}

export function unknownVerb(verb: string): CtlOutput {
  const msg = `unknown command "${verb}" (known: ${listVerbs()
    .map((v) => v.name)
    .join(', ')}) [POPDNS_E_CTL_USAGE]`;
  return { ok: false, text: `${msg}\n`, data: { error: msg }, usage: true };
}
