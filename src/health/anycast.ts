/**
 * Announce/withdraw through BIRD, the "hybrid" way: the wanted state is written to an include file
 * (`define ANYCAST4_DISABLED = 1;`, read by `disabled ANYCAST4_DISABLED;` in the static protocol) so a
 * BIRD restart or `birdc configure` comes back in the state the probe wants, and it is applied at once
 * with `enable`/`disable` over the control socket. See deploy/bird/bird.conf.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { BirdClient, setProtocol } from './bird.js';
import type { AnycastControl } from './checker.js';
import { type AnycastPrefix, disabledConstant } from './config.js';

export function stateFileText(prefixes: AnycastPrefix[], announce: boolean): string {
  const lines = [
    '# Written by popdns health: 1 = withdrawn, 0 = announced. Do not edit; see deploy/bird/bird.conf.',
    ...prefixes.map((p) => `define ${disabledConstant(p.protocol)} = ${announce ? 0 : 1}; # ${p.prefix}`),
  ];
  return `${lines.join('\n')}\n`;
}

/** Writes `path` atomically (temp file + rename) unless it already has `text`. */
export function writeStateFile(path: string, text: string): void {
  try {
    if (readFileSync(path, 'utf8') === text) return;
  } catch {
    // missing: write it
  }
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o644 });
  renameSync(tmp, path);
}

export class BirdAnycast implements AnycastControl {
  constructor(
    private readonly socket: string,
    private readonly stateFile: string | null,
    private readonly prefixes: AnycastPrefix[],
    private readonly timeoutMs: number,
  ) {}

  async apply(announce: boolean): Promise<string[]> {
    if (this.prefixes.length === 0) return ['no prefixes configured'];
    let fileError: Error | null = null;
    if (this.stateFile) {
      try {
        writeStateFile(this.stateFile, stateFileText(this.prefixes, announce));
      } catch (e) {
        fileError = e as Error; // still switch BIRD at once; report the file after
      }
    }
    const bird = await BirdClient.open(this.socket, this.timeoutMs);
    try {
      const said: string[] = [];
      for (const p of this.prefixes) said.push(await setProtocol(bird, p.protocol, announce));
      if (fileError) throw new Error(`${this.stateFile}: ${fileError.message} [POPDNS_E_STATE_FILE]`);
      return said;
    } finally {
      bird.close();
    }
  }
}
