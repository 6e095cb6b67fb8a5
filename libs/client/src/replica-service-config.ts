import type { ChannelOptions } from '@grpc/grpc-js';
import {
  AuditServiceService,
  CryptoServiceService,
  FleetServiceService,
  KeyServiceService,
} from '@hsm-broker/proto';

/**
 * Every method a client may send again to another replica when the first
 * one goes away. They change nothing a second attempt could duplicate:
 * crypto over an existing key (a retried Encrypt or GenerateDataKey gives a
 * different but equally valid answer and the first one is never seen) and
 * reads. Methods that create, rotate, delete, change state or settings,
 * repair, drain or inject faults are absent on purpose: the first attempt
 * may have happened on a replica that died before it answered, and only the
 * caller can tell whether doing it twice is right.
 */
export const idempotentMethodPaths: readonly string[] = [
  CryptoServiceService.encrypt.path,
  CryptoServiceService.decrypt.path,
  CryptoServiceService.reEncrypt.path,
  CryptoServiceService.generateDataKey.path,
  CryptoServiceService.generateDataKeyWithoutPlaintext.path,
  CryptoServiceService.sign.path,
  CryptoServiceService.verify.path,
  CryptoServiceService.getPublicKey.path,
  CryptoServiceService.generateMac.path,
  CryptoServiceService.verifyMac.path,
  CryptoServiceService.generateRandom.path,
  KeyServiceService.describeKey.path,
  KeyServiceService.listKeys.path,
  FleetServiceService.getFleetStatus.path,
  AuditServiceService.searchAudit.path,
  AuditServiceService.getAuditStatus.path,
];

/**
 * Attempts per idempotent call, the first included: grpc-js allows at most
 * 5. With two replicas, one of which just died, the second attempt usually
 * lands on the live one; the others cover a retry that picked the dead
 * connection before grpc-js noticed it was gone.
 */
export const replicaRetryAttempts = 5;

/** `/hsmbroker.v1.CryptoService/Encrypt` → `{ service, method }`, the service config's method name. */
function methodName(path: string): { service: string; method: string } {
  const [, service = '', method = ''] = path.split('/');
  return { service, method };
}

/**
 * The grpc-js service config of every client channel: `round_robin` over
 * whatever the target resolves to (one replica or many), and a retry policy
 * for the idempotent methods on UNAVAILABLE only, the status of a replica
 * that stopped, refused the connection or dropped it mid-call. Retries stay
 * inside the call's deadline; grpc-js picks the next ready replica for each
 * attempt.
 */
export function replicaServiceConfig(): string {
  return JSON.stringify({
    loadBalancingConfig: [{ round_robin: {} }],
    methodConfig: [
      {
        name: idempotentMethodPaths.map(methodName),
        retryPolicy: {
          maxAttempts: replicaRetryAttempts,
          initialBackoff: '0.02s',
          maxBackoff: '0.5s',
          backoffMultiplier: 2,
          retryableStatusCodes: ['UNAVAILABLE'],
        },
      },
    ],
  });
}

/**
 * Channel options that make the client balance and retry, merged under the
 * caller's own: a caller that sets `grpc.service_config` replaces ours. DNS
 * TXT service configs are ignored so that a DNS zone cannot turn retries of
 * non-idempotent methods on.
 */
export function replicaChannelOptions(callerOptions: Partial<ChannelOptions>): Partial<ChannelOptions> {
  return {
    'grpc.service_config': replicaServiceConfig(),
    'grpc.service_config_disable_resolution': 1,
    'grpc.enable_retries': 1,
    ...callerOptions,
  };
}
