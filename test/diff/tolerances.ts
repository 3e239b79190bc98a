/**
 * Intentional differences from Knot, each with its reason. Keep this list short: every entry is a
 * place where popdns follows an RFC (or a documented choice) and Knot 3.2 does something else.
 * Documented for operators in test/diff/TOLERANCES.md.
 */
import type { NormResponse } from '../helpers/knot.js';
import type { Case } from './corpus.js';

export interface Tolerance {
  id: string;
  reason: string;
  applies(c: Case, ours: NormResponse, knot: NormResponse): boolean;
}

function dedupe(r: NormResponse): string {
  const sec = (sets: NormResponse['answer']) => sets.map((s) => ({ ...s, rdata: [...new Set(s.rdata)] }));
  return JSON.stringify({
    ...r,
    answer: sec(r.answer),
    authority: sec(r.authority),
    additional: sec(r.additional),
  });
}

export const TOLERANCES: Tolerance[] = [
  {
    id: 'knot-duplicate-additional',
    reason:
      'Knot adds the address RRset of an additional-section target once per record pointing at it (two SRV ' +
      'records with the same target give the A record twice). Duplicate RRs are meaningless (RFC 2181 §5) and ' +
      'popdns sends each RRset once.',
    applies: (_c, ours, knot) => dedupe(ours) === dedupe(knot) && dedupe(knot) !== JSON.stringify(knot),
  },
];

export function tolerated(c: Case, ours: NormResponse, knot: NormResponse): boolean {
  return TOLERANCES.some((x) => x.applies(c, ours, knot));
}
