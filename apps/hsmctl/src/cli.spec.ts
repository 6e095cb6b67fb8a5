import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import {
  ApplianceState,
  ApplianceStatus,
  BackupSummary,
  FaultKind,
  KeyMetadata,
  KeySpec,
  KeyUsage,
  type BrokerClient,
  type BrokerClientOptions,
  type PartialMessage,
} from '@hsm-broker/client';
import { BrokerError, Code } from '@hsm-broker/errors';
import { runCli, type ConnectBroker } from './cli.js';

interface Run {
  status: number;
  stdout: Buffer;
  stderr: string;
  calls: string[];
  connectedWith: BrokerClientOptions | undefined;
}

/**
 * Runs hsmctl against a stand-in for the client library (not the broker):
 * these tests are about argument handling and output, and the client has its
 * own tests.
 */
async function run(
  argv: string[],
  client: Partial<BrokerClient> = {},
  options: { stdin?: string; stdoutIsTTY?: boolean; stderrIsTTY?: boolean; env?: Record<string, string> } = {},
): Promise<Run> {
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  const calls: string[] = [];
  let connectedWith: BrokerClientOptions | undefined;
  const sink = (chunks: Buffer[]) =>
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk);
        callback();
      },
    });
  const connect: ConnectBroker = (clientOptions) => {
    connectedWith = clientOptions;
    return new Proxy(client, {
      get(target, property: string) {
        if (property === 'close') return () => calls.push('close');
        const method = (target as Record<string, unknown>)[property];
        if (typeof method !== 'function') throw new Error(`unexpected call ${property}`);
        return (...args: unknown[]) => {
          calls.push(property);
          return (method as (...a: unknown[]) => unknown)(...args);
        };
      },
    }) as BrokerClient;
  };
  const status = await runCli(
    argv,
    {
      stdin: Object.assign(Readable.from([Buffer.from(options.stdin ?? '')]), { isTTY: false }),
      stdout: Object.assign(sink(stdout), { isTTY: options.stdoutIsTTY ?? false }),
      stderr: Object.assign(sink(stderr), { isTTY: options.stderrIsTTY ?? false }),
      env: options.env ?? {},
    },
    connect,
  );
  return { status, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString(), calls, connectedWith };
}

describe('hsmctl', () => {
  it('prints help on stdout and exits 0', async () => {
    const result = await run(['--help']);
    assert.equal(result.status, 0);
    assert.match(result.stdout.toString(), /^Usage: hsmctl <command> \[options\]/);
    assert.match(result.stdout.toString(), /fleet status/);
    const command = await run(['keys', 'create', '--help']);
    assert.match(command.stdout.toString(), /^Usage: hsmctl keys create --spec SPEC --usage USAGE/);
    const viaHelpWord = await run(['help', 'keys', 'create']);
    assert.equal(viaHelpWord.stdout.toString(), command.stdout.toString());
  });

  it('prints usage on stderr and exits 2 without arguments', async () => {
    const result = await run([]);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /^Usage: hsmctl <command>/);
  });

  it('rejects an unknown command with usage and exit 2', async () => {
    const result = await run(['keys', 'frobnicate']);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /^hsmctl: INVALID_ARGUMENT: unknown command 'keys frobnicate'\n\nUsage: hsmctl keys <command>/);
    assert.deepEqual(result.calls, []);
  });

  it('rejects an unknown flag with the command usage and exit 2', async () => {
    const result = await run(['fleet', 'status', '--verbose']);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /^hsmctl: INVALID_ARGUMENT: unknown option '--verbose'\n\nUsage: hsmctl fleet status/);
  });

  it('rejects a bad enum value before calling the broker', async () => {
    const result = await run(['keys', 'create', '--spec', 'AES_512', '--usage', 'ENCRYPT_DECRYPT'], {
      createKey: () => assert.fail('must not be called'),
    });
    assert.equal(result.status, 2);
    assert.match(result.stderr, /--spec: unknown value 'AES_512'; allowed: AES_256, HMAC_256/);
    assert.match(result.stderr, /Run 'hsmctl keys create --help' for usage\./);
    assert.deepEqual(result.calls, []);
  });

  it('rejects a bad --output before creating a key', async () => {
    const result = await run(['keys', 'create', '--spec', 'aes_256', '--usage', 'encrypt_decrypt', '--output', 'yaml']);
    assert.equal(result.status, 2);
    assert.deepEqual(result.calls, []);
  });

  it('creates a key from the options given and prints it', async () => {
    let request: unknown;
    const result = await run(
      ['keys', 'create', '--spec', 'aes_256', '--usage', 'encrypt-decrypt', '--label', 'team=x', '--output', 'json'],
      {
        createKey: (input) => {
          request = input;
          return Promise.resolve({ keyMetadata: KeyMetadata.fromPartial({ keyId: 'k1', keySpec: KeySpec.AES_256 }) });
        },
      },
    );
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(request, {
      keyId: '',
      keySpec: KeySpec.AES_256,
      keyUsage: KeyUsage.ENCRYPT_DECRYPT,
      description: '',
      labels: { team: 'x' },
    });
    assert.deepEqual(JSON.parse(result.stdout.toString()), { keyId: 'k1', keySpec: 'KEY_SPEC_AES_256' });
    assert.deepEqual(result.calls, ['createKey', 'close']);
  });

  it('writes ciphertext raw into a pipe and as base64 on a terminal', async () => {
    const ciphertext = Buffer.from([0xde, 0xad, 0xbe, 0xef]);
    const client: Partial<BrokerClient> = {
      encrypt: (request) => {
        assert.deepEqual(request.plaintext, Buffer.from('secret'));
        assert.deepEqual(request.encryptionContext, { tenant: 'acme' });
        return Promise.resolve({ ciphertext, keyId: 'k1', keyVersion: 1 });
      },
    };
    const args = ['encrypt', '--key-id', 'k1', '--context', 'tenant=acme'];
    const piped = await run(args, client, { stdin: 'secret' });
    assert.equal(piped.status, 0, piped.stderr);
    assert.deepEqual(piped.stdout, ciphertext);
    const terminal = await run([...args, '--data', 'secret'], client, { stdoutIsTTY: true });
    assert.equal(terminal.stdout.toString(), '3q2+7w==\n');
    const json = await run([...args, '--data', 'secret', '--output', 'json'], client);
    assert.deepEqual(JSON.parse(json.stdout.toString()), { ciphertext: '3q2+7w==', keyId: 'k1', keyVersion: 1 });
  });

  it('exits 3 when a signature does not verify', async () => {
    const verify = (signatureValid: boolean): Partial<BrokerClient> => ({
      verify: () => Promise.resolve({ signatureValid, keyId: 'k1', keyVersion: 1 }),
    });
    const args = ['verify', '--key-id', 'k1', '--algorithm', 'ecdsa_sha_256', '--signature', 'MAI=', '--data', 'm'];
    const valid = await run(args, verify(true));
    assert.equal(valid.status, 0);
    assert.equal(valid.stdout.toString(), 'valid\n');
    const invalid = await run(args, verify(false));
    assert.equal(invalid.status, 3);
    assert.equal(invalid.stdout.toString(), 'invalid\n');
  });

  it('reports a failed call as CODE: message [reason] and exits 1', async () => {
    const result = await run(['keys', 'describe', 'k1'], {
      describeKey: () =>
        Promise.reject(new BrokerError(Code.NOT_FOUND, "key 'k1' not found", { reason: 'KEY_NOT_FOUND' })),
    });
    assert.equal(result.status, 1);
    assert.equal(result.stderr, "hsmctl: NOT_FOUND: key 'k1' not found [KEY_NOT_FOUND]\n");
    assert.deepEqual(result.calls, ['describeKey', 'close']);
  });

  it('drains an appliance and prints its status afterwards', async () => {
    let request: unknown;
    const result = await run(['fleet', 'drain', 'hsm-b1'], {
      drainAppliance: (input) => {
        request = input;
        return Promise.resolve({
          appliance: ApplianceStatus.fromPartial({ id: 'hsm-b1', zone: 'az-b', state: ApplianceState.DRAINED, drained: true }),
        });
      },
    });
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(request, { applianceId: 'hsm-b1' });
    assert.match(result.stdout.toString(), /^hsm-b1\s+az-b\s+DRAINED\s+-\s+0\s+yes\s/m);
    assert.deepEqual(result.calls, ['drainAppliance', 'close']);
  });

  it('fences a zone and prints it as JSON', async () => {
    const result = await run(['fleet', 'fence', 'az-b', '--output', 'json'], {
      fenceZone: (input) => Promise.resolve({ zone: { name: input.zone ?? '', applianceCount: 1, healthyCount: 0 } }),
    });
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout.toString()), { name: 'az-b', applianceCount: 1 });
    const text = await run(['fleet', 'unfence', 'az-b'], {
      unfenceZone: (input) => Promise.resolve({ zone: { name: input.zone ?? '', applianceCount: 1, healthyCount: 1 } }),
    });
    assert.equal(text.stdout.toString(), 'Unfenced zone az-b: 1 of 1 appliances healthy.\n');
  });

  it('requires the APPLIANCE and ZONE arguments', async () => {
    for (const argv of [['fleet', 'drain'], ['fleet', 'undrain'], ['fleet', 'fence'], ['fleet', 'inject', '--kind', 'error']]) {
      const result = await run(argv);
      assert.equal(result.status, 2, argv.join(' '));
      assert.match(result.stderr, /^hsmctl: INVALID_ARGUMENT: missing argument (APPLIANCE|ZONE)\n/);
      assert.deepEqual(result.calls, []);
    }
  });

  it('injects a fault with every field it was given', async () => {
    let request: unknown;
    const result = await run(
      ['fleet', 'inject', 'hsm-a1', '--kind', 'latency', '--probability', '0.25', '--latency-ms', '300', '--duration-ms', '60000'],
      {
        injectFault: (input) => {
          request = input;
          return Promise.resolve({
            appliance: ApplianceStatus.fromPartial({
              id: 'hsm-a1',
              zone: 'az-a',
              faults: [{ kind: FaultKind.LATENCY, probability: 0.25, latencyMs: 300, expiresAt: new Date('2030-01-01T00:01:00Z') }],
            }),
          });
        },
      },
    );
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(request, {
      applianceId: 'hsm-a1',
      kind: FaultKind.LATENCY,
      probability: 0.25,
      latencyMs: 300,
      durationMs: 60_000,
    });
    assert.match(result.stdout.toString(), /Injected faults:\n {2}hsm-a1: LATENCY 300 ms, probability 0.25, until 2030-01-01T00:01:00Z\n/);
  });

  it('defaults an injected fault to every call, until cleared', async () => {
    let request: unknown;
    const result = await run(['fleet', 'inject', 'hsm-a1', '--kind', 'CRASH', '--output', 'json'], {
      injectFault: (input) => {
        request = input;
        return Promise.resolve({ appliance: ApplianceStatus.fromPartial({ id: 'hsm-a1' }) });
      },
    });
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(request, { applianceId: 'hsm-a1', kind: FaultKind.CRASH, probability: 0, latencyMs: 0, durationMs: 0 });
    assert.deepEqual(JSON.parse(result.stdout.toString()), { id: 'hsm-a1' });
  });

  it('rejects bad fault flags before calling the broker', async () => {
    const cases: [string[], RegExp][] = [
      [[], /missing required option --kind/],
      [['--kind', 'slow'], /--kind: unknown value 'slow'; allowed: ERROR, LATENCY, HANG, CRASH/],
      [['--kind', 'error', '--probability', '1.5'], /--probability: expected a number from 0 to 1, got '1.5'/],
      [['--kind', 'error', '--probability=-0.1'], /--probability: expected a number from 0 to 1, got '-0.1'/],
      [['--kind', 'error', '--probability', '1e-3'], /--probability: expected a number from 0 to 1, got '1e-3'/],
      [['--kind', 'error', '--probability', 'NaN'], /--probability: expected a number from 0 to 1/],
      [['--kind', 'latency', '--latency-ms=-5'], /--latency-ms: expected an integer from 1 to 4294967295, got '-5'/],
      [['--kind', 'latency', '--latency-ms', '2.5'], /--latency-ms: expected an integer from 1 to 4294967295/],
      [['--kind', 'latency', '--latency-ms', '0'], /--latency-ms: expected an integer from 1 to 4294967295, got '0'/],
      [['--kind', 'error', '--duration-ms', '4294967296'], /--duration-ms: expected an integer from 0 to 4294967295/],
      [['--kind', 'hang', '--duration-ms', 'soon'], /--duration-ms: expected an integer/],
      [['--kind', 'latency'], /--kind LATENCY needs --latency-ms/],
      [['--kind', 'error', '--latency-ms', '10'], /--latency-ms applies to --kind LATENCY only/],
    ];
    for (const [flags, message] of cases) {
      const result = await run(['fleet', 'inject', 'hsm-a1', ...flags], {
        injectFault: () => assert.fail('must not be called'),
      });
      assert.equal(result.status, 2, flags.join(' '));
      assert.match(result.stderr, message, flags.join(' '));
      assert.deepEqual(result.calls, [], flags.join(' '));
    }
  });

  it('clears the faults of one appliance, or of all without an argument', async () => {
    const requests: unknown[] = [];
    const client: Partial<BrokerClient> = {
      clearFaults: (input) => {
        requests.push(input);
        return Promise.resolve({ cleared: input?.applianceId === '' ? 3 : 1 });
      },
    };
    const one = await run(['fleet', 'clear', 'hsm-a1'], client);
    assert.equal(one.stdout.toString(), 'Cleared 1 fault.\n');
    const all = await run(['fleet', 'clear'], client);
    assert.equal(all.stdout.toString(), 'Cleared 3 faults.\n');
    assert.deepEqual(requests, [{ applianceId: 'hsm-a1' }, { applianceId: '' }]);
    const extra = await run(['fleet', 'clear', 'hsm-a1', 'hsm-b1'], client);
    assert.equal(extra.status, 2);
    assert.match(extra.stderr, /unexpected argument 'hsm-b1'/);
  });

  it('connects to --address, else $HSMB_ADDRESS, else the default, with the deadline given', async () => {
    const fleet: Partial<BrokerClient> = {
      getFleetStatus: () => Promise.resolve({ localZone: '', zones: [], appliances: [], fencedZones: [] }),
    };
    const flag = await run(['--address', 'broker:1', 'fleet', 'status', '--deadline-ms', '250'], fleet, {
      env: { HSMB_ADDRESS: 'env:2' },
    });
    assert.deepEqual(flag.connectedWith, { address: 'broker:1', deadlineMs: 250, backupDeadlineMs: 250 });
    const env = await run(['fleet', 'status'], fleet, { env: { HSMB_ADDRESS: 'env:2' } });
    assert.equal(env.connectedWith?.address, 'env:2');
    const fallback = await run(['fleet', 'status'], fleet);
    assert.equal(fallback.connectedWith?.address, '127.0.0.1:50051');
    assert.equal(fallback.stdout.toString(), 'No appliances.\n');
    // Repeated --address: several replicas, in order.
    const several = await run(['--address', 'broker-1:1', 'fleet', 'status', '--address', 'broker-2:1'], fleet);
    assert.deepEqual(several.connectedWith?.address, ['broker-1:1', 'broker-2:1']);
  });

  it('refuses a malformed replica list through the real client, naming the entry', async () => {
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    const status = await runCli(['fleet', 'status', '--address', 'broker-1:1,broker-2'], {
      stdin: Readable.from([]),
      stdout: new Writable({ write: (chunk: Buffer, _encoding, done) => { stdout.push(chunk); done(); } }),
      stderr: new Writable({ write: (chunk: Buffer, _encoding, done) => { stderr.push(chunk); done(); } }),
      env: {},
    });
    assert.equal(status, 1);
    assert.match(Buffer.concat(stderr).toString(), /INVALID_ARGUMENT: address: 'broker-2' is not host:port/);
  });

  it('reports an unreachable broker through the real client as UNAVAILABLE', async () => {
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    const sink = (chunks: Buffer[]) =>
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          chunks.push(chunk);
          callback();
        },
      });
    const status = await runCli(['fleet', 'status', '--address', '127.0.0.1:1', '--deadline-ms', '5000'], {
      stdin: Readable.from([]),
      stdout: sink(stdout),
      stderr: sink(stderr),
      env: {},
    });
    assert.equal(status, 1);
    assert.match(Buffer.concat(stderr).toString(), /^hsmctl: UNAVAILABLE: /);
  });

  describe('key settings', () => {
    const key = (fields: PartialMessage<KeyMetadata>): KeyMetadata =>
      KeyMetadata.fromPartial({ keyId: 'k1', keySpec: KeySpec.AES_256, primaryVersion: 2, ...fields });

    it('creates a key with an automatic rotation period', async () => {
      const requests: unknown[] = [];
      const client: Partial<BrokerClient> = {
        createKey: (input) => {
          requests.push(input.rotationPeriodDays);
          return Promise.resolve({ keyMetadata: key({ rotationPeriodDays: input.rotationPeriodDays ?? 0 }) });
        },
      };
      const base = ['keys', 'create', '--spec', 'aes_256', '--usage', 'encrypt_decrypt'];
      for (const days of ['90', '2560', '0']) {
        const result = await run([...base, '--rotation-period-days', days], client);
        assert.equal(result.status, 0, result.stderr);
      }
      assert.deepEqual(requests, [90, 2560, 0]);
      const shown = await run([...base, '--rotation-period-days', '365'], client);
      assert.match(shown.stdout.toString(), /^Rotation period:\s+365 days$/m);
    });

    it('refuses a rotation period outside 90 to 2560 (or 0) before creating anything', async () => {
      for (const days of ['30', '89', '2561', '-90', '1e3', 'yearly']) {
        const result = await run(
          ['keys', 'create', '--spec', 'aes_256', '--usage', 'encrypt_decrypt', `--rotation-period-days=${days}`],
          { createKey: () => assert.fail('must not be called') },
        );
        assert.equal(result.status, 2, days);
        assert.match(
          result.stderr,
          new RegExp(`--rotation-period-days: expected 0 or an integer from 90 to 2560, got '${days}'`),
          days,
        );
        assert.deepEqual(result.calls, [], days);
      }
    });

    it('updates only the settings given, and prints the key with its versions', async () => {
      const requests: unknown[] = [];
      const client: Partial<BrokerClient> = {
        updateKeySettings: (input) => {
          requests.push(input);
          return Promise.resolve({
            keyMetadata: key({
              minDecryptionVersion: input.minDecryptionVersion ?? 1,
              versions: [
                { version: 1, replicas: [{ applianceId: 'hsm-a1', verifiedAt: new Date('2026-12-01T00:00:00Z') }] },
                { version: 2, replicas: [{ applianceId: 'hsm-a1', verifiedAt: new Date('2026-12-01T00:00:00Z') }] },
              ],
            }),
          });
        },
      };
      const retired = await run(['keys', 'update', 'k1', '--min-decryption-version', '2'], client);
      assert.equal(retired.status, 0, retired.stderr);
      assert.match(retired.stdout.toString(), /^Min decryption version:\s+2$/m);
      assert.match(retired.stdout.toString(), /^ {6}1 {2}-\s+retired\s+hsm-a1\s+-\s+2026-12-01T00:00:00Z$/m);
      await run(['keys', 'update', 'k1', '--rotation-period-days', '0'], client);
      await run(['keys', 'update', 'k1', '--rotation-period-days', '180', '--min-decryption-version', '1'], client);
      assert.deepEqual(requests, [
        { keyId: 'k1', minDecryptionVersion: 2 },
        { keyId: 'k1', rotationPeriodDays: 0 },
        { keyId: 'k1', minDecryptionVersion: 1, rotationPeriodDays: 180 },
      ]);
    });

    it('refuses an update that changes nothing or has a bad value', async () => {
      const cases: [string[], RegExp][] = [
        [['k1'], /nothing to change: give --min-decryption-version, --rotation-period-days or both/],
        [['k1', '--min-decryption-version', '0'], /--min-decryption-version: expected an integer from 1 to 4294967295, got '0'/],
        [['k1', '--rotation-period-days', '7'], /--rotation-period-days: expected 0 or an integer from 90 to 2560/],
        [['--min-decryption-version', '2'], /missing argument KEY/],
      ];
      for (const [args, message] of cases) {
        const result = await run(['keys', 'update', ...args], {
          updateKeySettings: () => assert.fail('must not be called'),
        });
        assert.equal(result.status, 2, args.join(' '));
        assert.match(result.stderr, message, args.join(' '));
        assert.deepEqual(result.calls, [], args.join(' '));
      }
    });

    it('reports a retired version refused by the broker with its reason', async () => {
      const result = await run(['keys', 'update', 'k1', '--min-decryption-version', '3'], {
        updateKeySettings: () =>
          Promise.reject(
            BrokerError.invalidArgument(
              'min_decryption_version',
              'must be 1 to the primary version 2; got 3',
              'INVALID_MIN_DECRYPTION_VERSION',
            ),
          ),
      });
      assert.equal(result.status, 1);
      assert.equal(
        result.stderr,
        'hsmctl: INVALID_ARGUMENT: min_decryption_version: must be 1 to the primary version 2; got 3 [INVALID_MIN_DECRYPTION_VERSION]\n',
      );
    });
  });

  describe('fleet resync', () => {
    const report = { appliancesChecked: 3, copied: 2, lost: 1, orphans: [], failures: [], enrolled: [] };

    it('resyncs every appliance, or the one named, and prints a summary', async () => {
      const requests: unknown[] = [];
      const client: Partial<BrokerClient> = {
        resyncKeys: (input) => {
          requests.push(input);
          return Promise.resolve({ ...report, enrolled: ['hsm-c1'], orphans: ['hsmb:z:v1', 'hsmb:a:v1'] });
        },
      };
      const all = await run(['fleet', 'resync'], client);
      assert.equal(all.status, 0, all.stderr);
      assert.equal(
        all.stdout.toString(),
        [
          'Checked 3 appliances: copied 2 key versions, 1 lost.',
          'Enrolled with the fleet key: hsm-c1',
          'Orphans (reported, never deleted): hsmb:a:v1, hsmb:z:v1',
          '',
        ].join('\n'),
      );
      await run(['fleet', 'resync', 'hsm-b1'], client);
      assert.deepEqual(requests, [{ applianceId: '' }, { applianceId: 'hsm-b1' }]);
    });

    it('exits 1 when a repair could not be made, after printing the report', async () => {
      const result = await run(['fleet', 'resync', '--output', 'json'], {
        resyncKeys: () =>
          Promise.resolve({ ...report, appliancesChecked: 1, copied: 1, failures: ['k1 v2 to hsm-b1: CKR_DEVICE_ERROR'] }),
      });
      assert.equal(result.status, 1);
      assert.deepEqual(JSON.parse(result.stdout.toString()), {
        appliancesChecked: 1,
        copied: 1,
        lost: 1,
        failures: ['k1 v2 to hsm-b1: CKR_DEVICE_ERROR'],
      });
      const text = await run(['fleet', 'resync'], {
        resyncKeys: () => Promise.resolve({ ...report, appliancesChecked: 1, copied: 1, lost: 0, failures: ['x\ny'] }),
      });
      assert.equal(text.status, 1);
      assert.equal(text.stdout.toString(), 'Checked 1 appliance: copied 1 key version, 0 lost.\nNot repaired:\n  x?y\n');
    });
  });

  describe('backups', () => {
    const directory = mkdtempSync(join(tmpdir(), 'hsmctl-cli-backup-'));
    after(() => rmSync(directory, { recursive: true, force: true }));

    const backup = Buffer.from('HSMB-BACKUP\n{"keys":[1,2,3]}');
    const summary = BackupSummary.fromPartial({
      keys: 3,
      keyVersions: 4,
      sha256: createHash('sha256').update(backup).digest('hex'),
      createdAt: new Date('2026-11-30T05:00:00Z'),
      backupKeyId: 'bk-1',
    });
    const progressEvents = [
      { stage: 'preparing', done: 0, total: 1 },
      { stage: 'wrapping', done: 1, total: 2 },
      { stage: 'wrapping', done: 2, total: 2 },
    ];
    const creating: Partial<BrokerClient> = {
      createBackup: (options) => {
        for (const event of progressEvents) options?.onProgress?.(event);
        return Promise.resolve({ backup, summary });
      },
    };
    const leftovers = (name: string): string[] =>
      readdirSync(directory).filter((entry) => entry.includes(name) && entry !== name);

    it('writes the backup to a new file with mode 0600 and prints a summary', async () => {
      const path = join(directory, 'fleet.hsmb');
      const result = await run(['backup', 'create', '--out', path], creating);
      assert.equal(result.status, 0, result.stderr);
      assert.deepEqual(readFileSync(path), backup);
      assert.equal(statSync(path).mode & 0o777, 0o600);
      assert.deepEqual(leftovers('fleet.hsmb'), []);
      assert.equal(
        result.stdout.toString(),
        [
          `Wrote ${path}: 3 keys, 4 key versions, ${String(backup.length)} bytes.`,
          `SHA-256:     ${summary.sha256}`,
          'Created:     2026-11-30T05:00:00Z',
          'Backup key:  bk-1',
          '',
        ].join('\n'),
      );
      // Not a terminal: one line per stage.
      assert.equal(result.stderr, 'Backup: preparing 0/1 (0%)\nBackup: wrapping 1/2 (50%)\n');
      assert.deepEqual(result.calls, ['createBackup', 'close']);
    });

    it('draws progress in place on a terminal', async () => {
      const path = join(directory, 'tty.hsmb');
      const result = await run(['backup', 'create', '--out', path, '--output', 'json'], creating, { stderrIsTTY: true });
      assert.equal(result.status, 0, result.stderr);
      assert.equal(
        result.stderr,
        '\rBackup: preparing 0/1 (0%)\u001b[K\rBackup: wrapping 1/2 (50%)\u001b[K\rBackup: wrapping 2/2 (100%)\u001b[K\n',
      );
      assert.deepEqual(JSON.parse(result.stdout.toString()), {
        file: path,
        bytes: backup.length,
        keys: 3,
        keyVersions: 4,
        sha256: summary.sha256,
        createdAt: '2026-11-30T05:00:00.000Z',
        backupKeyId: 'bk-1',
      });
    });

    it('refuses an existing file unless --force, before asking the broker', async () => {
      const path = join(directory, 'existing.hsmb');
      writeFileSync(path, 'keep me');
      const refused = await run(['backup', 'create', '--out', path], {
        createBackup: () => assert.fail('must not be called'),
      });
      assert.equal(refused.status, 1);
      assert.equal(refused.stderr, `hsmctl: ALREADY_EXISTS: --out: '${path}' already exists; give --force to replace it [OUTPUT_EXISTS]\n`);
      assert.equal(readFileSync(path, 'utf8'), 'keep me');
      assert.deepEqual(refused.calls, []);

      const forced = await run(['backup', 'create', '--out', path, '--force'], creating);
      assert.equal(forced.status, 0, forced.stderr);
      assert.deepEqual(readFileSync(path), backup);
      assert.equal(statSync(path).mode & 0o777, 0o600);
    });

    it('leaves no file when the backup fails, and ends the progress line before the error', async () => {
      const path = join(directory, 'failed.hsmb');
      const result = await run(['backup', 'create', '--out', path], {
        createBackup: (options) => {
          options?.onProgress?.({ stage: 'wrapping', done: 1, total: 2 });
          return Promise.reject(
            new BrokerError(Code.DATA_LOSS, 'CreateBackup: the 10 bytes received have SHA-256 x', {
              reason: 'BACKUP_DIGEST_MISMATCH',
            }),
          );
        },
      }, { stderrIsTTY: true });
      assert.equal(result.status, 1);
      assert.equal(
        result.stderr,
        '\rBackup: wrapping 1/2 (50%)\u001b[K\nhsmctl: DATA_LOSS: CreateBackup: the 10 bytes received have SHA-256 x [BACKUP_DIGEST_MISMATCH]\n',
      );
      assert.deepEqual(readdirSync(directory).filter((entry) => entry.includes('failed.hsmb')), []);
    });

    it('needs --out, and a file rather than stdout', async () => {
      for (const [args, message] of [
        [[], /missing required option --out/],
        [['--out', '-'], /--out: a backup is written to a file, not to stdout/],
      ] as const) {
        const result = await run(['backup', 'create', ...args], creating);
        assert.equal(result.status, 2, args.join(' '));
        assert.match(result.stderr, message);
        assert.deepEqual(result.calls, []);
      }
    });

    it('restores a file and prints what was restored', async () => {
      const path = join(directory, 'restore.hsmb');
      writeFileSync(path, backup);
      let sent: Uint8Array | undefined;
      const result = await run(['backup', 'restore', path], {
        restoreBackup: (bytes, options) => {
          sent = bytes;
          options?.onProgress?.({ stage: 'verifying', done: 1, total: 1 });
          options?.onProgress?.({ stage: 'restoring', done: 4, total: 4 });
          return Promise.resolve(summary);
        },
      });
      assert.equal(result.status, 0, result.stderr);
      assert.deepEqual(sent, backup);
      assert.equal(result.stderr, 'Restore: verifying 1/1 (100%)\nRestore: restoring 4/4 (100%)\n');
      assert.match(result.stdout.toString(), new RegExp(`^Restored ${path}: 3 keys, 4 key versions\\.\\nSHA-256:\\s+${summary.sha256}\\n`));
    });

    it('reports a refused restore with exit 1, and a missing file without calling', async () => {
      const path = join(directory, 'damaged.hsmb');
      writeFileSync(path, backup.subarray(0, 10));
      const refused = await run(['backup', 'restore', path], {
        restoreBackup: () =>
          Promise.reject(
            new BrokerError(Code.INVALID_ARGUMENT, 'backup: truncated or padded; nothing was restored', {
              reason: 'INVALID_BACKUP',
            }),
          ),
      });
      assert.equal(refused.status, 1);
      assert.equal(refused.stderr, 'hsmctl: INVALID_ARGUMENT: backup: truncated or padded; nothing was restored [INVALID_BACKUP]\n');

      const missing = await run(['backup', 'restore', join(directory, 'absent.hsmb')], {
        restoreBackup: () => assert.fail('must not be called'),
      });
      assert.equal(missing.status, 1);
      assert.match(missing.stderr, /^hsmctl: INVALID_ARGUMENT: FILE: cannot read '.*absent\.hsmb' \(ENOENT\) \[INPUT_UNREADABLE\]\n$/);
      assert.deepEqual(missing.calls, []);
    });
  });
});
