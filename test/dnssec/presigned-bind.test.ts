/** Zones pre-signed by dnssec-signzone, served by popdns: see presigned-e2e.ts. */
import t from 'tap';
import { testVariant, VARIANTS } from './presigned-e2e.js';

for (const v of VARIANTS) if (v.tool === 'bind') testVariant(t, v);
