import { status } from '@grpc/grpc-js';
import { reasonTrailer } from '@hsm-broker/errors';
import type { ItemError } from '@hsm-broker/proto';
import type { CallContext, CallPipeline } from './call-pipeline.js';
import { noteResponseKey } from './call-facts.js';
import type { Operation } from './crypto-operations.js';
import { toServiceError } from './grpc-errors.js';

/** What one item of a batch or stream came to: its response, or why it failed. */
export type ItemOutcome<Res> = { response: Res; error?: undefined } | { response?: undefined; error: ItemError };

/**
 * Runs one item of a batch or stream as if it were its own unary call:
 * the same request limits, policy (method and key), quota and audit record
 * as the unary `method`, under the enclosing call's identity and deadline.
 * Never throws: a failure becomes the item's error.
 */
export async function runItem<Req, Res>(
  pipeline: CallPipeline,
  parent: CallContext,
  method: string,
  itemId: string,
  request: Req,
  operation: Operation<Req, Res>,
): Promise<ItemOutcome<Res>> {
  const started = performance.now();
  const context: CallContext = {
    deadline: parent.deadline,
    method,
    identity: parent.identity,
    peer: parent.peer,
    // Each item's audit record points back to the call that carried it.
    requestId: `${parent.requestId}:${itemId}`,
    facts: { appliances: [] },
  };
  let outcome: ItemOutcome<Res>;
  let reason: string | undefined;
  try {
    await pipeline.admit(context, request);
    const response = await operation(request, context);
    noteResponseKey(context, response);
    outcome = { response };
  } catch (error: unknown) {
    const serviceError = toServiceError(error);
    const [trailer] = serviceError.metadata?.get(reasonTrailer) ?? [];
    reason = typeof trailer === 'string' ? trailer : undefined;
    const code = serviceError.code ?? status.UNKNOWN;
    if (code === status.INTERNAL) pipeline.log.error('batch item failed', { method, error: error instanceof Error ? error.message : String(error) });
    outcome = { error: { code, reason: reason ?? '', message: serviceError.details ?? '' } };
  }
  try {
    const code = outcome.error ? outcome.error.code : status.OK;
    pipeline.finished(context, { code, ...(reason === undefined ? {} : { reason }), latencyMs: performance.now() - started });
  } catch (error: unknown) {
    pipeline.log.error('call bookkeeping failed', { method, error: error instanceof Error ? error.message : String(error) });
  }
  return outcome;
}

/**
 * Runs every item with at most `concurrency` in flight, so one large batch
 * spreads over the fleet's appliances without flooding their queues; the
 * results keep the items' order.
 */
export async function runItems<Item, Result>(items: readonly Item[], concurrency: number, run: (item: Item, index: number) => Promise<Result>): Promise<Result[]> {
  const results = new Array<Result>(items.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await run(items[index], index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, lane));
  return results;
}
