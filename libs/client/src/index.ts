// The public surface of @hsm-broker/client. Files not named here are internal.
export { createBrokerClient, defaultDeadlineMs } from './broker-client.js';
export type { BrokerClient, BrokerClientOptions, PartialMessage } from './broker-client.js';
export type { BrokerCallOptions } from './call-options.js';
export { tlsCredentials } from './tls-credentials.js';
export type { TlsMaterial } from './tls-credentials.js';
export { decryptEnvelope, encryptEnvelope } from './envelope-encryption.js';
export type { DataKeyBroker } from './envelope-encryption.js';
export { encodeEncryptionContext } from './encryption-context.js';
export type { EncryptionContext } from './encryption-context.js';

// The messages and enums that appear in the client's signatures, so that
// callers need no second import. Each name is both the TypeScript type and the
// generated helper object (`fromPartial`, `toJSON`, ...).
export {
  ActiveFault,
  ApplianceState,
  ApplianceStatus,
  BreakerState,
  CancelKeyDeletionRequest,
  CancelKeyDeletionResponse,
  ClearFaultsRequest,
  ClearFaultsResponse,
  CreateKeyRequest,
  CreateKeyResponse,
  DataKeySpec,
  DecryptRequest,
  DecryptResponse,
  DescribeKeyRequest,
  DescribeKeyResponse,
  DisableKeyRequest,
  DisableKeyResponse,
  DrainApplianceRequest,
  DrainApplianceResponse,
  EnableKeyRequest,
  EnableKeyResponse,
  EncryptRequest,
  EncryptResponse,
  FaultKind,
  FenceZoneRequest,
  FenceZoneResponse,
  GenerateDataKeyRequest,
  GenerateDataKeyResponse,
  GenerateDataKeyWithoutPlaintextRequest,
  GenerateDataKeyWithoutPlaintextResponse,
  GenerateMacRequest,
  GenerateMacResponse,
  GenerateRandomRequest,
  GenerateRandomResponse,
  GetFleetStatusRequest,
  GetFleetStatusResponse,
  GetPublicKeyRequest,
  GetPublicKeyResponse,
  InjectFaultRequest,
  InjectFaultResponse,
  KeyMetadata,
  KeySpec,
  KeyState,
  KeyUsage,
  KeyVersion,
  ListKeysRequest,
  ListKeysResponse,
  MacAlgorithm,
  MessageType,
  ReEncryptRequest,
  ReEncryptResponse,
  RotateKeyRequest,
  RotateKeyResponse,
  ScheduleKeyDeletionRequest,
  ScheduleKeyDeletionResponse,
  SignRequest,
  SignResponse,
  SigningAlgorithm,
  UndrainApplianceRequest,
  UndrainApplianceResponse,
  UnfenceZoneRequest,
  UnfenceZoneResponse,
  VerifyMacRequest,
  VerifyMacResponse,
  VerifyRequest,
  VerifyResponse,
  ZoneStatus,
} from '@hsm-broker/proto';
