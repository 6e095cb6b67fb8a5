/** The parts of an RFC 7512 PKCS#11 URI that select a token. */
export interface TokenSelector {
  /** CKA token label (`token=`). */
  token?: string;
  /** Token serial number (`serial=`). */
  serial?: string;
  /** Token manufacturer (`manufacturer=`). */
  manufacturer?: string;
  /** Token model (`model=`). */
  model?: string;
  /** Slot id (`slot-id=`). */
  slotId?: number;
  /** `pin-source=` query attribute, e.g. `file:/run/secrets/pin`. */
  pinSource?: string;
  /** `module-path=` query attribute. */
  modulePath?: string;
}

const pathAttributes = new Map<string, keyof TokenSelector>([
  ['token', 'token'],
  ['serial', 'serial'],
  ['manufacturer', 'manufacturer'],
  ['model', 'model'],
  ['slot-id', 'slotId'],
]);

const queryAttributes = new Map<string, keyof TokenSelector>([
  ['pin-source', 'pinSource'],
  ['module-path', 'modulePath'],
]);

/** Path attributes that name objects, not tokens; accepted and ignored when selecting a token. */
const ignoredPathAttributes = new Set(['object', 'type', 'id', 'library-manufacturer', 'library-description', 'library-version', 'slot-description', 'slot-manufacturer']);

function decode(value: string, uri: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw new Error(`PKCS#11 URI "${uri}" has a malformed percent-encoding in "${value}"`);
  }
}

/**
 * Parses a PKCS#11 URI (RFC 7512) into a token selector. Rejects `pin-value`:
 * a PIN written into a URI ends up in shell history and process listings.
 */
export function parsePkcs11Uri(uri: string): TokenSelector {
  if (!uri.startsWith('pkcs11:')) throw new Error(`PKCS#11 URI "${uri}" must start with "pkcs11:"`);
  const rest = uri.slice('pkcs11:'.length);
  const queryAt = rest.indexOf('?');
  const path = queryAt === -1 ? rest : rest.slice(0, queryAt);
  const query = queryAt === -1 ? '' : rest.slice(queryAt + 1);
  const selector: TokenSelector = {};

  for (const part of path.split(';').filter((p) => p.length > 0)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new Error(`PKCS#11 URI "${uri}" has an attribute without a value: "${part}"`);
    const name = part.slice(0, eq);
    const value = decode(part.slice(eq + 1), uri);
    const field = pathAttributes.get(name);
    if (field === 'slotId') {
      if (!/^\d+$/.test(value)) throw new Error(`PKCS#11 URI "${uri}": slot-id must be a decimal number`);
      selector.slotId = Number(value);
    } else if (field) {
      selector[field] = value;
    } else if (!ignoredPathAttributes.has(name)) {
      throw new Error(`PKCS#11 URI "${uri}" has an unknown attribute "${name}"`);
    }
  }

  for (const part of query.split('&').filter((p) => p.length > 0)) {
    const eq = part.indexOf('=');
    const name = eq === -1 ? part : part.slice(0, eq);
    if (name === 'pin-value') {
      throw new Error(`PKCS#11 URI must not carry pin-value; use pin-source or the appliance's pin setting`);
    }
    const field = queryAttributes.get(name);
    if (!field) throw new Error(`PKCS#11 URI "${uri}" has an unknown query attribute "${name}"`);
    selector[field] = decode(part.slice(eq + 1), uri) as never;
  }
  return selector;
}
