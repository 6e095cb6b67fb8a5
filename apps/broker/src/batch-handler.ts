import type { ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import type { CallPipeline } from './call-pipeline.js';
import { runItem, runItems } from './call-items.js';
import type { ItemOutcome } from './call-items.js';
import type { Operation } from './crypto-operations.js';
import { unary } from './unary-handler.js';

/**
 * Items of one batch in flight at once. Enough to keep every worker of a
 * large fleet busy; bounded so that one batch queues behind, not in front
 * of, every other caller's calls.
 */
export const batchConcurrency = 64;

/**
 * A batch RPC (`BatchSign`, …): the call passes the pipeline as `method`
 * (item count and bytes checked, a grant for the batch method, one audit
 * record), then each item runs as the unary `itemMethod` would, with its
 * own policy check, quota token and audit record. Items fail alone; results
 * come back in the items' order.
 */
export function batch<Req, Res>(
  method: string,
  itemMethod: string,
  pipeline: CallPipeline,
  operation: Operation<Req, Res>,
): (call: ServerUnaryCall<{ items: Req[] }, { results: ItemOutcome<Res>[] }>, callback: sendUnaryData<{ results: ItemOutcome<Res>[] }>) => void {
  return unary(method, pipeline, async (request, context) => {
    const results = await runItems(request.items, batchConcurrency, (item, index) => runItem(pipeline, context, itemMethod, String(index), item, operation));
    const failed = results.filter((result) => result.error !== undefined).length;
    context.facts.after = { items: results.length, failed };
    return { results };
  });
}
