import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { createBrokerClient } from '@hsm-broker/client';
import { startBrokerUnderTest, type BrokerUnderTest } from './broker-under-test.js';
import { hsmctlCommand, runHsmctl } from './hsmctl-run.js';
import { runPipeline, runProcess, type ProcessResult } from './process-run.js';
import { temporaryDirectory } from './temporary-directory.js';

// hsmctl as an operator runs it: a child process talking to a real broker,
// data through pipes and files, and signatures checked by the openssl CLI,
// an implementation that shares no code with ours.

/** Asserts a zero exit and returns stdout as text. */
function succeeded(result: ProcessResult, what: string): string {
  assert.equal(result.status, 0, `${what} exited ${String(result.status)}: ${result.stderr}`);
  return result.stdout.toString('utf8');
}

describe('hsmctl against a real broker', { timeout: 600_000 }, () => {
  let target: BrokerUnderTest;
  const hsmctl = (args: readonly string[], input?: Uint8Array | string): Promise<ProcessResult> =>
    runHsmctl(target.address, args, input === undefined ? {} : { input });

  before(async () => {
    target = await startBrokerUnderTest();
  });

  after(async () => {
    await target?.dispose();
  });

  it('creates keys, as text and as JSON', async () => {
    const text = succeeded(
      await hsmctl(['keys', 'create', '--spec', 'aes_256', '--usage', 'encrypt-decrypt', '--key-id', 'cli/aes', '--label', 'team=ops']),
      'keys create',
    );
    assert.match(text, /cli\/aes/);
    assert.match(text, /ENABLED/);

    for (const [keyId, spec] of [
      ['cli/ec', 'ECC_NIST_P256'],
      ['cli/rsa', 'RSA_2048'],
    ] as const) {
      const json = succeeded(
        await hsmctl(['keys', 'create', '--spec', spec, '--usage', 'SIGN_VERIFY', '--key-id', keyId, '--output', 'json']),
        `keys create ${spec}`,
      );
      const key = JSON.parse(json) as { keyId: string; keySpec: string; keyState: string; replicas: string[] };
      assert.equal(key.keyId, keyId);
      assert.equal(key.keySpec, `KEY_SPEC_${spec}`);
      assert.equal(key.keyState, 'KEY_STATE_ENABLED');
      assert.equal(key.replicas.length, 3);
    }

    const listed = succeeded(await hsmctl(['keys', 'list', '--all', '--output', 'json']), 'keys list');
    const ids = (JSON.parse(listed) as { keys: { keyId: string }[] }).keys.map((key) => key.keyId);
    assert.deepEqual(ids.sort(), ['cli/aes', 'cli/ec', 'cli/rsa']);
  });

  it('encrypts and decrypts binary data through a pipe between two hsmctl processes', async () => {
    // Every byte value, including NUL and bytes that are not UTF-8.
    const plaintext = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, index) => index)), randomBytes(8192)]);
    const [encrypt, decrypt] = await runPipeline(
      [
        hsmctlCommand(target.address, ['encrypt', '--key-id', 'cli/aes', '--context', 'tenant=acme']),
        hsmctlCommand(target.address, ['decrypt', '--context', 'tenant=acme']),
      ],
      { input: plaintext },
    );
    assert.ok(encrypt && decrypt);
    assert.equal(encrypt.status, 0, encrypt.stderr);
    assert.equal(decrypt.status, 0, decrypt.stderr);
    assert.deepEqual(decrypt.stdout, plaintext);

    // The ciphertext on its own: raw bytes into a pipe, and a different context is refused.
    const sealed = await hsmctl(['encrypt', '--key-id', 'cli/aes', '--context', 'tenant=acme'], plaintext);
    succeeded(sealed, 'encrypt');
    assert.notDeepEqual(sealed.stdout.subarray(0, plaintext.length), plaintext);
    const wrongContext = await hsmctl(['decrypt', '--context', 'tenant=other'], sealed.stdout);
    assert.equal(wrongContext.status, 1);
    assert.match(wrongContext.stderr, /^hsmctl: INVALID_ARGUMENT: ciphertext: .* \[INVALID_CIPHERTEXT\]\n$/);
    assert.equal(wrongContext.stdout.length, 0, 'no plaintext is written on failure');
  });

  it('mints data keys whose encrypted form decrypts to the plaintext form, and prints random bytes', async () => {
    for (const [spec, length] of [
      ['AES_256', 32],
      ['AES_128', 16],
    ] as const) {
      const printed = succeeded(await hsmctl(['data-key', '--key-id', 'cli/aes', '--spec', spec, '--context', 'tenant=acme']), `data-key ${spec}`);
      const dataKey = JSON.parse(printed) as { keyId: string; plaintext: string; ciphertextBlob: string };
      assert.equal(dataKey.keyId, 'cli/aes');
      const plaintext = Buffer.from(dataKey.plaintext, 'base64');
      assert.equal(plaintext.length, length, `${spec} is ${String(length)} bytes`);
      // The encrypted form is an ordinary ciphertext of the key: Decrypt gives the same bytes back.
      const unwrapped = await hsmctl(['decrypt', '--context', 'tenant=acme'], Buffer.from(dataKey.ciphertextBlob, 'base64'));
      succeeded(unwrapped, 'decrypt of the data key');
      assert.deepEqual(unwrapped.stdout, plaintext);
    }
    const sealedOnly = JSON.parse(succeeded(await hsmctl(['data-key', '--key-id', 'cli/aes', '--without-plaintext']), 'data-key --without-plaintext')) as Record<string, unknown>;
    assert.equal(sealedOnly['plaintext'], undefined);
    assert.equal(typeof sealedOnly['ciphertextBlob'], 'string');

    const first = succeeded(await hsmctl(['random', '--bytes', '16', '--output', 'hex']), 'random').trim();
    const second = succeeded(await hsmctl(['random', '--bytes', '16', '--output', 'hex']), 'random').trim();
    assert.match(first, /^[0-9a-f]{32}$/);
    assert.notEqual(first, second, 'two draws differ');
  });

  it('envelope-encrypts a 1 MiB file to a file and back', async () => {
    await using dir = temporaryDirectory();
    const data = randomBytes(1024 * 1024);
    writeFileSync(dir.file('data.bin'), data);
    succeeded(
      await hsmctl(['envelope', 'encrypt', '--key-id', 'cli/aes', '--in', dir.file('data.bin'), '--out', dir.file('data.hsbe')]),
      'envelope encrypt',
    );
    assert.equal(readFileSync(dir.file('data.hsbe')).subarray(0, 4).toString('latin1'), 'HSBE');
    const opened = await hsmctl(['envelope', 'decrypt', '--in', dir.file('data.hsbe')]);
    succeeded(opened, 'envelope decrypt');
    assert.deepEqual(opened.stdout, data);
  });

  it('signs a file; openssl verifies the ECDSA signature with the public key hsmctl printed', async () => {
    await using dir = temporaryDirectory();
    const file = dir.file('release.tar');
    writeFileSync(file, randomBytes(4000));
    succeeded(
      await hsmctl(['sign', '--key-id', 'cli/ec', '--algorithm', 'ecdsa_sha_256', '--in', file, '--out', dir.file('sig.bin')]),
      'sign',
    );
    succeeded(await hsmctl(['public-key', '--key-id', 'cli/ec', '--out', dir.file('pub.pem')]), 'public-key');
    assert.match(readFileSync(dir.file('pub.pem'), 'utf8'), /^-----BEGIN PUBLIC KEY-----\n/);

    const openssl = await runProcess('openssl', [
      'dgst', '-sha256', '-verify', dir.file('pub.pem'), '-signature', dir.file('sig.bin'), file,
    ]);
    assert.equal(openssl.status, 0, openssl.stderr);
    assert.match(openssl.stdout.toString(), /Verified OK/);

    const verified = await hsmctl([
      'verify', '--key-id', 'cli/ec', '--algorithm', 'ECDSA_SHA_256', '--signature', dir.file('sig.bin'), '--in', file,
    ]);
    assert.equal(succeeded(verified, 'verify'), 'valid\n');

    // One changed byte: both implementations say no, hsmctl with exit status 3.
    const tampered = readFileSync(file);
    tampered[100] = (tampered[100] ?? 0) ^ 0x01;
    writeFileSync(dir.file('tampered.tar'), tampered);
    const opensslRejects = await runProcess('openssl', [
      'dgst', '-sha256', '-verify', dir.file('pub.pem'), '-signature', dir.file('sig.bin'), dir.file('tampered.tar'),
    ]);
    assert.notEqual(opensslRejects.status, 0);
    assert.match(opensslRejects.stdout.toString(), /Verification failure/);
    const hsmctlRejects = await hsmctl([
      'verify', '--key-id', 'cli/ec', '--algorithm', 'ecdsa_sha_256', '--signature', dir.file('sig.bin'), '--in', dir.file('tampered.tar'),
    ]);
    assert.equal(hsmctlRejects.status, 3, hsmctlRejects.stderr);
    assert.equal(hsmctlRejects.stdout.toString(), 'invalid\n');
  });

  it('signs the openssl digest of a large file (--digest), for RSA PSS and PKCS#1 v1.5; openssl verifies both', async () => {
    await using dir = temporaryDirectory();
    const file = dir.file('image.bin');
    writeFileSync(file, randomBytes(2 * 1024 * 1024));
    succeeded(await hsmctl(['public-key', '--key-id', 'cli/rsa', '--out', dir.file('rsa.pem')]), 'public-key');
    const schemes = [
      { algorithm: 'RSASSA_PSS_SHA_256', sigopts: ['-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:digest'] },
      { algorithm: 'RSASSA_PKCS1_V1_5_SHA_256', sigopts: [] },
    ];
    for (const { algorithm, sigopts } of schemes) {
      const signature = dir.file(`${algorithm}.sig`);
      // openssl hashes the file and pipes the 32-byte digest straight into hsmctl.
      const [digest, sign] = await runPipeline([
        { command: 'openssl', args: ['dgst', '-sha256', '-binary', file] },
        hsmctlCommand(target.address, ['sign', '--key-id', 'cli/rsa', '--algorithm', algorithm, '--digest', '--out', signature]),
      ]);
      assert.equal(digest?.status, 0, digest?.stderr);
      assert.equal(sign?.status, 0, sign?.stderr);
      assert.equal(readFileSync(signature).length, 256, 'an RSA-2048 signature is as long as the modulus');
      const openssl = await runProcess('openssl', [
        'dgst', '-sha256', '-verify', dir.file('rsa.pem'), ...sigopts, '-signature', signature, file,
      ]);
      assert.equal(openssl.status, 0, `${algorithm}: ${openssl.stdout.toString()} ${openssl.stderr}`);
      assert.match(openssl.stdout.toString(), /Verified OK/);
    }
  });

  it('shows every appliance in fleet status', async () => {
    const client = createBrokerClient({ address: target.address });
    let ids: string[];
    try {
      ids = (await client.getFleetStatus()).appliances.map((appliance) => appliance.id);
    } finally {
      client.close();
    }
    assert.equal(ids.length, 3);
    const text = succeeded(await hsmctl(['fleet', 'status']), 'fleet status');
    assert.match(text, /^ZONE\s+APPLIANCES\s+HEALTHY/m);
    assert.match(text, /^APPLIANCE\s+ZONE\s+STATE\s+BREAKER\s+EJECTIONS\s+DRAINED/m);
    for (const id of ids) assert.match(text, new RegExp(`^${id}\\s`, 'm'), id);
    const json = JSON.parse(succeeded(await hsmctl(['fleet', 'status', '--output', 'json']), 'fleet status --output json')) as {
      appliances: { id: string }[];
    };
    assert.deepEqual(json.appliances.map((appliance) => appliance.id).sort(), [...ids].sort());
  });

  it('exits 2 on usage errors, before calling the broker', async () => {
    const cases: [string[], RegExp][] = [
      [[], /^hsmctl: INVALID_ARGUMENT: missing command\n\nUsage: hsmctl <command>/],
      [['keys', 'frobnicate'], /^hsmctl: INVALID_ARGUMENT: unknown command 'keys frobnicate'/],
      [['keys', 'create', '--spec', 'AES_512', '--usage', 'encrypt_decrypt'], /--spec: unknown value 'AES_512'/],
      [['encrypt', '--key-id', 'cli/aes', '--bogus'], /unknown option '--bogus'/],
      [['random', '--bytes', '2000'], /--bytes: expected an integer from 1 to 1024, got '2000'/],
      [['fleet', 'drain'], /missing argument APPLIANCE/],
      [['fleet', 'inject', 'hsm-a1', '--kind', 'error', '--probability', '2'], /--probability: expected a number from 0 to 1/],
      [['fleet', 'inject', 'hsm-a1', '--kind', 'latency', '--latency-ms', '0'], /--latency-ms: expected an integer from 1 to 4294967295, got '0'/],
      [['keys', 'update', 'cli/aes'], /nothing to change/],
      [['backup', 'create'], /missing required option --out/],
    ];
    for (const [args, message] of cases) {
      const result = await hsmctl(args, '');
      assert.equal(result.status, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message, args.join(' '));
      assert.equal(result.stdout.length, 0, args.join(' '));
    }
    // The connection settings are checked before any call as well.
    const badDeadline = await hsmctl(['fleet', 'status', '--deadline-ms', '0']);
    assert.equal(badDeadline.status, 2, badDeadline.stderr);
  });

  it('exits 1 with CODE: message [REASON] when the broker refuses', async () => {
    const notFound = await hsmctl(['keys', 'describe', 'cli/none']);
    assert.equal(notFound.status, 1);
    assert.equal(notFound.stderr, 'hsmctl: NOT_FOUND: key_id: key cli/none does not exist [KEY_NOT_FOUND]\n');

    const wrongUsage = await hsmctl(['encrypt', '--key-id', 'cli/ec', '--data', 'x']);
    assert.equal(wrongUsage.status, 1);
    assert.match(wrongUsage.stderr, /^hsmctl: FAILED_PRECONDITION: .* \[WRONG_KEY_USAGE\]\n$/);

    succeeded(await hsmctl(['keys', 'disable', 'cli/aes']), 'keys disable');
    try {
      const disabled = await hsmctl(['encrypt', '--key-id', 'cli/aes', '--data', 'x']);
      assert.equal(disabled.status, 1);
      assert.equal(disabled.stderr, 'hsmctl: FAILED_PRECONDITION: key cli/aes is disabled [KEY_DISABLED]\n');
    } finally {
      succeeded(await hsmctl(['keys', 'enable', 'cli/aes']), 'keys enable');
    }
  });

  it('exits 1 with UNAVAILABLE when nothing listens at the address', async () => {
    const result = await runHsmctl('127.0.0.1:1', ['fleet', 'status', '--deadline-ms', '5000']);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /^hsmctl: UNAVAILABLE: /);
  });
});
