import {
  DataKeySpec,
  DecryptResponse,
  EncryptResponse,
  GenerateDataKeyResponse,
  GenerateDataKeyWithoutPlaintextResponse,
  GenerateMacResponse,
  GenerateRandomResponse,
  GetPublicKeyResponse,
  MacAlgorithm,
  MessageType,
  ReEncryptResponse,
  SignResponse,
  SigningAlgorithm,
  VerifyMacResponse,
  VerifyResponse,
} from '@hsm-broker/client';
import type { OptionSpecs } from './command-line.js';
import { ExitCode, type CommandContext, type CommandSpec } from './command.js';
import { dataInputOptions, readDataInput, readFileOrBase64 } from './data-input.js';
import { enumNames, parseEnumValue } from './enum-names.js';
import {
  binaryFormats,
  encodeByteResult,
  encodeJson,
  encodeText,
  outFileOption,
  outputOption,
  reportFormats,
  resolveOutputTarget,
  writeOutput,
  type OutputFormat,
  type OutputTarget,
} from './output-format.js';
import { contextOption, keyIdOption, keyVersionOption, readContext, readKeyVersion } from './shared-options.js';

const bytesOutput: OptionSpecs = {
  output: outputOption(binaryFormats, 'base64 on a terminal, raw otherwise'),
  ...outFileOption,
};

const plaintextOutput: OptionSpecs = {
  output: outputOption(binaryFormats, 'raw'),
  ...outFileOption,
};

const digestOption: OptionSpecs = {
  digest: {
    type: 'boolean',
    description: "The input is already a digest of the algorithm's hash, not the message",
  },
};

function bytesTarget(context: CommandContext, fallback: OutputFormat | 'bytes' = 'bytes'): OutputTarget {
  return resolveOutputTarget(context.options, binaryFormats, fallback, context.io.stdout.isTTY === true);
}

async function emit(context: CommandContext, target: OutputTarget, bytes: Uint8Array, toJson: () => unknown): Promise<number> {
  await writeOutput(context.io.stdout, target.outFile, encodeByteResult(target.format, bytes, toJson));
  return ExitCode.ok;
}

/** Prints the outcome of a verification; an invalid signature or MAC is exit status 3. */
async function emitVerdict(context: CommandContext, valid: boolean, toJson: () => unknown): Promise<number> {
  const format = resolveOutputTarget(context.options, reportFormats, 'text', false).format;
  await writeOutput(
    context.io.stdout,
    undefined,
    format === 'json' ? encodeJson(toJson()) : encodeText(valid ? 'valid' : 'invalid'),
  );
  return valid ? ExitCode.ok : ExitCode.verificationFailed;
}

function verdictFormatCheck(context: CommandContext): void {
  resolveOutputTarget(context.options, reportFormats, 'text', false);
}

const encryptCommand: CommandSpec = {
  path: ['encrypt'],
  synopsis: '--key-id KEY [--context K=V ...] [--in FILE | --data TEXT | --data-base64 B64] [--output FORMAT] [--out FILE]',
  summary: 'Encrypt up to 64 KiB under a key',
  description: 'For larger data use `hsmctl envelope encrypt`.',
  options: { 'key-id': keyIdOption, context: contextOption(), ...dataInputOptions, ...bytesOutput },
  async run(context) {
    const keyId = context.options.requiredString('key-id');
    const encryptionContext = readContext(context.options);
    const target = bytesTarget(context);
    const plaintext = await readDataInput(context.options, context.io);
    const response = await context.client().encrypt({ keyId, plaintext, encryptionContext });
    return emit(context, target, response.ciphertext, () => EncryptResponse.toJSON(response));
  },
};

const decryptCommand: CommandSpec = {
  path: ['decrypt'],
  synopsis: '[--context K=V ...] [--in FILE | --data TEXT | --data-base64 B64] [--output FORMAT] [--out FILE]',
  summary: 'Decrypt a ciphertext made by encrypt',
  description: 'The ciphertext names the key and version it was made with.',
  options: { context: contextOption('Encryption context entry given at encryption'), ...dataInputOptions, ...plaintextOutput },
  async run(context) {
    const encryptionContext = readContext(context.options);
    const target = bytesTarget(context, 'raw');
    const ciphertext = await readDataInput(context.options, context.io);
    const response = await context.client().decrypt({ ciphertext, encryptionContext });
    try {
      return await emit(context, target, response.plaintext, () => DecryptResponse.toJSON(response));
    } finally {
      response.plaintext.fill(0);
    }
  },
};

const reEncryptCommand: CommandSpec = {
  path: ['re-encrypt'],
  synopsis: '--destination-key-id KEY [--source-context K=V ...] [--context K=V ...] [--in FILE | --data TEXT | --data-base64 B64] [--output FORMAT] [--out FILE]',
  summary: 'Re-encrypt a ciphertext under another key',
  description: 'The plaintext never leaves the broker.',
  options: {
    'destination-key-id': { type: 'string', valueName: 'KEY', description: 'Key to encrypt under (required)' },
    'source-context': contextOption('Encryption context entry the ciphertext was made with'),
    context: contextOption('Encryption context entry for the new ciphertext'),
    ...dataInputOptions,
    ...bytesOutput,
  },
  async run(context) {
    const destinationKeyId = context.options.requiredString('destination-key-id');
    const sourceEncryptionContext = readContext(context.options, 'source-context');
    const destinationEncryptionContext = readContext(context.options);
    const target = bytesTarget(context);
    const ciphertext = await readDataInput(context.options, context.io);
    const response = await context.client().reEncrypt({
      ciphertext,
      sourceEncryptionContext,
      destinationKeyId,
      destinationEncryptionContext,
    });
    return emit(context, target, response.ciphertext, () => ReEncryptResponse.toJSON(response));
  },
};

const signCommand: CommandSpec = {
  path: ['sign'],
  synopsis: '--key-id KEY --algorithm ALG [--digest] [--in FILE | --data TEXT | --data-base64 B64] [--output FORMAT] [--out FILE]',
  summary: 'Sign a message (at most 4096 bytes) or a digest',
  description: 'ECDSA signatures are DER-encoded; RSA signatures are as long as the modulus.',
  options: {
    'key-id': keyIdOption,
    algorithm: {
      type: 'string',
      valueName: 'ALG',
      description: `Signing algorithm (required): ${enumNames(SigningAlgorithm).join(', ')}`,
    },
    ...digestOption,
    ...dataInputOptions,
    ...bytesOutput,
  },
  async run(context) {
    const keyId = context.options.requiredString('key-id');
    const signingAlgorithm = parseEnumValue(SigningAlgorithm, context.options.requiredString('algorithm'), '--algorithm');
    const target = bytesTarget(context);
    const message = await readDataInput(context.options, context.io);
    const response = await context.client().sign({
      keyId,
      message,
      messageType: context.options.flag('digest') ? MessageType.DIGEST : MessageType.RAW,
      signingAlgorithm,
    });
    return emit(context, target, response.signature, () => SignResponse.toJSON(response));
  },
};

const verifyCommand: CommandSpec = {
  path: ['verify'],
  synopsis: '--key-id KEY --algorithm ALG --signature FILE_OR_B64 [--key-version N] [--digest] [--in FILE | --data TEXT | --data-base64 B64]',
  summary: 'Verify a signature (exit status 3 if invalid)',
  description: 'Prints `valid` or `invalid`; an invalid signature exits with status 3.',
  options: {
    'key-id': keyIdOption,
    algorithm: {
      type: 'string',
      valueName: 'ALG',
      description: `Signing algorithm (required): ${enumNames(SigningAlgorithm).join(', ')}`,
    },
    signature: {
      type: 'string',
      valueName: 'FILE_OR_B64',
      description: 'The signature: a file holding it, or its base64 (required)',
    },
    'key-version': keyVersionOption,
    ...digestOption,
    ...dataInputOptions,
    output: outputOption(reportFormats, 'text'),
  },
  async run(context) {
    const { options } = context;
    const keyId = options.requiredString('key-id');
    const signingAlgorithm = parseEnumValue(SigningAlgorithm, options.requiredString('algorithm'), '--algorithm');
    const keyVersion = readKeyVersion(options);
    verdictFormatCheck(context);
    const signature = await readFileOrBase64(options.requiredString('signature'), '--signature');
    const message = await readDataInput(options, context.io);
    const response = await context.client().verify({
      keyId,
      keyVersion,
      message,
      messageType: options.flag('digest') ? MessageType.DIGEST : MessageType.RAW,
      signature,
      signingAlgorithm,
    });
    return emitVerdict(context, response.signatureValid, () => VerifyResponse.toJSON(response));
  },
};

const publicKeyFormats: readonly OutputFormat[] = ['pem', 'raw', 'base64', 'json'];

const publicKeyCommand: CommandSpec = {
  path: ['public-key'],
  synopsis: '--key-id KEY [--key-version N] [--output FORMAT] [--out FILE]',
  summary: "Print an asymmetric key's public half",
  description: 'raw and base64 give the DER-encoded SubjectPublicKeyInfo.',
  options: {
    'key-id': keyIdOption,
    'key-version': keyVersionOption,
    output: outputOption(publicKeyFormats, 'pem'),
    ...outFileOption,
  },
  async run(context) {
    const keyId = context.options.requiredString('key-id');
    const keyVersion = readKeyVersion(context.options);
    const target = resolveOutputTarget(context.options, publicKeyFormats, 'pem', false);
    const response = await context.client().getPublicKey({ keyId, keyVersion });
    const bytes =
      target.format === 'pem'
        ? encodeText(response.publicKeyPem)
        : encodeByteResult(target.format, response.publicKeyDer, () => GetPublicKeyResponse.toJSON(response));
    await writeOutput(context.io.stdout, target.outFile, bytes);
    return ExitCode.ok;
  },
};

const randomCommand: CommandSpec = {
  path: ['random'],
  synopsis: '--bytes N [--output FORMAT] [--out FILE]',
  summary: 'Print random bytes drawn from an HSM',
  options: {
    bytes: { type: 'string', valueName: 'N', description: 'How many bytes, 1 to 1024 (required)' },
    ...bytesOutput,
  },
  async run(context) {
    const numBytes = context.options.requiredInteger('bytes', { min: 1, max: 1024 });
    const target = bytesTarget(context);
    const response = await context.client().generateRandom({ numBytes });
    return emit(context, target, response.random, () => GenerateRandomResponse.toJSON(response));
  },
};

const dataKeyCommand: CommandSpec = {
  path: ['data-key'],
  synopsis: '--key-id KEY [--spec AES_256|AES_128] [--context K=V ...] [--without-plaintext] [--out FILE]',
  summary: 'Generate a data key (JSON)',
  description:
    'Prints the data key in plaintext and encrypted under the key (plaintext and ciphertextBlob, base64). The plaintext is a secret: prefer ' +
    '--without-plaintext, or `envelope encrypt`, which never shows it.',
  options: {
    'key-id': keyIdOption,
    spec: { type: 'string', valueName: 'SPEC', description: `Data key size: ${enumNames(DataKeySpec).join(', ')} (default: AES_256)` },
    context: contextOption(),
    'without-plaintext': { type: 'boolean', description: 'Return only the encrypted data key' },
    output: outputOption(['json'], 'json'),
    ...outFileOption,
  },
  async run(context) {
    const { options } = context;
    const keyId = options.requiredString('key-id');
    const spec = options.string('spec');
    const keySpec = spec === undefined ? DataKeySpec.AES_256 : parseEnumValue(DataKeySpec, spec, '--spec');
    const encryptionContext = readContext(options);
    const target = resolveOutputTarget(options, ['json'], 'json', false);
    const client = context.client();
    if (options.flag('without-plaintext')) {
      const response = await client.generateDataKeyWithoutPlaintext({ keyId, keySpec, encryptionContext });
      await writeOutput(context.io.stdout, target.outFile, encodeJson(GenerateDataKeyWithoutPlaintextResponse.toJSON(response)));
      return ExitCode.ok;
    }
    const response = await client.generateDataKey({ keyId, keySpec, encryptionContext });
    try {
      await writeOutput(context.io.stdout, target.outFile, encodeJson(GenerateDataKeyResponse.toJSON(response)));
    } finally {
      response.plaintext.fill(0);
    }
    return ExitCode.ok;
  },
};

const macAlgorithmOption: OptionSpecs = {
  algorithm: {
    type: 'string',
    valueName: 'ALG',
    description: `MAC algorithm (required): ${enumNames(MacAlgorithm).join(', ')}`,
  },
};

const macCommand: CommandSpec = {
  path: ['mac'],
  synopsis: '--key-id KEY --algorithm ALG [--in FILE | --data TEXT | --data-base64 B64] [--output FORMAT] [--out FILE]',
  summary: 'Compute an HMAC',
  options: { 'key-id': keyIdOption, ...macAlgorithmOption, ...dataInputOptions, ...bytesOutput },
  async run(context) {
    const keyId = context.options.requiredString('key-id');
    const macAlgorithm = parseEnumValue(MacAlgorithm, context.options.requiredString('algorithm'), '--algorithm');
    const target = bytesTarget(context);
    const message = await readDataInput(context.options, context.io);
    const response = await context.client().generateMac({ keyId, message, macAlgorithm });
    return emit(context, target, response.mac, () => GenerateMacResponse.toJSON(response));
  },
};

const verifyMacCommand: CommandSpec = {
  path: ['verify-mac'],
  synopsis: '--key-id KEY --algorithm ALG --mac FILE_OR_B64 [--key-version N] [--in FILE | --data TEXT | --data-base64 B64]',
  summary: 'Verify an HMAC (exit status 3 if invalid)',
  description: 'Prints `valid` or `invalid`; an invalid MAC exits with status 3.',
  options: {
    'key-id': keyIdOption,
    ...macAlgorithmOption,
    mac: { type: 'string', valueName: 'FILE_OR_B64', description: 'The MAC: a file holding it, or its base64 (required)' },
    'key-version': keyVersionOption,
    ...dataInputOptions,
    output: outputOption(reportFormats, 'text'),
  },
  async run(context) {
    const { options } = context;
    const keyId = options.requiredString('key-id');
    const macAlgorithm = parseEnumValue(MacAlgorithm, options.requiredString('algorithm'), '--algorithm');
    const keyVersion = readKeyVersion(options);
    verdictFormatCheck(context);
    const mac = await readFileOrBase64(options.requiredString('mac'), '--mac');
    const message = await readDataInput(options, context.io);
    const response = await context.client().verifyMac({ keyId, keyVersion, message, mac, macAlgorithm });
    return emitVerdict(context, response.macValid, () => VerifyMacResponse.toJSON(response));
  },
};

/** The single-call cryptographic commands. */
export const cryptoCommands: readonly CommandSpec[] = [
  encryptCommand,
  decryptCommand,
  reEncryptCommand,
  signCommand,
  verifyCommand,
  publicKeyCommand,
  randomCommand,
  dataKeyCommand,
  macCommand,
  verifyMacCommand,
];
