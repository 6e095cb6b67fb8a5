import pkcs11js from 'pkcs11js';

let names: Map<number, string> | undefined;

/** The CKM_ name of a mechanism number, or its hex value for unknown (vendor) mechanisms. */
export function mechanismName(mechanism: number): string {
  if (!names) {
    names = new Map();
    for (const [name, value] of Object.entries(pkcs11js)) {
      // Several names can share a number (deprecated aliases); keep the first.
      if (name.startsWith('CKM_') && typeof value === 'number' && !names.has(value)) names.set(value, name);
    }
  }
  return names.get(mechanism) ?? `0x${mechanism.toString(16).padStart(8, '0')}`;
}
