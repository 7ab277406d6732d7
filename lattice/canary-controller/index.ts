/**
 * Canary releases driven by the lattice: the controller the reconciler's leader runs
 * (controller.ts), the canary documents and the compare-and-set transitions every writer uses
 * (store.ts), and the pure rules both read from a document (record.ts). The state machine and
 * the analysis are K1's, in lattice/canary.
 */
export { CANARY_TICK_MS, RETIRE_GRACE_MS, startCanaryController, type CanaryController, type CanaryControllerOptions } from './controller.ts';
export { canaryKind, openCanaries, openWriter, publish, transition, type Operation, type Transitioned, type Writer } from './store.ts';
export { appSpecAtVersion, canaryServes, compareVersions, desiredWeights, effectiveRevision, instancesOf, missingCanaryStarts, nextRecord, pendingManifestCanary, weightsMatch, type CanaryRecord } from './record.ts';
