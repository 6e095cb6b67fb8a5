/**
 * Aliases: friendly names (`alias/payments`) that resolve to key ids. They
 * live beside the keys but behind their own port, so a metadata store can
 * hold keys without knowing about aliases and the other way round.
 */

/** One alias. */
export interface KeyAlias {
  /** `alias/...`, as the caller wrote it. */
  aliasName: string;
  targetKeyId: string;
  createdAt: number;
  updatedAt: number;
}

/**
 * Alias syntax, as KMS has it: `alias/` then 1-250 characters of
 * A-Z a-z 0-9 / _ -. Names under `alias/aws/` are reserved there for
 * AWS-managed keys, and refused here so a client's assumptions hold.
 */
export const aliasNamePattern = /^alias\/[A-Za-z0-9/_-]{1,250}$/;

/** Whether an alias name lies in the reserved `alias/aws/` space. */
export function isReservedAlias(aliasName: string): boolean {
  return aliasName.toLowerCase().startsWith('alias/aws/');
}

/** Where aliases are kept. Implementations are synchronous, like {@link KeyStore}. */
export interface AliasStore {
  /** Adds an alias. Fails with ALREADY_EXISTS (reason ALIAS_EXISTS) when the name is taken. */
  createAlias(aliasName: string, targetKeyId: string, now: number): KeyAlias;
  getAlias(aliasName: string): KeyAlias | undefined;
  /** Points an existing alias at another key. Fails with NOT_FOUND (reason ALIAS_NOT_FOUND) when absent. */
  updateAlias(aliasName: string, targetKeyId: string, now: number): KeyAlias;
  /** Removes an alias; false when there was none. */
  deleteAlias(aliasName: string): boolean;
  /** Removes every alias of a key (it was destroyed); returns how many there were. */
  deleteAliasesOf(targetKeyId: string): number;
  /** Aliases ordered by name, starting after `afterAliasName`, optionally only those of one key. */
  listAliases(afterAliasName: string | undefined, limit: number, targetKeyId?: string): KeyAlias[];
  close(): void;
}
