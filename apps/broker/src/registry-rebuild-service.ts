import type { KeyRecord, RegistryRebuild } from '@hsm-broker/keys';
import type { KeyMetadata, KeyServiceServer } from '@hsm-broker/proto';
import type { CallPipeline } from './call-pipeline.js';
import { unary } from './unary-handler.js';

/**
 * KeyService.RebuildRegistry: registers, DISABLED, the keys the appliances
 * hold and the store does not (after the metadata store was lost). It runs
 * inside the broker, through the same workers and appliance logins as any
 * call, so it works against a running broker with an empty store and needs
 * no PIN of its own; the access policy admits it (key-admin,
 * fleet-operator) and filters it key by key, and the audit trail records
 * what it registered.
 */
export function rebuildRegistryHandler(
  rebuild: RegistryRebuild,
  keyMetadataOf: (key: KeyRecord) => KeyMetadata,
  pipeline: CallPipeline,
): KeyServiceServer['rebuildRegistry'] {
  const { log, access } = pipeline;
  return unary('RebuildRegistry', pipeline, async (request, context) => {
    const report = await rebuild.run(request.dryRun, (keyId) => access.visible(context, keyId));
    context.facts.after = {
      dryRun: report.dryRun,
      rebuilt: report.keys.map((key) => key.record.keyId),
      alreadyRegistered: report.alreadyRegistered.length,
      failures: report.failures.length,
    };
    log.warn(report.dryRun ? 'registry rebuild dry run' : 'registry rebuilt from the appliances', {
      identity: context.identity,
      keys: report.keys.length,
      alreadyRegistered: report.alreadyRegistered.length,
      failures: report.failures.length,
    });
    return {
      appliancesScanned: report.appliancesScanned,
      keys: report.keys.map((key) => ({ keyMetadata: keyMetadataOf(key.record), notes: key.notes })),
      alreadyRegistered: report.alreadyRegistered,
      failures: report.failures,
      dryRun: report.dryRun,
    };
  });
}
