/**
 * Frame Streams (https://github.com/farsightsec/fstrm, "Frame Streams Control Frames"): the framing
 * dnstap uses on a stream socket. A data frame is a 32-bit big-endian length and the payload; a
 * control frame is an escape (length 0), its own 32-bit length, a 32-bit type and fields, of which the
 * only one defined is CONTENT_TYPE (1). Bidirectional handshake, writer first: READY → ACCEPT → START,
 * data frames, then STOP → FINISH.
 */

export const FSTRM = { ACCEPT: 1, START: 2, STOP: 3, READY: 4, FINISH: 5 } as const;
const FIELD_CONTENT_TYPE = 1;
/** The largest control frame we accept from a collector (fstrm's own limit is 512 bytes). */
const MAX_CONTROL = 512;

/** One control frame, escape included, carrying `contentTypes` (none for STOP/FINISH). */
export function controlFrame(type: number, contentTypes: string[] = []): Buffer {
  const fields = contentTypes.map((t) => Buffer.from(t, 'utf8'));
  const len = 4 + fields.reduce((n, f) => n + 8 + f.length, 0);
  const b = Buffer.alloc(8 + len);
  b.writeUInt32BE(0, 0);
  b.writeUInt32BE(len, 4);
  b.writeUInt32BE(type, 8);
  let at = 12;
  for (const f of fields) {
    b.writeUInt32BE(FIELD_CONTENT_TYPE, at);
    b.writeUInt32BE(f.length, at + 4);
    f.copy(b, at + 8);
    at += 8 + f.length;
  }
  return b;
}

export interface ControlFrame {
  type: number;
  contentTypes: string[];
}

/**
 * Reads the control frames at the start of `buf` (what a collector sends: ACCEPT, FINISH). Returns
 * the frames and the bytes consumed; a partial frame is left for the next read. Throws on anything
 * that is not a well-formed control frame (a collector never sends data frames).
 */
export function readControlFrames(buf: Buffer): { frames: ControlFrame[]; used: number } {
  const frames: ControlFrame[] = [];
  let at = 0;
  while (buf.length - at >= 8) {
    if (buf.readUInt32BE(at) !== 0) throw new Error('collector sent a data frame');
    const len = buf.readUInt32BE(at + 4);
    if (len < 4 || len > MAX_CONTROL) throw new Error(`control frame of ${len} bytes`);
    if (buf.length - at - 8 < len) break;
    const end = at + 8 + len;
    const type = buf.readUInt32BE(at + 8);
    const contentTypes: string[] = [];
    let p = at + 12;
    while (p < end) {
      if (end - p < 8) throw new Error('truncated control field');
      const ftype = buf.readUInt32BE(p);
      const flen = buf.readUInt32BE(p + 4);
      if (end - p - 8 < flen) throw new Error('truncated control field');
      if (ftype === FIELD_CONTENT_TYPE) contentTypes.push(buf.toString('utf8', p + 8, p + 8 + flen));
      p += 8 + flen;
    }
    frames.push({ type, contentTypes });
    at = end;
  }
  return { frames, used: at };
}
