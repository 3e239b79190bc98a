/**
 * Small long-lived byte strings (names and RDATA of loaded zones) carved out of shared 64 KiB slabs.
 * A Uint8Array with its own ArrayBuffer costs V8 an ArrayBuffer object and a backing store besides the
 * view; a million records made that way spend more on bookkeeping than on their bytes. A view into a
 * slab costs only the view. Never write into what this returns: the neighbours share the slab.
 */
const SLAB_SIZE = 64 * 1024;
const MAX_SLABBED = 1024;

let slab = new Uint8Array(SLAB_SIZE);
let used = 0;

/** A copy of `src` in a shared slab (larger arrays get their own buffer). */
export function slabCopy(src: ArrayLike<number>): Uint8Array {
  const n = src.length;
  if (n > MAX_SLABBED) return Uint8Array.from(src);
  if (used + n > SLAB_SIZE) {
    slab = new Uint8Array(SLAB_SIZE);
    used = 0;
  }
  const out = slab.subarray(used, used + n);
  out.set(src);
  used += n;
  return out;
}
