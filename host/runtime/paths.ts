/** Guest path handling shared by the policy (main thread) and the sandbox (worker). */
export { normalizeGuestPath } from '../../lattice/policy/index.ts';
