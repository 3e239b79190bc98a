/**
 * The control channel (`popdns ctl`): importing this module registers every verb. A new verb's
 * module is imported here.
 */
import './builtin.js';

export { getVerb, listVerbs, mergeOutputs, runLocal, unknownVerb } from './verbs.js';
export type { CtlContext, CtlOutput, CtlVerb } from './verbs.js';
