export {
  curveParams,
  digestInfo,
  ecdsaDerToRaw,
  ecdsaRawToDer,
  hashLength,
  publicKeyToSpki,
  spkiToPublicKey,
} from './asn1-encoding.js';
export type { CurveName, HashName, PublicKeyComponents } from './asn1-encoding.js';
export { lookupCkr, translateCkr } from './ckr-table.js';
export { cloneBodyLimitBytes, cloneOfficerOperations, cloneUserOperations, decodeCloneJson, encodeCloneJson } from './clone-protocol.js';
export type { CloneOperation, CloneOperations } from './clone-protocol.js';
export type { CkrEntry } from './ckr-table.js';
export { FleetKek } from './fleet-kek.js';
export type { EnrollmentKey } from './fleet-kek.js';
export { KeyOperations } from './key-operations.js';
export type { KeyObjectDescription } from './key-inventory.js';
export type { KeyObjectInfo, SignatureScheme, WrappedKey } from './key-operations.js';
export { isAsymmetric, keyMaterialSpecs } from './key-templates.js';
export type { KeyMaterialSpec } from './key-templates.js';
export { mechanismName } from './mechanism-names.js';
export { parsePkcs11Uri } from './pkcs11-uri.js';
export type { TokenSelector } from './pkcs11-uri.js';
export { Pkcs11Token, trimPadded } from './pkcs11-token.js';
export type { LoginRole, TokenConnection, TokenDescription } from './pkcs11-token.js';
export { initializeToken } from './token-initialization.js';
export type { TokenInitialization } from './token-initialization.js';
