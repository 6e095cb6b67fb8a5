import { credentials, type ChannelCredentials } from '@grpc/grpc-js';
import { BrokerError } from '@hsm-broker/errors';

/** PEM material for a TLS connection to the broker. */
export interface TlsMaterial {
  /** CA certificate(s) the broker's certificate must chain to; the system roots when absent. */
  caCert?: Buffer;
  /** Client certificate for mutual TLS. Needs `clientKey`. */
  clientCert?: Buffer;
  /** Private key of `clientCert`. */
  clientKey?: Buffer;
}

/**
 * TLS channel credentials for {@link createBrokerClient}. Production brokers
 * require mutual TLS: pass the CA that signed the broker's certificate and the
 * caller's own certificate and key.
 */
export function tlsCredentials(material: TlsMaterial = {}): ChannelCredentials {
  // grpc-js accepts one half of a client key pair and then fails the
  // handshake with an opaque error; say which half is missing instead.
  if ((material.clientCert === undefined) !== (material.clientKey === undefined)) {
    const missing = material.clientCert === undefined ? 'clientCert' : 'clientKey';
    throw BrokerError.invalidArgument(missing, 'clientCert and clientKey must be given together');
  }
  return credentials.createSsl(
    material.caCert ?? null,
    material.clientKey ?? null,
    material.clientCert ?? null,
  );
}
