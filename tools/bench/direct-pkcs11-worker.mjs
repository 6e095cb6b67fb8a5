// The baseline: one process, one logged-in session, calling SoftHSM through
// pkcs11js in a tight loop with no broker in between. It performs the token
// operations a broker worker performs for the same request (see
// libs/pkcs11/src/key-operations.ts), on the broker's own tokens and keys, so
// the ratio broker/direct is the cost of everything the broker adds.
import { createHash, randomBytes } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { WindowRecorder } from './latency-stats.mjs';
import { serveMeasurement } from './measuring-child.mjs';

const gcmIvBytes = 12;
const gcmTagBytes = 16;
/** DER DigestInfo prefix for SHA-256 (RFC 8017 §9.2), which CKM_RSA_PKCS signs with the digest after it. */
const sha256DigestInfo = Buffer.from('3031300d060960864801650304020105000420', 'hex');

const trimPadded = (value) => value.replace(/[\s\0]+$/u, '');

/** Loads the module, finds the token labelled `tokenLabel`, opens a session and logs in as the user. */
function openSession(modulePath, tokenLabel, userPin) {
  const module = new pkcs11js.PKCS11();
  module.load(modulePath);
  // The broker initialises with OS locking (remote modules need it); do the same.
  module.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  const slot = module.C_GetSlotList(true).find((candidate) => trimPadded(module.C_GetTokenInfo(candidate).label) === tokenLabel);
  if (!slot) {
    const labels = module.C_GetSlotList(false).map((candidate) => {
      try {
        return trimPadded(module.C_GetTokenInfo(candidate).label) || '(empty)';
      } catch {
        return '(no token)';
      }
    });
    throw new Error(`no token labelled ${tokenLabel} (SOFTHSM2_CONF=${process.env.SOFTHSM2_CONF}; slots: ${labels.join(', ') || 'none'})`);
  }
  const session = module.C_OpenSession(slot, pkcs11js.CKF_RW_SESSION | pkcs11js.CKF_SERIAL_SESSION);
  module.C_Login(session, pkcs11js.CKU_USER, userPin);
  return { module, session };
}

function findKey(module, session, objectClass, label) {
  module.C_FindObjectsInit(session, [
    { type: pkcs11js.CKA_CLASS, value: objectClass },
    { type: pkcs11js.CKA_LABEL, value: label },
  ]);
  try {
    const [handle] = module.C_FindObjects(session, 2);
    if (!handle) throw new Error(`no key object labelled ${label} on this token`);
    return handle;
  } finally {
    module.C_FindObjectsFinal(session);
  }
}

/**
 * One operation as a function, with its inputs fixed like the load
 * generator's requests, except what the broker makes fresh per call: the
 * SHA-256 digest of a RAW message and the GCM IV.
 */
function operationFor(module, session, init) {
  switch (init.operation) {
    case 'sign': {
      const key = findKey(module, session, pkcs11js.CKO_PRIVATE_KEY, init.label);
      const message = randomBytes(init.messageBytes);
      return () => {
        const digest = createHash('sha256').update(message).digest();
        module.C_SignInit(session, { mechanism: pkcs11js.CKM_ECDSA }, key);
        const signature = module.C_Sign(session, digest, Buffer.alloc(1024));
        if (signature.length !== 64) throw new Error(`P-256 signature of ${signature.length} bytes`);
      };
    }
    case 'sign-rsa': {
      const key = findKey(module, session, pkcs11js.CKO_PRIVATE_KEY, init.label);
      const message = randomBytes(init.messageBytes);
      return () => {
        const digestInfo = Buffer.concat([sha256DigestInfo, createHash('sha256').update(message).digest()]);
        module.C_SignInit(session, { mechanism: pkcs11js.CKM_RSA_PKCS }, key);
        const signature = module.C_Sign(session, digestInfo, Buffer.alloc(512));
        if (signature.length !== 256) throw new Error(`RSA-2048 signature of ${signature.length} bytes`);
      };
    }
    case 'decrypt': {
      const key = findKey(module, session, pkcs11js.CKO_SECRET_KEY, init.label);
      const plaintext = randomBytes(init.plaintextBytes);
      const aad = randomBytes(init.aadBytes);
      const mechanism = {
        mechanism: pkcs11js.CKM_AES_GCM,
        parameter: { type: pkcs11js.CK_PARAMS_AES_GCM, iv: randomBytes(gcmIvBytes), aad, ivBits: gcmIvBytes * 8, tagBits: gcmTagBytes * 8 },
      };
      // One ciphertext sealed up front, opened on every call: what Decrypt does with the broker's ciphertext.
      module.C_EncryptInit(session, mechanism, key);
      const sealed = Buffer.from(module.C_Encrypt(session, plaintext, Buffer.alloc(plaintext.length + gcmTagBytes)));
      return () => {
        module.C_DecryptInit(session, mechanism, key);
        const opened = module.C_Decrypt(session, sealed, Buffer.alloc(sealed.length));
        if (opened.length !== plaintext.length) throw new Error(`GCM decrypt gave ${opened.length} bytes`);
      };
    }
    case 'encrypt': {
      const key = findKey(module, session, pkcs11js.CKO_SECRET_KEY, init.label);
      const plaintext = randomBytes(init.plaintextBytes);
      // The broker's additional data is its ciphertext header (key id, version); same size here.
      const aad = randomBytes(init.aadBytes);
      return () => {
        const mechanism = {
          mechanism: pkcs11js.CKM_AES_GCM,
          parameter: { type: pkcs11js.CK_PARAMS_AES_GCM, iv: randomBytes(gcmIvBytes), aad, ivBits: gcmIvBytes * 8, tagBits: gcmTagBytes * 8 },
        };
        module.C_EncryptInit(session, mechanism, key);
        const sealed = module.C_Encrypt(session, plaintext, Buffer.alloc(plaintext.length + gcmTagBytes));
        if (sealed.length !== plaintext.length + gcmTagBytes) throw new Error(`GCM output of ${sealed.length} bytes`);
      };
    }
    default:
      throw new Error(`unknown operation ${init.operation}`);
  }
}

/** Runs `operation` back to back until the window ends. Synchronous: the loop is the process. */
function runTightLoop(operation, { warmupMs, durationMs }) {
  const startedAt = performance.now();
  const recorder = new WindowRecorder(startedAt + warmupMs, startedAt + warmupMs + durationMs);
  for (let now = startedAt; now < recorder.endsAt; ) {
    try {
      operation();
      const endedAt = performance.now();
      recorder.success(now, endedAt);
      now = endedAt;
    } catch (error) {
      recorder.failure(error?.code === undefined ? 'ERROR' : `CKR 0x${error.code.toString(16)}`, error?.message ?? String(error));
      now = performance.now();
    }
  }
  return recorder.report();
}

serveMeasurement((init) => {
  const { module, session } = openSession(init.modulePath, init.tokenLabel, init.userPin);
  const info = module.C_GetInfo();
  const operation = operationFor(module, session, init);
  return {
    info: {
      pid: process.pid,
      library: `${trimPadded(info.manufacturerID)} ${trimPadded(info.libraryDescription)} ${info.libraryVersion.major}.${info.libraryVersion.minor}`,
    },
    run: () => runTightLoop(operation, init),
    close: () => {
      try {
        module.C_Logout(session);
        module.C_CloseSession(session);
        module.C_Finalize();
      } catch {
        // The process is exiting; the token keeps no state for a dead session.
      }
    },
  };
});
