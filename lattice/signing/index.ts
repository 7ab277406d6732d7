/** Signed components (claims in a custom section, Ed25519 by nkeys) and the lattice's allowed issuers. */
export { Capabilities, capabilityList, decodeClaims, isIssuerKey, signClaims, type Capability, type ComponentClaims, type DecodedClaims } from './claims.ts';
export { CLAIMS_SECTION, componentHashes, previousSubject, readClaims, requireSigned, signComponent, verifyComponent, type ClaimsReport, type Refusal, type SignOptions, type Verdict } from './verify.ts';
export { issuerKey, issuerListKind, openIssuers, type IssuerList, type IssuerState, type IssuerStore } from './issuers.ts';
export { KeyKinds, createKey, readSeedFile, writePrivateFile, writeSeedFile, type KeyKind } from './keys.ts';
export { policyBeyondCaps, requireCapability } from './bounds.ts';
export { customPayload, customSection, hasWasmPreamble, replaceCustom, sections, withoutCustom, type Section } from './wasm.ts';
