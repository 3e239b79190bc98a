/**
 * NOTIFY out (RFC 1996): after a zone's serial changes, tell every `transfer.notify` target, over UDP,
 * signed with the target's key (RFC 8945), and retry with back-off until a response acknowledges it
 * (RFC 1996 §3.6: a NOTIFY is retried until answered). A newer serial replaces a pending older NOTIFY
 * of the same zone to the same target.
 */
import { randomInt } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { CLASS, OPCODE, RCODE, rcodeToText, TYPE } from '../wire/constants.js';
import { type Name, nameToText } from '../wire/name.js';
import { type TsigKeyring, tsigSign, tsigVerify } from '../wire/tsig.js';
import type { NotifyTarget } from './config.js';
import type { XfrCounters } from './counters.js';
import type { Logger } from './primary.js';

export interface NotifyOptions {
  /** First wait for an answer, ms (doubles each retry). */
  firstTimeoutMs?: number;
  /** Longest wait between retries, ms. */
  maxTimeoutMs?: number;
  /** Give up after this many attempts (a newer serial starts over). */
  maxAttempts?: number;
}

interface Pending {
  id: number;
  timer: NodeJS.Timeout | null;
  resolve: (m: Buffer | null) => void;
}

/** Builds a NOTIFY request: opcode NOTIFY, AA, question ZONE SOA IN, the new SOA in the answer (§3.7). */
export function buildNotify(id: number, zone: Name, soa: { ttl: number; rdata: Uint8Array } | null): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt16BE(id, 0);
  head.writeUInt16BE((OPCODE.NOTIFY << 11) | 0x0400, 2);
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(soa ? 1 : 0, 6);
  const q = Buffer.alloc(4);
  q.writeUInt16BE(TYPE.SOA, 0);
  q.writeUInt16BE(CLASS.IN, 2);
  const parts = [head, Buffer.from(zone), q];
  if (soa) {
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0);
    rr.writeUInt16BE(TYPE.SOA, 2);
    rr.writeUInt16BE(CLASS.IN, 4);
    rr.writeUInt32BE(soa.ttl >>> 0, 6);
    rr.writeUInt16BE(soa.rdata.length, 10);
    parts.push(rr, Buffer.from(soa.rdata));
  }
  return Buffer.concat(parts);
}

export class NotifySender {
  private sock4: Socket | null = null;
  private sock6: Socket | null = null;
  private readonly waiting = new Map<string, Pending>();
  /** Latest serial wanted per zone+target; a running loop for an older serial stops. */
  private readonly wanted = new Map<string, number>();
  private closed = false;
  private readonly o: Required<NotifyOptions>;

  constructor(
    private readonly targets: readonly NotifyTarget[],
    private readonly keys: TsigKeyring,
    private readonly counters: XfrCounters,
    private readonly log: Logger,
    o: NotifyOptions = {},
  ) {
    this.o = { firstTimeoutMs: 1000, maxTimeoutMs: 60_000, maxAttempts: 20, ...o };
  }

  private socket(family: 4 | 6): Socket {
    const existing = family === 4 ? this.sock4 : this.sock6;
    if (existing) return existing;
    const s = createSocket(family === 4 ? 'udp4' : 'udp6');
    s.on('message', (m, rinfo) => {
      if (m.length < 12) return;
      const p = this.waiting.get(`${rinfo.address}|${rinfo.port}|${m.readUInt16BE(0)}`);
      if (p) p.resolve(m);
    });
    s.on('error', (e) => this.log.error(`notify socket: ${e.message} [POPDNS_E_NOTIFY]`));
    s.bind(0);
    s.unref();
    if (family === 4) this.sock4 = s;
    else this.sock6 = s;
    return s;
  }

  /** Sends NOTIFY for `zone` (serial `serial`) to every target; returns when all are settled. */
  notify(zone: Name, serial: number, soa: { ttl: number; rdata: Uint8Array } | null): Promise<void> {
    return Promise.all(this.targets.map((t) => this.notifyOne(t, zone, serial, soa))).then(() => {});
  }

  private async notifyOne(
    t: NotifyTarget,
    zone: Name,
    serial: number,
    soa: { ttl: number; rdata: Uint8Array } | null,
  ): Promise<void> {
    const zoneText = nameToText(zone);
    const wantKey = `${zoneText.toLowerCase()}|${t.host}|${t.port}`;
    this.wanted.set(wantKey, serial);
    const key = t.key ? this.keys.get(t.key) : undefined;
    let timeout = this.o.firstTimeoutMs;
    for (let attempt = 1; attempt <= this.o.maxAttempts; attempt++) {
      if (this.closed || this.wanted.get(wantKey) !== serial) return;
      const id = randomInt(0, 65536);
      let msg = buildNotify(id, zone, soa);
      let mac: Buffer | undefined;
      if (key) {
        const s = tsigSign(msg, key);
        msg = s.message;
        mac = s.mac;
      }
      const family = t.host.includes(':') ? 6 : 4;
      const sock = this.socket(family);
      const waitKey = `${t.host}|${t.port}|${id}`;
      const answer = await new Promise<Buffer | null>((resolve) => {
        const p: Pending = { id, timer: null, resolve: () => {} };
        p.resolve = (m) => {
          if (p.timer) clearTimeout(p.timer);
          this.waiting.delete(waitKey);
          resolve(m);
        };
        p.timer = setTimeout(() => p.resolve(null), timeout);
        this.waiting.set(waitKey, p);
        sock.send(msg, t.port, t.host, (err) => {
          if (err) p.resolve(null);
        });
      });
      if (answer) {
        const flags = answer.readUInt16BE(2);
        const rcode = flags & 0xf;
        const isResponse = (flags & 0x8000) !== 0 && ((flags >> 11) & 0xf) === OPCODE.NOTIFY;
        let verified = true;
        if (key && mac) verified = tsigVerify(answer, this.keys, { requestMac: mac }).status === 'ok';
        if (isResponse && rcode === RCODE.NOERROR && verified) {
          this.counters.notified('success');
          this.log.info(
            `notify sent: zone ${zoneText} serial ${serial} to ${t.to}${key ? ` key ${key.name}` : ''}: acknowledged (attempt ${attempt})`,
          );
          return;
        }
        this.counters.notified('failure');
        this.log.error(
          `notify to ${t.to} for zone ${zoneText} serial ${serial}: ${!isResponse ? 'not a NOTIFY response' : rcode !== RCODE.NOERROR ? `answered ${rcodeToText(rcode)}${rcode === RCODE.NOTAUTH || rcode === RCODE.REFUSED ? ' (does the target follow this zone from this address, with this key?)' : ''}` : 'response TSIG does not verify'} (attempt ${attempt}) [POPDNS_W_NOTIFY]`,
        );
      } else this.counters.notified('timeout');
      // Back-off before the next attempt (an answer with an error waits as long as a timeout).
      if (answer) await new Promise((r) => setTimeout(r, timeout).unref());
      timeout = Math.min(timeout * 2, this.o.maxTimeoutMs);
    }
    this.log.error(
      `notify to ${t.to} for zone ${zoneText} serial ${serial}: no acknowledgement after ${this.o.maxAttempts} attempts, giving up (the secondary's refresh timer still applies) [POPDNS_W_NOTIFY]`,
    );
  }

  close(): void {
    this.closed = true;
    for (const p of [...this.waiting.values()]) p.resolve(null);
    this.sock4?.close();
    this.sock6?.close();
    this.sock4 = this.sock6 = null;
  }
}
