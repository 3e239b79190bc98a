/** Zones pre-signed by ldns-signzone with NSEC3 opt-out, served by popdns: see presigned-e2e.ts. */
import t from 'tap';
import { testVariant, VARIANTS } from './presigned-e2e.js';

for (const v of VARIANTS) if (v.tool === 'ldns' && v.optOut) testVariant(t, v);
