import { readFileSync } from 'node:fs';
import { createBrokerClient, tlsCredentials, type BrokerClient } from '@hsm-broker/client';
import type { ParsedOptions } from '../command-line.js';

/**
 * How a forked load process reaches the broker: the same global options
 * hsmctl was given, as file names (never key material) so that nothing
 * secret crosses the IPC channel or a command line.
 */
export interface BrokerConnection {
  address: string;
  tls: boolean;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

/** The connection hsmctl itself uses, from its global options and environment. */
export function connectionFromOptions(
  options: ParsedOptions,
  env: Readonly<Record<string, string | undefined>>,
  defaultAddress: string,
): BrokerConnection {
  const nonEmpty = (value: string | undefined): string | undefined => (value === '' ? undefined : value);
  const caFile = options.string('tls-ca') ?? nonEmpty(env['HSMB_TLS_CA']);
  const certFile = options.string('tls-cert') ?? nonEmpty(env['HSMB_TLS_CERT']);
  const keyFile = options.string('tls-key') ?? nonEmpty(env['HSMB_TLS_KEY']);
  return {
    address: options.string('address') ?? nonEmpty(env['HSMB_ADDRESS']) ?? defaultAddress,
    tls: options.flag('tls') || caFile !== undefined || certFile !== undefined,
    ...(caFile === undefined ? {} : { caFile }),
    ...(certFile === undefined ? {} : { certFile }),
    ...(keyFile === undefined ? {} : { keyFile }),
  };
}

/** A client for a {@link BrokerConnection}. */
export function connectBroker(connection: BrokerConnection): BrokerClient {
  const read = (file: string | undefined): Buffer | undefined => (file === undefined ? undefined : readFileSync(file));
  const caCert = read(connection.caFile);
  const clientCert = read(connection.certFile);
  const clientKey = read(connection.keyFile);
  return createBrokerClient({
    address: connection.address,
    ...(connection.tls
      ? {
          credentials: tlsCredentials({
            ...(caCert === undefined ? {} : { caCert }),
            ...(clientCert === undefined ? {} : { clientCert }),
            ...(clientKey === undefined ? {} : { clientKey }),
          }),
        }
      : {}),
  });
}
