/**
 * Every RPC method the broker serves, by service, and what the access layer
 * needs to know about each: whether it acts on one key (so grants' `keys`
 * globs apply) and which quota class it draws from.
 */

/** Quota classes, as in KMS request quotas: symmetric and asymmetric key use, and key administration. */
export type OperationClass = 'symmetric' | 'asymmetric' | 'keyAdmin';

/** The CryptoService methods. */
export const cryptoMethods = [
  'Encrypt',
  'Decrypt',
  'ReEncrypt',
  'GenerateDataKey',
  'GenerateDataKeyWithoutPlaintext',
  'Sign',
  'Verify',
  'GetPublicKey',
  'GenerateMac',
  'VerifyMac',
  'GenerateRandom',
] as const;

/**
 * The CryptoService methods that carry many items. The call itself needs a
 * grant; each item is then authorized, charged and audited as its unary
 * method (`BatchSign` items as `Sign`), so a batch never bypasses a quota.
 */
export const batchMethods = ['BatchEncrypt', 'BatchDecrypt', 'BatchSign', 'BatchVerify', 'BatchGenerateMac', 'SignStream'] as const;

/** The KeyService methods. */
export const keyMethods = [
  'CreateKey',
  'DescribeKey',
  'ListKeys',
  'RotateKey',
  'EnableKey',
  'DisableKey',
  'ScheduleKeyDeletion',
  'CancelKeyDeletion',
  'UpdateKeySettings',
] as const;

/** Alias methods, served by the KMS-compatible endpoint (`alias/...` names for keys). */
export const aliasMethods = ['CreateAlias', 'UpdateAlias', 'DeleteAlias', 'ListAliases'] as const;
/**
 * Registry recovery (KeyService.RebuildRegistry): fleet-wide, so both key
 * administrators and fleet operators may run it; which keys it registers is
 * still decided key by key by the grants' `keys` globs.
 */
export const registryMethods = ['RebuildRegistry'] as const;

/** The FleetService controls (GetFleetStatus is a read, listed apart). */
export const fleetControlMethods = [
  'DrainAppliance',
  'UndrainAppliance',
  'FenceZone',
  'UnfenceZone',
  'InjectFault',
  'ResyncKeys',
  'ClearFaults',
] as const;

/** The BackupService methods. */
export const backupMethods = ['CreateBackup', 'RestoreBackup'] as const;

/** The AuditService methods (`hsmbroker.v1.AuditService`). */
export const auditMethods = ['SearchAudit', 'TailAudit', 'GetAuditStatus'] as const;

/** Every method name a role may list. */
export const allMethods: ReadonlySet<string> = new Set<string>([
  ...cryptoMethods,
  ...batchMethods,
  ...keyMethods,
  ...aliasMethods,
  ...registryMethods,
  'GetFleetStatus',
  ...fleetControlMethods,
  ...backupMethods,
  ...auditMethods,
]);

/**
 * Methods that act on one named key: a grant's `keys` globs and
 * `conditions` decide them, per key. ListKeys is filtered key by key.
 */
export const keyScopedMethods: ReadonlySet<string> = new Set<string>([
  ...cryptoMethods.filter((method) => method !== 'GenerateRandom'),
  ...keyMethods,
  // ListAliases is filtered alias by alias, like ListKeys.
  ...aliasMethods,
  ...registryMethods,
]);

const asymmetric = new Set<string>(['Sign', 'Verify', 'GetPublicKey']);
const symmetric = new Set<string>(cryptoMethods.filter((method) => !asymmetric.has(method)));
const keyAdmin = new Set<string>([...keyMethods, ...aliasMethods, ...registryMethods]);

/** The quota class of a method, or undefined for methods no quota limits (fleet, backup, audit). */
export function operationClassOf(method: string): OperationClass | undefined {
  if (symmetric.has(method)) return 'symmetric';
  if (asymmetric.has(method)) return 'asymmetric';
  if (keyAdmin.has(method)) return 'keyAdmin';
  return undefined;
}

/** The built-in roles, each a fixed set of method names. */
export const builtInRoles: Readonly<Record<string, readonly string[]>> = {
  'crypto-user': [...cryptoMethods, ...batchMethods],
  'key-admin': [...keyMethods, ...aliasMethods, ...registryMethods],
  'fleet-operator': ['GetFleetStatus', ...fleetControlMethods, ...registryMethods],
  auditor: ['GetFleetStatus', 'DescribeKey', 'ListKeys', 'ListAliases', ...auditMethods],
  'backup-officer': backupMethods,
};
