import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { EncryptCommand, KMSClient } from '@aws-sdk/client-kms';
import { BrokerError } from '@hsm-broker/errors';
import { SigV4Verifier, replayWindowMs, signatureReasons } from './sigv4-verifier.js';
import type { SignedRequest } from './sigv4-verifier.js';

const accessKeyId = 'AKIAVPCAPAYMENTS';
const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';

/** The reason a verification was refused with. */
function reasonOf(run: () => unknown): string {
  try {
    run();
  } catch (error: unknown) {
    assert.ok(error instanceof BrokerError);
    assert.doesNotMatch(error.message, new RegExp(secret.replace(/[/]/g, '\\/')));
    return error.reason;
  }
  return 'ACCEPTED';
}

describe('SigV4Verifier against requests signed by the AWS SDK', () => {
  let signed: SignedRequest & { at: number };
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      signed = { method: request.method ?? '', url: request.url ?? '', rawHeaders: request.rawHeaders, body: Buffer.concat(chunks), at: Date.now() };
      response.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' });
      response.end(JSON.stringify({ __type: 'NotFoundException', message: 'captured' }));
    });
  });

  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = new KMSClient({ endpoint: `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`, region: 'eu-west-1', credentials: { accessKeyId, secretAccessKey: secret }, maxAttempts: 1 });
    await client.send(new EncryptCommand({ KeyId: 'alias/payments', Plaintext: Buffer.from('hello'), EncryptionContext: { tenant: 'a' } })).catch(() => undefined);
    client.destroy();
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const verifier = (options: { secret?: string; region?: string; offsetMs?: number } = {}): SigV4Verifier =>
    new SigV4Verifier(new Map([[accessKeyId, options.secret ?? secret]]), options.region ?? 'eu-west-1', () => Date.now() + (options.offsetMs ?? 0));

  it('accepts the request as the SDK signed it, naming the access key', () => {
    const verified = verifier().verify(signed);
    assert.equal(verified.accessKeyId, accessKeyId);
    assert.ok(Math.abs(verified.signedAt - signed.at) < 2000);
  });

  it('refuses a wrong secret, an unknown access key, another region and a changed body', () => {
    assert.equal(reasonOf(() => verifier({ secret: `${secret}x` }).verify(signed)), signatureReasons.invalid);
    assert.equal(reasonOf(() => new SigV4Verifier(new Map([['AKIAOTHERKEY00000', secret]]), 'eu-west-1').verify(signed)), signatureReasons.unknownKey);
    assert.equal(reasonOf(() => verifier({ region: 'us-east-1' }).verify(signed)), signatureReasons.invalid);
    const body = Buffer.from(signed.body.toString('utf8').replace('alias/payments', 'alias/payroll'));
    assert.equal(reasonOf(() => verifier().verify({ ...signed, body })), signatureReasons.invalid);
  });

  it('refuses a changed operation header, a missing signature and a malformed one', () => {
    const headers = [...signed.rawHeaders];
    const target = headers.findIndex((name) => name.toLowerCase() === 'x-amz-target');
    headers[target + 1] = 'TrentService.ScheduleKeyDeletion';
    assert.equal(reasonOf(() => verifier().verify({ ...signed, rawHeaders: headers })), signatureReasons.invalid);
    const unsigned = signed.rawHeaders.filter((_value, index, all) => (all[index - (index % 2)] ?? '').toLowerCase() !== 'authorization');
    assert.equal(reasonOf(() => verifier().verify({ ...signed, rawHeaders: unsigned })), signatureReasons.missing);
    assert.equal(reasonOf(() => verifier().verify({ ...signed, rawHeaders: [...unsigned, 'Authorization', 'AWS4-HMAC-SHA256 nonsense'] })), signatureReasons.incomplete);
  });

  it('refuses a request dated outside the replay window either way', () => {
    assert.equal(reasonOf(() => verifier({ offsetMs: replayWindowMs + 60_000 }).verify(signed)), signatureReasons.expired);
    assert.equal(reasonOf(() => verifier({ offsetMs: -(replayWindowMs + 60_000) }).verify(signed)), signatureReasons.expired);
    assert.equal(reasonOf(() => verifier({ offsetMs: replayWindowMs - 60_000 }).verify(signed)), 'ACCEPTED');
  });

  it('serves a signed request once: after it is remembered the same bytes are a replay', () => {
    const once = verifier();
    const first = once.verify(signed);
    assert.equal(reasonOf(() => once.verify(signed)), signatureReasons.replayed, 'a copy sent while the first is being served');
    once.release(first);
    const retried = once.verify(signed);
    assert.ok(retried, 'a request that failed retryably may come again with the same signature');
    once.remember(retried);
    assert.equal(reasonOf(() => once.verify(signed)), signatureReasons.replayed);
  });
});
