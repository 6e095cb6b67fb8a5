import {
  Client,
  credentials as grpcCredentials,
  type ChannelCredentials,
  type ChannelOptions,
} from '@grpc/grpc-js';
import { BrokerError, Code } from '@hsm-broker/errors';
import {
  AuditServiceService,
  CancelKeyDeletionRequest,
  ClearFaultsRequest,
  CreateKeyRequest,
  CryptoServiceService,
  DecryptRequest,
  DescribeKeyRequest,
  DisableKeyRequest,
  DrainApplianceRequest,
  EnableKeyRequest,
  EncryptRequest,
  FenceZoneRequest,
  FleetServiceService,
  GenerateDataKeyRequest,
  GenerateDataKeyWithoutPlaintextRequest,
  GenerateMacRequest,
  GenerateRandomRequest,
  GetAuditStatusRequest,
  GetFleetStatusRequest,
  GetPublicKeyRequest,
  InjectFaultRequest,
  KeyServiceService,
  ListKeysRequest,
  ReEncryptRequest,
  RebuildRegistryRequest,
  ResyncKeysRequest,
  RotateKeyRequest,
  ScheduleKeyDeletionRequest,
  SearchAuditRequest,
  SignRequest,
  UndrainApplianceRequest,
  UnfenceZoneRequest,
  UpdateKeySettingsRequest,
  VerifyMacRequest,
  VerifyRequest,
  type CancelKeyDeletionResponse,
  type ClearFaultsResponse,
  type CreateKeyResponse,
  type DecryptResponse,
  type DescribeKeyResponse,
  type DisableKeyResponse,
  type DrainApplianceResponse,
  type EnableKeyResponse,
  type EncryptResponse,
  type FenceZoneResponse,
  type GenerateDataKeyResponse,
  type GenerateDataKeyWithoutPlaintextResponse,
  type GenerateMacResponse,
  type GenerateRandomResponse,
  type GetAuditStatusResponse,
  type GetFleetStatusResponse,
  type GetPublicKeyResponse,
  type InjectFaultResponse,
  type KeyMetadata,
  type ListKeysResponse,
  type ReEncryptResponse,
  type RebuildRegistryResponse,
  type ResyncKeysResponse,
  type RotateKeyResponse,
  type ScheduleKeyDeletionResponse,
  type SearchAuditResponse,
  type SignResponse,
  type UndrainApplianceResponse,
  type UnfenceZoneResponse,
  type UpdateKeySettingsResponse,
  type VerifyMacResponse,
  type VerifyResponse,
} from '@hsm-broker/proto';
import { batchMethods, type BatchMethods } from './batch-methods.js';
import { channelCalls } from './channel-calls.js';
import type { PartialMessage } from './partial-message.js';
import { streamMethods, type StreamMethods } from './stream-methods.js';
import {
  checkDeadlineMs,
  type BrokerCallOptions,
} from './call-options.js';
import { decryptEnvelope, encryptEnvelope } from './envelope-encryption.js';
import type { EncryptionContext } from './encryption-context.js';
import { registerReplicaResolver } from './replica-resolver.js';
import { idempotentMethodPaths, replicaChannelOptions } from './replica-service-config.js';
import { parseReplicaTarget } from './replica-target.js';

export type { PartialMessage } from './partial-message.js';
export type { BackupCallOptions } from './stream-methods.js';

/** How long a call may take when neither the client nor the call says otherwise. */
export const defaultDeadlineMs = 10_000;
/**
 * grpc-js waits up to 120 s between reconnect attempts by default, failing
 * every call fast meanwhile: a broker restarted in a few seconds would stay
 * unreachable to its callers for minutes. Reconnecting to one address every
 * 2 s at most costs nothing.
 */
const reconnectBackoff: Partial<ChannelOptions> = { 'grpc.initial_reconnect_backoff_ms': 250, 'grpc.max_reconnect_backoff_ms': 2000 };

/**
 * How long CreateBackup and RestoreBackup may take when neither the client
 * nor the call says otherwise: they wrap or unwrap every key version and can
 * take minutes on a large registry, far beyond {@link defaultDeadlineMs}.
 */
export const defaultBackupDeadlineMs = 600_000;

/** Methods a call may be sent again after its connection dropped (see replica-service-config.ts). */
const idempotentPaths: ReadonlySet<string> = new Set(idempotentMethodPaths);

/** Settings for {@link createBrokerClient}, checked once when the client is made. */
export interface BrokerClientOptions {
  /**
   * Where the broker replicas are: one `host:port`; several, as an array or
   * separated by commas (`broker-1:50051,broker-2:50051`); or one grpc-js
   * target such as `dns:///brokers:50051` whose name resolves to every
   * replica. Calls are spread over all of them (`round_robin`); idempotent
   * calls (crypto, reads) that meet UNAVAILABLE, as when a replica stops, are
   * sent again to another one within the deadline; other calls are not.
   */
  address: string | readonly string[];
  /**
   * Channel credentials. Defaults to an insecure (plaintext) channel, which
   * is for local development only: production brokers require mutual TLS,
   * see {@link tlsCredentials}.
   */
  credentials?: ChannelCredentials;
  /** Default time each call may take, in milliseconds; 10 000 when absent. */
  deadlineMs?: number;
  /**
   * Default time a backup or restore may take, in milliseconds; 600 000 when
   * absent. `deadlineMs` does not apply to them.
   */
  backupDeadlineMs?: number;
  /**
   * grpc-js channel options (keepalive, message size limits, ...), over the
   * client's reconnect back-off of 250 ms doubling to at most 2 s.
   */
  channelOptions?: Partial<ChannelOptions>;
}


/**
 * A connection to one broker with a promise-returning method per RPC of
 * CryptoService, KeyService, FleetService, BackupService and AuditService. Every unary
 * method takes a partial request and optional {@link BrokerCallOptions}
 * (the backup methods take {@link BackupCallOptions}), and rejects with a
 * `BrokerError` carrying the gRPC status code, the broker's message, its
 * stable `reason` and whether a retry can help.
 */
export interface BrokerClient extends BatchMethods, StreamMethods {
  /** Encrypts up to 65536 bytes with AES-256-GCM under the key's primary version. */
  encrypt(request: PartialMessage<EncryptRequest>, options?: BrokerCallOptions): Promise<EncryptResponse>;
  /** Decrypts a ciphertext made by Encrypt or GenerateDataKey. */
  decrypt(request: PartialMessage<DecryptRequest>, options?: BrokerCallOptions): Promise<DecryptResponse>;
  /** Decrypts and encrypts again under another key; the plaintext never leaves the broker. */
  reEncrypt(
    request: PartialMessage<ReEncryptRequest>,
    options?: BrokerCallOptions,
  ): Promise<ReEncryptResponse>;
  /** Returns a fresh data key in plaintext and encrypted under the key. Zero the plaintext after use. */
  generateDataKey(
    request: PartialMessage<GenerateDataKeyRequest>,
    options?: BrokerCallOptions,
  ): Promise<GenerateDataKeyResponse>;
  /** Returns a fresh data key encrypted under the key only. */
  generateDataKeyWithoutPlaintext(
    request: PartialMessage<GenerateDataKeyWithoutPlaintextRequest>,
    options?: BrokerCallOptions,
  ): Promise<GenerateDataKeyWithoutPlaintextResponse>;
  /** Signs a message or a digest with the key's primary version. */
  sign(request: PartialMessage<SignRequest>, options?: BrokerCallOptions): Promise<SignResponse>;
  /** Verifies a signature; a wrong signature resolves with `signatureValid: false`. */
  verify(request: PartialMessage<VerifyRequest>, options?: BrokerCallOptions): Promise<VerifyResponse>;
  /** Returns the public half of an asymmetric key, as DER and PEM. */
  getPublicKey(
    request: PartialMessage<GetPublicKeyRequest>,
    options?: BrokerCallOptions,
  ): Promise<GetPublicKeyResponse>;
  /** Computes an HMAC with the key's primary version. */
  generateMac(
    request: PartialMessage<GenerateMacRequest>,
    options?: BrokerCallOptions,
  ): Promise<GenerateMacResponse>;
  /** Verifies an HMAC; a wrong MAC resolves with `macValid: false`. */
  verifyMac(request: PartialMessage<VerifyMacRequest>, options?: BrokerCallOptions): Promise<VerifyMacResponse>;
  /** Returns 1 to 1024 random bytes drawn from an HSM. */
  generateRandom(
    request: PartialMessage<GenerateRandomRequest>,
    options?: BrokerCallOptions,
  ): Promise<GenerateRandomResponse>;

  /** Creates a key inside the fleet; resolves once it is durable. Not retried by the client. */
  createKey(request: PartialMessage<CreateKeyRequest>, options?: BrokerCallOptions): Promise<CreateKeyResponse>;
  /** Returns a key's metadata. */
  describeKey(
    request: PartialMessage<DescribeKeyRequest>,
    options?: BrokerCallOptions,
  ): Promise<DescribeKeyResponse>;
  /** Returns one page of keys; see {@link BrokerClient.listAllKeys} to walk every page. */
  listKeys(request?: PartialMessage<ListKeysRequest>, options?: BrokerCallOptions): Promise<ListKeysResponse>;
  /** Adds a new primary version; older versions still decrypt and verify. */
  rotateKey(request: PartialMessage<RotateKeyRequest>, options?: BrokerCallOptions): Promise<RotateKeyResponse>;
  /** Makes a disabled key usable again. */
  enableKey(request: PartialMessage<EnableKeyRequest>, options?: BrokerCallOptions): Promise<EnableKeyResponse>;
  /** Makes a key unusable until it is enabled again. */
  disableKey(
    request: PartialMessage<DisableKeyRequest>,
    options?: BrokerCallOptions,
  ): Promise<DisableKeyResponse>;
  /** Makes the key unusable now and destroys it when the pending window (7 to 30 days) ends. */
  scheduleKeyDeletion(
    request: PartialMessage<ScheduleKeyDeletionRequest>,
    options?: BrokerCallOptions,
  ): Promise<ScheduleKeyDeletionResponse>;
  /** Stops a scheduled deletion; the key becomes DISABLED. */
  cancelKeyDeletion(
    request: PartialMessage<CancelKeyDeletionRequest>,
    options?: BrokerCallOptions,
  ): Promise<CancelKeyDeletionResponse>;
  /**
   * Changes the minimum decryption version (versions below it stop
   * decrypting and verifying; 1 to the primary version) and the automatic
   * rotation period (90 to 2560 days, 0 for none). A field left undefined is
   * not changed.
   */
  updateKeySettings(
    request: PartialMessage<UpdateKeySettingsRequest>,
    options?: BrokerCallOptions,
  ): Promise<UpdateKeySettingsResponse>;
  /**
   * Registers, DISABLED, the keys the appliances hold and the registry does
   * not (after its store was lost), from the key objects' labels and
   * attributes; `dryRun` only reports. Not retried by the client. The
   * deadline defaults to `backupDeadlineMs` (10 minutes): it lists every
   * appliance's objects.
   */
  rebuildRegistry(
    request?: PartialMessage<RebuildRegistryRequest>,
    options?: BrokerCallOptions,
  ): Promise<RebuildRegistryResponse>;

  /** Returns the broker's view of its zones and appliances. */
  getFleetStatus(
    request?: PartialMessage<GetFleetStatusRequest>,
    options?: BrokerCallOptions,
  ): Promise<GetFleetStatusResponse>;
  /**
   * Stops sending new work to an appliance; calls in flight finish. Resolves
   * with the appliance's status after the change.
   */
  drainAppliance(
    request: PartialMessage<DrainApplianceRequest>,
    options?: BrokerCallOptions,
  ): Promise<DrainApplianceResponse>;
  /** Returns a drained appliance to rotation; the broker ramps its traffic up slowly. */
  undrainAppliance(
    request: PartialMessage<UndrainApplianceRequest>,
    options?: BrokerCallOptions,
  ): Promise<UndrainApplianceResponse>;
  /** Takes every appliance of a zone out of rotation, e.g. before maintenance. */
  fenceZone(request: PartialMessage<FenceZoneRequest>, options?: BrokerCallOptions): Promise<FenceZoneResponse>;
  /** Returns a fenced zone to rotation. */
  unfenceZone(
    request: PartialMessage<UnfenceZoneRequest>,
    options?: BrokerCallOptions,
  ): Promise<UnfenceZoneResponse>;
  /**
   * Failure rehearsal: makes an appliance fail on purpose (errors, latency,
   * hangs or worker crashes). The broker refuses with FAILED_PRECONDITION
   * unless it runs with fault injection enabled.
   */
  injectFault(
    request: PartialMessage<InjectFaultRequest>,
    options?: BrokerCallOptions,
  ): Promise<InjectFaultResponse>;
  /** Removes injected faults from one appliance, or from every appliance when `applianceId` is empty. */
  clearFaults(
    request?: PartialMessage<ClearFaultsRequest>,
    options?: BrokerCallOptions,
  ): Promise<ClearFaultsResponse>;
  /**
   * Compares one appliance's key inventory (every appliance's when
   * `applianceId` is empty) with the registry now, copies missing key
   * versions and reports orphans, lost copies and repairs that failed.
   * The deadline defaults to `backupDeadlineMs` (10 minutes): repairs copy
   * keys inside the call.
   */
  resyncKeys(
    request?: PartialMessage<ResyncKeysRequest>,
    options?: BrokerCallOptions,
  ): Promise<ResyncKeysResponse>;


  /** Audit records matching every given filter, oldest first, at most `limit` (1 to 1000, default 100). */
  searchAudit(
    request?: PartialMessage<SearchAuditRequest>,
    options?: BrokerCallOptions,
  ): Promise<SearchAuditResponse>;
  /** Where the audit trail is written, its last checkpoint, signing key and syslog forwarding. */
  getAuditStatus(options?: BrokerCallOptions): Promise<GetAuditStatusResponse>;

  /**
   * Yields every key, calling ListKeys page by page. `options` (deadline,
   * metadata, signal) apply to each page call.
   */
  listAllKeys(
    request?: { pageSize?: number },
    options?: BrokerCallOptions,
  ): AsyncGenerator<KeyMetadata, void, undefined>;
  /** {@link encryptEnvelope} with this client. */
  encryptEnvelope(
    keyId: string,
    data: Uint8Array,
    context?: EncryptionContext,
    options?: BrokerCallOptions,
  ): Promise<Buffer>;
  /** {@link decryptEnvelope} with this client. */
  decryptEnvelope(envelope: Uint8Array, context?: EncryptionContext, options?: BrokerCallOptions): Promise<Buffer>;

  /** Closes the channel. Calls still in flight fail with CANCELLED or UNAVAILABLE. */
  close(): void;
}


/**
 * Connects to a broker. The connection is made lazily, on the first call;
 * all three services share one HTTP/2 channel.
 *
 * Invalid options throw a `BrokerError` (INVALID_ARGUMENT) naming the field.
 */
export function createBrokerClient(options: BrokerClientOptions): BrokerClient {
  const { target } = parseReplicaTarget(options.address);
  const clientDeadlineMs = checkDeadlineMs('deadlineMs', options.deadlineMs ?? defaultDeadlineMs);
  const clientBackupDeadlineMs = checkDeadlineMs(
    'backupDeadlineMs',
    options.backupDeadlineMs ?? defaultBackupDeadlineMs,
  );
  // One generic grpc-js Client serves every service: the generated service
  // descriptors carry the method paths and (de)serialisers, so the four
  // generated client classes (and four channels) are not needed.
  registerReplicaResolver();
  const channel = new Client(
    target,
    options.credentials ?? grpcCredentials.createInsecure(),
    replicaChannelOptions({ ...reconnectBackoff, ...options.channelOptions }),
  );
  const calls = channelCalls(channel, clientDeadlineMs, idempotentPaths);
  const { unary } = calls;


  const client: BrokerClient = {
    ...batchMethods(calls),
    ...streamMethods(channel, calls, clientDeadlineMs, clientBackupDeadlineMs),
    encrypt: (request, callOptions) =>
      unary(CryptoServiceService.encrypt, EncryptRequest.fromPartial(request), callOptions),
    decrypt: (request, callOptions) =>
      unary(CryptoServiceService.decrypt, DecryptRequest.fromPartial(request), callOptions),
    reEncrypt: (request, callOptions) =>
      unary(CryptoServiceService.reEncrypt, ReEncryptRequest.fromPartial(request), callOptions),
    generateDataKey: (request, callOptions) =>
      unary(CryptoServiceService.generateDataKey, GenerateDataKeyRequest.fromPartial(request), callOptions),
    generateDataKeyWithoutPlaintext: (request, callOptions) =>
      unary(
        CryptoServiceService.generateDataKeyWithoutPlaintext,
        GenerateDataKeyWithoutPlaintextRequest.fromPartial(request),
        callOptions,
      ),
    sign: (request, callOptions) =>
      unary(CryptoServiceService.sign, SignRequest.fromPartial(request), callOptions),
    verify: (request, callOptions) =>
      unary(CryptoServiceService.verify, VerifyRequest.fromPartial(request), callOptions),
    getPublicKey: (request, callOptions) =>
      unary(CryptoServiceService.getPublicKey, GetPublicKeyRequest.fromPartial(request), callOptions),
    generateMac: (request, callOptions) =>
      unary(CryptoServiceService.generateMac, GenerateMacRequest.fromPartial(request), callOptions),
    verifyMac: (request, callOptions) =>
      unary(CryptoServiceService.verifyMac, VerifyMacRequest.fromPartial(request), callOptions),
    generateRandom: (request, callOptions) =>
      unary(CryptoServiceService.generateRandom, GenerateRandomRequest.fromPartial(request), callOptions),

    createKey: (request, callOptions) =>
      unary(KeyServiceService.createKey, CreateKeyRequest.fromPartial(request), callOptions),
    describeKey: (request, callOptions) =>
      unary(KeyServiceService.describeKey, DescribeKeyRequest.fromPartial(request), callOptions),
    listKeys: (request = {}, callOptions) =>
      unary(KeyServiceService.listKeys, ListKeysRequest.fromPartial(request), callOptions),
    rotateKey: (request, callOptions) =>
      unary(KeyServiceService.rotateKey, RotateKeyRequest.fromPartial(request), callOptions),
    enableKey: (request, callOptions) =>
      unary(KeyServiceService.enableKey, EnableKeyRequest.fromPartial(request), callOptions),
    disableKey: (request, callOptions) =>
      unary(KeyServiceService.disableKey, DisableKeyRequest.fromPartial(request), callOptions),
    scheduleKeyDeletion: (request, callOptions) =>
      unary(KeyServiceService.scheduleKeyDeletion, ScheduleKeyDeletionRequest.fromPartial(request), callOptions),
    cancelKeyDeletion: (request, callOptions) =>
      unary(KeyServiceService.cancelKeyDeletion, CancelKeyDeletionRequest.fromPartial(request), callOptions),
    updateKeySettings: (request, callOptions) =>
      unary(KeyServiceService.updateKeySettings, UpdateKeySettingsRequest.fromPartial(request), callOptions),
    rebuildRegistry: (request = {}, callOptions = {}) =>
      unary(KeyServiceService.rebuildRegistry, RebuildRegistryRequest.fromPartial(request), {
        ...callOptions,
        deadlineMs: callOptions.deadlineMs ?? clientBackupDeadlineMs,
      }),

    getFleetStatus: (request = {}, callOptions) =>
      unary(FleetServiceService.getFleetStatus, GetFleetStatusRequest.fromPartial(request), callOptions),
    drainAppliance: (request, callOptions) =>
      unary(FleetServiceService.drainAppliance, DrainApplianceRequest.fromPartial(request), callOptions),
    undrainAppliance: (request, callOptions) =>
      unary(FleetServiceService.undrainAppliance, UndrainApplianceRequest.fromPartial(request), callOptions),
    fenceZone: (request, callOptions) =>
      unary(FleetServiceService.fenceZone, FenceZoneRequest.fromPartial(request), callOptions),
    unfenceZone: (request, callOptions) =>
      unary(FleetServiceService.unfenceZone, UnfenceZoneRequest.fromPartial(request), callOptions),
    injectFault: (request, callOptions) =>
      unary(FleetServiceService.injectFault, InjectFaultRequest.fromPartial(request), callOptions),
    clearFaults: (request = {}, callOptions) =>
      unary(FleetServiceService.clearFaults, ClearFaultsRequest.fromPartial(request), callOptions),
    // Resync copies key versions inside the call: it gets the long maintenance deadline.
    resyncKeys: (request = {}, callOptions = {}) =>
      unary(FleetServiceService.resyncKeys, ResyncKeysRequest.fromPartial(request), {
        ...callOptions,
        deadlineMs: callOptions.deadlineMs ?? clientBackupDeadlineMs,
      }),


    searchAudit: (request = {}, callOptions) =>
      unary(AuditServiceService.searchAudit, SearchAuditRequest.fromPartial(request), callOptions),
    getAuditStatus: (callOptions) =>
      unary(AuditServiceService.getAuditStatus, GetAuditStatusRequest.fromPartial({}), callOptions),

    async *listAllKeys(request = {}, callOptions) {
      const seen = new Set<string>();
      let pageToken = '';
      do {
        const page = await client.listKeys({ pageSize: request.pageSize ?? 0, pageToken }, callOptions);
        yield* page.keys;
        pageToken = page.nextPageToken;
        // A broker that hands out a token twice would keep this loop going forever.
        if (seen.has(pageToken)) {
          throw new BrokerError(Code.INTERNAL, `ListKeys returned page token '${pageToken}' twice`);
        }
        seen.add(pageToken);
      } while (pageToken !== '');
    },
    encryptEnvelope: (keyId, data, context, callOptions) =>
      encryptEnvelope(client, keyId, data, context, callOptions),
    decryptEnvelope: (envelope, context, callOptions) =>
      decryptEnvelope(client, envelope, context, callOptions),

    close: () => channel.close(),
  };
  return client;
}

