/**
 * dnstap (https://dnstap.info, dnstap.proto) over Frame Streams on a Unix socket: AUTH_QUERY and
 * AUTH_RESPONSE messages for the queries this process answers.
 *
 * Each process that answers queries (the single server, or every worker) has its own connection to
 * the collector, as each Knot/BIND thread has its own queue: no IPC on the query path, and a
 * collector sees one Frame Streams connection per worker (fstrm_capture and dnstap-receiver accept
 * many).
 *
 * Query path: `udp()`/`tcp()` cost one counter step when the query is not sampled; a sampled query
 * stores references to the query and response bytes (TCP queries are copied, their buffer is reused)
 * in a bounded ring. Encoding (protobufjs) and writing happen later, in a setImmediate batch, and only
 * while the socket's buffered bytes stay under WRITE_HIGH_WATER. When the collector is absent, slow or
 * stopped reading, the ring fills and further messages are dropped and counted
 * (popdns_dnstap_messages_total{result="dropped"}): the query path never waits and memory stays
 * bounded (QUEUE_MAX messages, QUEUE_MAX_BYTES of DNS messages, WRITE_HIGH_WATER in the socket).
 */
import { connect, type Socket } from 'node:net';
import protobuf from 'protobufjs';
import type { QueryTap } from '../server/tap.js';
import { parseIp } from '../wire/ipaddr.js';
import type { DnstapConfig } from './config.js';
import { controlFrame, FSTRM, readControlFrames } from './framestream.js';

/** The Frame Streams content type of dnstap. */
export const CONTENT_TYPE = 'protobuf:dnstap.Dnstap';

export const DNSTAP_SENT = 0;
export const DNSTAP_DROPPED = 1;

/** Messages waiting for the collector, at most (each query is one entry, with one or two messages). */
export const QUEUE_MAX = 8192;
/** DNS message bytes held by the queue, at most. */
export const QUEUE_MAX_BYTES = 8 * 1024 * 1024;
/** Bytes buffered in the socket before we stop writing and let the queue take the pressure. */
export const WRITE_HIGH_WATER = 1024 * 1024;
/** Reconnect back-off: first delay and cap, milliseconds (doubles after each failure; fstrm retries every 5 s). */
export const RECONNECT_MIN_MS = 500;
export const RECONNECT_MAX_MS = 5000;
/** A collector that does not ACCEPT (or FINISH after our STOP) within this many ms is dropped. */
const HANDSHAKE_MS = 5000;
const STOP_MS = 1000;
/** Entries encoded per write. */
const BATCH = 256;

/**
 * dnstap.proto (https://github.com/dnstap/dnstap.pb), the parts an authoritative server writes, with
 * upstream's field numbers; proto2, so enum fields are written even when they hold their first value.
 */
const SCHEMA = `
syntax = "proto2";
package dnstap;
message Dnstap {
  optional bytes identity = 1;
  optional bytes version = 2;
  optional bytes extra = 3;
  enum Type { MESSAGE = 1; }
  optional Message message = 14;
  required Type type = 15;
}
enum SocketFamily { INET = 1; INET6 = 2; }
enum SocketProtocol { UDP = 1; TCP = 2; DOT = 3; DOH = 4; DNSCryptUDP = 5; DNSCryptTCP = 6; DOQ = 7; }
message Message {
  enum Type {
    AUTH_QUERY = 1; AUTH_RESPONSE = 2; RESOLVER_QUERY = 3; RESOLVER_RESPONSE = 4;
    CLIENT_QUERY = 5; CLIENT_RESPONSE = 6; FORWARDER_QUERY = 7; FORWARDER_RESPONSE = 8;
    STUB_QUERY = 9; STUB_RESPONSE = 10; TOOL_QUERY = 11; TOOL_RESPONSE = 12;
    UPDATE_QUERY = 13; UPDATE_RESPONSE = 14;
  }
  required Type type = 1;
  optional SocketFamily socket_family = 2;
  optional SocketProtocol socket_protocol = 3;
  optional bytes query_address = 4;
  optional bytes response_address = 5;
  optional uint32 query_port = 6;
  optional uint32 response_port = 7;
  optional uint64 query_time_sec = 8;
  optional fixed32 query_time_nsec = 9;
  optional bytes query_message = 10;
  optional bytes query_zone = 11;
  optional uint64 response_time_sec = 12;
  optional fixed32 response_time_nsec = 13;
  optional bytes response_message = 14;
}
`;

const root = protobuf.parse(SCHEMA, { keepCase: false }).root;
/** The dnstap.Dnstap message type (protobufjs reflection; encode with DnstapType.encode(obj).finish()). */
export const DnstapType = root.lookupType('dnstap.Dnstap');

export const MESSAGE_TYPE = { AUTH_QUERY: 1, AUTH_RESPONSE: 2 } as const;
export const SOCKET_FAMILY = { INET: 1, INET6: 2 } as const;
export const SOCKET_PROTOCOL = { UDP: 1, TCP: 2 } as const;

/** One sampled query waiting in the ring. */
interface Entry {
  protocol: number;
  client: string;
  clientPort: number;
  server: string;
  serverPort: number;
  /** Wall-clock time, milliseconds since the epoch (fractional). */
  time: number;
  query: Buffer;
  response: Buffer | null;
}

export interface DnstapLogger {
  info(msg: string): void;
  error(msg: string): void;
}

type State = 'idle' | 'connecting' | 'handshake' | 'running' | 'stopping' | 'closed';

/**
 * The dnstap writer of one process. `start()` connects (and keeps reconnecting with back-off);
 * `stop()` sends STOP and waits (bounded) for FINISH. `counters` is [sent, dropped] (messages).
 */
export class Dnstap implements QueryTap {
  private readonly ring: (Entry | undefined)[] = new Array<Entry | undefined>(QUEUE_MAX);
  private head = 0;
  private count = 0;
  private bytes = 0;
  private readonly perEntry: number;
  private readonly sample: number;
  private seq = 0;
  private state: State = 'idle';
  private socket: Socket | null = null;
  private rx: Buffer = Buffer.alloc(0);
  private timer: NodeJS.Timeout | null = null;
  private backoff = RECONNECT_MIN_MS;
  private flushScheduled = false;
  /** Whether the last connection attempt failed (so a failure is logged once, not on every retry). */
  private failing = false;
  private readonly identity: Buffer;
  private readonly version: Buffer;
  private readonly ipBuf = new Uint8Array(16);
  private finished: (() => void) | null = null;

  constructor(
    readonly cfg: DnstapConfig,
    ids: { identity: string; version: string },
    private readonly counters: Float64Array,
    private readonly log: DnstapLogger,
  ) {
    this.sample = cfg.sample;
    this.perEntry = (cfg.queries ? 1 : 0) + (cfg.responses ? 1 : 0);
    this.identity = Buffer.from(ids.identity, 'utf8');
    this.version = Buffer.from(ids.version, 'utf8');
  }

  /** Logs a UDP query and its response (null: none sent). `msg` must not be reused by the caller. */
  udp(
    msg: Buffer,
    out: Buffer | null,
    client: string,
    clientPort: number,
    server: string,
    serverPort: number,
  ): void {
    if (this.sample !== 1 && ++this.seq < this.sample) return;
    this.seq = 0;
    this.push(SOCKET_PROTOCOL.UDP, msg, out, client, clientPort, server, serverPort);
  }

  /** Logs a TCP query (copied: the connection's buffer is reused) and its response. */
  tcp(msg: Buffer, out: Buffer | null, s: Socket): void {
    if (this.sample !== 1 && ++this.seq < this.sample) return;
    this.seq = 0;
    const q = this.cfg.queries || this.cfg.responses ? Buffer.from(msg) : msg;
    this.push(
      SOCKET_PROTOCOL.TCP,
      q,
      out,
      s.remoteAddress ?? '',
      s.remotePort ?? 0,
      s.localAddress ?? '',
      s.localPort ?? 0,
    );
  }

  private push(
    protocol: number,
    query: Buffer,
    response: Buffer | null,
    client: string,
    clientPort: number,
    server: string,
    serverPort: number,
  ): void {
    const size = query.length + (response === null ? 0 : response.length);
    if (this.count === QUEUE_MAX || this.bytes + size > QUEUE_MAX_BYTES || this.state === 'closed') {
      this.counters[DNSTAP_DROPPED]! += this.perEntry;
      return;
    }
    const time = performance.timeOrigin + performance.now();
    this.ring[(this.head + this.count) % QUEUE_MAX] = {
      protocol,
      client,
      clientPort,
      server,
      serverPort,
      time,
      query,
      response,
    };
    this.count++;
    this.bytes += size;
    if (this.state === 'running' && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
  }

  /** Messages waiting in the queue (for tests and status). */
  get queued(): number {
    return this.count;
  }

  /** True while a collector is connected and has accepted the stream. */
  get connected(): boolean {
    return this.state === 'running';
  }

  /** Connects to the collector; failures are retried with back-off until stop(). */
  start(): void {
    if (this.state !== 'idle') return;
    this.connect();
  }

  private connect(): void {
    this.timer = null;
    this.state = 'connecting';
    this.rx = Buffer.alloc(0);
    const s = connect({ path: this.cfg.socket });
    this.socket = s;
    s.on('connect', () => {
      this.state = 'handshake';
      s.write(controlFrame(FSTRM.READY, [CONTENT_TYPE]));
      this.arm(HANDSHAKE_MS, s);
    });
    s.on('data', (d: Buffer) => this.onData(s, d));
    s.on('drain', () => this.scheduleFlush());
    s.on('error', (e) => this.lost(s, e.message));
    s.on('close', () => this.lost(s, 'connection closed'));
  }

  private arm(ms: number, s: Socket): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.state === 'stopping') this.finish();
      else s.destroy(new Error('no ACCEPT from the collector'));
    }, ms);
    this.timer.unref();
  }

  private onData(s: Socket, d: Buffer): void {
    this.rx = this.rx.length === 0 ? d : Buffer.concat([this.rx, d]);
    let frames;
    try {
      const r = readControlFrames(this.rx);
      frames = r.frames;
      this.rx = this.rx.subarray(r.used);
    } catch (e) {
      s.destroy(new Error(`bad Frame Streams control frame: ${(e as Error).message}`));
      return;
    }
    for (const f of frames) {
      if (f.type === FSTRM.ACCEPT && this.state === 'handshake') {
        if (f.contentTypes.length > 0 && !f.contentTypes.includes(CONTENT_TYPE)) {
          s.destroy(
            new Error(`collector does not accept ${CONTENT_TYPE} (offers ${f.contentTypes.join(', ')})`),
          );
          return;
        }
        if (this.timer) clearTimeout(this.timer);
        this.timer = null;
        s.write(controlFrame(FSTRM.START, [CONTENT_TYPE]));
        this.state = 'running';
        this.backoff = RECONNECT_MIN_MS;
        this.failing = false;
        this.log.info(`dnstap: connected to ${this.cfg.socket}`);
        this.scheduleFlush();
      } else if (f.type === FSTRM.FINISH) {
        if (this.state === 'stopping') this.finish();
        else s.destroy(new Error('collector sent FINISH'));
        return;
      }
    }
  }

  /** The connection failed or ended: drop it and, unless stopping, reconnect after the back-off. */
  private lost(s: Socket, why: string): void {
    if (this.socket !== s) return;
    this.socket = null;
    s.destroy();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.state === 'stopping' || this.state === 'closed') {
      this.finish();
      return;
    }
    const wasRunning = this.state === 'running';
    this.state = 'idle';
    if (wasRunning || !this.failing) {
      this.log.error(
        `warning: dnstap: collector ${this.cfg.socket}: ${why}; retrying with back-off, ` +
          `messages are dropped once ${QUEUE_MAX} are queued [POPDNS_W_DNSTAP]`,
      );
    }
    this.failing = true;
    this.timer = setTimeout(() => this.connect(), this.backoff);
    this.timer.unref();
    this.backoff = Math.min(this.backoff * 2, RECONNECT_MAX_MS);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.count === 0) return;
    this.flushScheduled = true;
    setImmediate(this.flush);
  }

  /** Encodes and writes queued messages while the socket takes them. */
  private readonly flush = (): void => {
    this.flushScheduled = false;
    const s = this.socket;
    if (s === null || (this.state !== 'running' && this.state !== 'stopping')) return;
    while (this.count > 0 && s.writableLength < WRITE_HIGH_WATER) {
      const frames: Uint8Array[] = [];
      let messages = 0;
      for (let n = 0; n < BATCH && this.count > 0; n++) {
        const e = this.ring[this.head]!;
        this.ring[this.head] = undefined;
        this.head = (this.head + 1) % QUEUE_MAX;
        this.count--;
        this.bytes -= e.query.length + (e.response === null ? 0 : e.response.length);
        if (this.cfg.queries) {
          frames.push(this.encode(e, MESSAGE_TYPE.AUTH_QUERY));
          messages++;
        }
        if (this.cfg.responses && e.response !== null) {
          frames.push(this.encode(e, MESSAGE_TYPE.AUTH_RESPONSE));
          messages++;
        }
      }
      let len = 0;
      for (const f of frames) len += 4 + f.length;
      const b = Buffer.allocUnsafe(len);
      let at = 0;
      for (const f of frames) {
        b.writeUInt32BE(f.length, at);
        b.set(f, at + 4);
        at += 4 + f.length;
      }
      s.write(b);
      this.counters[DNSTAP_SENT]! += messages;
    }
  };

  /** One Dnstap protobuf (dnstap.proto) of `type` for entry `e`; no response message when none was sent. */
  private encode(e: Entry, type: number): Uint8Array {
    const sec = Math.floor(e.time / 1000);
    const nsec = Math.round((e.time - sec * 1000) * 1e6) % 1e9;
    const n = parseIp(e.client, this.ipBuf);
    const queryAddress = Buffer.from(this.ipBuf.subarray(0, n));
    const m = parseIp(e.server, this.ipBuf);
    const message: Record<string, unknown> = {
      type,
      socketFamily: n === 16 ? SOCKET_FAMILY.INET6 : SOCKET_FAMILY.INET,
      socketProtocol: e.protocol,
      queryAddress,
      queryPort: e.clientPort,
      queryTimeSec: sec,
      queryTimeNsec: nsec,
    };
    // The server's address only when the socket is bound to one (not 0.0.0.0 / ::) of the same family.
    if (m === n && this.ipBuf.subarray(0, m).some((x) => x !== 0)) {
      message.responseAddress = Buffer.from(this.ipBuf.subarray(0, m));
      message.responsePort = e.serverPort;
    }
    // As Knot and BIND: the query's bytes in AUTH_QUERY, the response's in AUTH_RESPONSE.
    if (type === MESSAGE_TYPE.AUTH_QUERY) message.queryMessage = e.query;
    else {
      message.responseTimeSec = sec;
      message.responseTimeNsec = nsec;
      message.responseMessage = e.response;
    }
    return DnstapType.encode({ identity: this.identity, version: this.version, type: 1, message }).finish();
  }

  /**
   * Stops: writes what the socket takes of the queue, sends STOP, and waits up to a second for the
   * collector's FINISH. Resolves when the connection is closed. Messages still queued are dropped
   * (and counted).
   */
  stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const s = this.socket;
    if (s === null || this.state !== 'running') {
      this.state = 'closed';
      if (s !== null) {
        this.socket = null;
        s.destroy();
      }
      this.dropQueued();
      return Promise.resolve();
    }
    this.state = 'stopping';
    this.flush();
    this.dropQueued();
    return new Promise<void>((resolve) => {
      this.finished = resolve;
      s.write(controlFrame(FSTRM.STOP));
      this.arm(STOP_MS, s);
    });
  }

  private dropQueued(): void {
    this.counters[DNSTAP_DROPPED]! += this.count * this.perEntry;
    this.ring.fill(undefined);
    this.count = 0;
    this.bytes = 0;
  }

  private finish(): void {
    this.state = 'closed';
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const s = this.socket;
    this.socket = null;
    // After FINISH (or its timeout) nothing more is said: a collector that stopped reading must not
    // keep the socket and its unsent bytes alive.
    if (s !== null) s.destroy();
    const f = this.finished;
    this.finished = null;
    if (f) f();
  }
}
