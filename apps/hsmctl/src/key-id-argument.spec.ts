import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { KeyMetadata, KeySpec, KeyUsage, type BrokerClient } from '@hsm-broker/client';
import { commands, runCli } from './cli.js';

/** Runs hsmctl against a stand-in client that records the key id of every request. */
async function run(argv: string[]): Promise<{ status: number; stderr: string; keyIds: string[] }> {
  const keyIds: string[] = [];
  let stderr = '';
  const answer = (request: { keyId?: string }) => {
    keyIds.push(request.keyId ?? '');
    return Promise.resolve({
      keyMetadata: KeyMetadata.fromPartial({ keyId: request.keyId ?? '', keySpec: KeySpec.ECC_NIST_P256, keyUsage: KeyUsage.SIGN_VERIFY }),
      signature: Buffer.from('sig'),
      keyVersion: 1,
    });
  };
  const client = new Proxy({} as BrokerClient, {
    get: (_target, property: string) => (property === 'close' ? () => undefined : answer),
  });
  const sink = (collect: (text: string) => void) =>
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        collect(chunk.toString());
        callback();
      },
    });
  const status = await runCli(
    argv,
    {
      stdin: Object.assign(Readable.from([Buffer.from('')]), { isTTY: false }),
      stdout: Object.assign(sink(() => undefined), { isTTY: false }),
      stderr: Object.assign(sink((text) => (stderr += text)), { isTTY: false }),
      env: {},
    },
    () => client,
  );
  return { status, stderr, keyIds };
}

describe('hsmctl key ids, as --key-id or as the argument', () => {
  it('keys describe takes --key-id as well as KEY', async () => {
    assert.deepEqual((await run(['keys', 'describe', '--key-id', 'demo/sign'])).keyIds, ['demo/sign']);
    assert.deepEqual((await run(['keys', 'describe', 'demo/sign'])).keyIds, ['demo/sign']);
  });

  it('sign and keys create take the key as their argument as well as --key-id', async () => {
    const positional = await run(['sign', 'demo/sign', '--algorithm', 'ECDSA_SHA_256', '--data', 'm', '--output', 'base64']);
    assert.equal(positional.status, 0, positional.stderr);
    assert.deepEqual(positional.keyIds, ['demo/sign']);
    const created = await run(['keys', 'create', 'demo/new', '--spec', 'AES_256', '--usage', 'ENCRYPT_DECRYPT']);
    assert.equal(created.status, 0, created.stderr);
    assert.deepEqual(created.keyIds, ['demo/new']);
  });

  it('the same key given both ways is accepted; two different keys are refused before any call', async () => {
    assert.deepEqual((await run(['keys', 'describe', 'k1', '--key-id', 'k1'])).keyIds, ['k1']);
    const twice = await run(['keys', 'describe', 'k1', '--key-id', 'k2']);
    assert.equal(twice.status, 2);
    assert.match(twice.stderr, /given twice, as 'k1' and as --key-id 'k2'/);
    assert.deepEqual(twice.keyIds, []);
    const signTwice = await run(['sign', 'k1', '--key-id', 'k2', '--algorithm', 'ECDSA_SHA_256', '--data', 'm']);
    assert.equal(signTwice.status, 2);
    assert.deepEqual(signTwice.keyIds, []);
  });

  it('every command that names one key accepts both forms', () => {
    const keyCommands = commands.filter((command) => command.options['key-id'] !== undefined);
    assert.ok(keyCommands.length >= 15, `only ${String(keyCommands.length)} commands take a key`);
    for (const command of keyCommands) {
      const positional = command.positionals?.[0] === 'KEY' || command.optionalPositionals?.[0] === 'KEY';
      assert.ok(positional, `${command.path.join(' ')} takes --key-id but no KEY argument`);
    }
    for (const command of commands.filter((c) => c.positionals?.[0] === 'KEY')) {
      assert.ok(command.options['key-id'], `${command.path.join(' ')} takes KEY but not --key-id`);
    }
  });
});
