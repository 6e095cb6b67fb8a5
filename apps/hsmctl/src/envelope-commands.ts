import { ExitCode, type CommandSpec } from './command.js';
import { dataInputOptions, readDataInput } from './data-input.js';
import {
  binaryFormats,
  encodeByteResult,
  outFileOption,
  outputOption,
  resolveOutputTarget,
  writeOutput,
} from './output-format.js';
import { contextOption, keyIdOption, readContext } from './shared-options.js';

const envelopeEncryptCommand: CommandSpec = {
  path: ['envelope', 'encrypt'],
  synopsis: '--key-id KEY [--context K=V ...] [--in FILE | --data TEXT | --data-base64 B64] [--output FORMAT] [--out FILE]',
  summary: 'Encrypt data of any size locally under a data key',
  description:
    'Asks the broker for an AES-256 data key, encrypts with AES-256-GCM on this machine and ' +
    'writes one envelope holding the wrapped data key, IV, tag and ciphertext. The data never ' +
    'reaches the broker.',
  options: {
    'key-id': keyIdOption,
    context: contextOption(),
    ...dataInputOptions,
    output: outputOption(binaryFormats, 'base64 on a terminal, raw otherwise'),
    ...outFileOption,
  },
  async run(context) {
    const keyId = context.options.requiredString('key-id');
    const encryptionContext = readContext(context.options);
    const target = resolveOutputTarget(context.options, binaryFormats, 'bytes', context.io.stdout.isTTY === true);
    const data = await readDataInput(context.options, context.io);
    const envelope = await context.client().encryptEnvelope(keyId, data, encryptionContext);
    await writeOutput(
      context.io.stdout,
      target.outFile,
      encodeByteResult(target.format, envelope, () => ({ envelope: envelope.toString('base64') })),
    );
    return ExitCode.ok;
  },
};

const envelopeDecryptCommand: CommandSpec = {
  path: ['envelope', 'decrypt'],
  synopsis: '[--context K=V ...] [--in FILE | --data TEXT | --data-base64 B64] [--output FORMAT] [--out FILE]',
  summary: 'Decrypt an envelope made by envelope encrypt',
  options: {
    context: contextOption('Encryption context entry given at encryption'),
    ...dataInputOptions,
    output: outputOption(binaryFormats, 'raw'),
    ...outFileOption,
  },
  async run(context) {
    const encryptionContext = readContext(context.options);
    const target = resolveOutputTarget(context.options, binaryFormats, 'raw', context.io.stdout.isTTY === true);
    const envelope = await readDataInput(context.options, context.io);
    const data = await context.client().decryptEnvelope(envelope, encryptionContext);
    try {
      await writeOutput(
        context.io.stdout,
        target.outFile,
        encodeByteResult(target.format, data, () => ({ data: data.toString('base64') })),
      );
    } finally {
      data.fill(0);
    }
    return ExitCode.ok;
  },
};

/** `envelope encrypt` and `envelope decrypt`. */
export const envelopeCommands: readonly CommandSpec[] = [envelopeEncryptCommand, envelopeDecryptCommand];
