import { isIP } from 'node:net';

/** Listen addresses: `127.0.0.1:1053`, `[::1]:1053`, `0.0.0.0:53`. */
export interface ListenAddr {
  host: string;
  port: number;
  family: 4 | 6;
}

export function parseListen(text: string): ListenAddr {
  const m = /^\[([0-9a-fA-F:.]+)\]:([0-9]{1,5})$/.exec(text) ?? /^([0-9.]+):([0-9]{1,5})$/.exec(text);
  if (!m || Number(m[2]) > 65535 || isIP(m[1]!) === 0) {
    throw new Error(`listen address "${text}" must be IPv4:PORT or [IPv6]:PORT [POPDNS_E_CONFIG]`);
  }
  const host = m[1]!;
  return { host, port: Number(m[2]), family: host.includes(':') ? 6 : 4 };
}

export function formatListen(a: { host: string; port: number }): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
