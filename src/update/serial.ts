/** The SOA serial an accepted update moves to (RFC 1982 arithmetic), keeping the zone's serial style. */
import { serialNewer } from '../zone/serial.js';

/** True when `s` reads as a date serial YYYYMMDDnn with a real date. */
function isDateSerial(s: number): boolean {
  if (s < 1970010100 || s > 2099123199) return false;
  const day = Math.floor(s / 100) % 100;
  const month = Math.floor(s / 10000) % 100;
  return month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

/** Three years, seconds: a serial this close to the clock is taken for a Unix time. */
const UNIXTIME_WINDOW = 3 * 365 * 86400;

/**
 * The next serial after `old` (RFC 1982: always newer than `old`). Date-style serials (YYYYMMDDnn)
 * move to today's date with nn = 00 when that is newer, else count up; Unix-time serials move to
 * `now` (seconds) when that is newer, else count up; any other serial counts up by one (mod 2^32).
 */
export function nextSerial(old: number, now: number = Math.floor(Date.now() / 1000)): number {
  const plus = (old + 1) >>> 0;
  if (isDateSerial(old)) {
    const d = new Date(now * 1000);
    const today = (d.getUTCFullYear() * 10000 + (d.getUTCMonth() + 1) * 100 + d.getUTCDate()) * 100;
    return serialNewer(old, today) ? today : plus;
  }
  if (Math.abs(old - now) <= UNIXTIME_WINDOW) return serialNewer(old, now >>> 0) ? now >>> 0 : plus;
  return plus;
}
