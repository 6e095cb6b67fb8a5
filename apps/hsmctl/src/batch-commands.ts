import {
  BatchDecryptResult,
  BatchEncryptResult,
  BatchGenerateMacResult,
  BatchSignResult,
  BatchVerifyResult,
  DecryptRequest,
  EncryptRequest,
  GenerateMacRequest,
  SignRequest,
  VerifyRequest,
} from '@hsm-broker/client';
import type { BrokerClient } from '@hsm-broker/client';
import { UsageError } from './command-line.js';
import { ExitCode, type CommandSpec } from './command.js';
import { dataInputOptions, readDataInput } from './data-input.js';
import { encodeJson, outFileOption, writeOutput } from './output-format.js';

/** One batch operation: how an item is read from JSON, which call carries them, how a result is written. */
interface BatchOperation {
  name: string;
  rpc: string;
  run(client: BrokerClient, items: unknown[]): Promise<unknown[]>;
}

const operations: readonly BatchOperation[] = [
  { name: 'encrypt', rpc: 'BatchEncrypt', run: async (client, items) => (await client.batchEncrypt(items.map((item) => EncryptRequest.fromJSON(item)))).map((result) => BatchEncryptResult.toJSON(result)) },
  { name: 'decrypt', rpc: 'BatchDecrypt', run: async (client, items) => (await client.batchDecrypt(items.map((item) => DecryptRequest.fromJSON(item)))).map((result) => BatchDecryptResult.toJSON(result)) },
  { name: 'sign', rpc: 'BatchSign', run: async (client, items) => (await client.batchSign(items.map((item) => SignRequest.fromJSON(item)))).map((result) => BatchSignResult.toJSON(result)) },
  { name: 'verify', rpc: 'BatchVerify', run: async (client, items) => (await client.batchVerify(items.map((item) => VerifyRequest.fromJSON(item)))).map((result) => BatchVerifyResult.toJSON(result)) },
  {
    name: 'mac',
    rpc: 'BatchGenerateMac',
    run: async (client, items) => (await client.batchGenerateMac(items.map((item) => GenerateMacRequest.fromJSON(item)))).map((result) => BatchGenerateMacResult.toJSON(result)),
  },
];

function batchCommand(operation: BatchOperation): CommandSpec {
  return {
    path: ['batch', operation.name],
    synopsis: '[--in FILE | --data JSON] [--out FILE]',
    summary: `${operation.rpc}: up to 1000 items in one call, each with its own key`,
    description:
      'The input is a JSON array of requests in the proto JSON form of the unary call (bytes as base64, e.g. ' +
      '[{"keyId":"app/k","plaintext":"aGk="}]). Prints a JSON array of results in the same order, each with its ' +
      '"response" or its "error" (code, reason, message). Exits 1 when any item failed.',
    options: { ...dataInputOptions, ...outFileOption },
    async run(context) {
      const text = (await readDataInput(context.options, context.io)).toString('utf8');
      let items: unknown;
      try {
        items = JSON.parse(text);
      } catch (error: unknown) {
        throw new UsageError(`the input is not JSON: ${error instanceof Error ? error.message : String(error)}`);
      }
      if (!Array.isArray(items)) throw new UsageError('the input must be a JSON array of requests');
      const results = await operation.run(context.client(), items);
      const outFile = context.options.string('out');
      await writeOutput(context.io.stdout, outFile, encodeJson(results));
      const failed = results.some((result) => typeof result === 'object' && result !== null && 'error' in result);
      return failed ? ExitCode.failure : ExitCode.ok;
    },
  };
}

/** `hsmctl batch encrypt|decrypt|sign|verify|mac`. */
export const batchCommands: readonly CommandSpec[] = operations.map(batchCommand);
