/**
 * Where the control socket lives when the config says nothing (`control:`). The server and
 * `popdns ctl` compute it the same way, so on one host they meet without configuration:
 * `/run/popdns/popdns.sock` when /run/popdns exists (systemd's RuntimeDirectory=popdns creates it),
 * else `$XDG_RUNTIME_DIR/popdns.sock` (a desktop session), else `<tmpdir>/popdns-<uid>.sock`.
 */
import { statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const RUN_DIR = '/run/popdns';

export function defaultControlSocket(): string {
  try {
    if (statSync(RUN_DIR).isDirectory()) return join(RUN_DIR, 'popdns.sock');
  } catch {
    // no /run/popdns: not a systemd install
  }
  const xdg = process.env.XDG_RUNTIME_DIR;
  if (xdg) return join(xdg, 'popdns.sock');
  return join(tmpdir(), `popdns-${process.getuid?.() ?? 'user'}.sock`);
}
