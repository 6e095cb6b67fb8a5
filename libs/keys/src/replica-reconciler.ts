import { BrokerError } from '@hsm-broker/errors';
import { enrollFleetKek } from './fleet-kek-enrollment.js';
import type { OfficerFleetPort } from './fleet-port.js';
import { objectLabel, objectLabelPrefix, parseObjectLabel } from './key-model.js';
import type { KeyRegistry } from './key-registry.js';
import type { KeyStore } from './key-store.js';
import type { RegistryLog } from './registry-options.js';

/** What one appliance looked like at its last reconciliation. */
export interface ApplianceInventory {
  /** Key versions the registry expects there that are not there (yet). */
  missing: number;
  /** Broker key objects there that the registry does not know. */
  orphans: string[];
  reconciledAt: number;
}

/** What a reconciliation run did. */
export interface ReconcileReport {
  appliancesChecked: number;
  copied: number;
  lost: number;
  orphans: string[];
  failures: string[];
  enrolled: string[];
}

/**
 * Why a reconciliation ran: at start-up, on its interval, when an appliance
 * returned from an outage, answered that a key object is missing, or came
 * back with a new token, when background runs held back by {@link
 * ReplicaReconciler.pause} were released, or because someone asked (ResyncKeys).
 */
export type ReconcileTrigger = 'start-up' | 'interval' | 'recovery' | 'key-missing' | 'token-replaced' | 'resumed' | 'request';

/** Called after each reconciliation run with what triggered it and what it did. */
export type ReconciledListener = (trigger: ReconcileTrigger, report: ReconcileReport) => void;

/** What the reconciler needs. */
export interface ReconcilerOptions {
  fleet: OfficerFleetPort;
  store: KeyStore;
  registry: KeyRegistry;
  /** Appliances holding the fleet KEK; the reconciler adds the ones it enrolls. */
  enrolled: Set<string>;
  log: RegistryLog;
  clock?: () => number;
}

/**
 * Anti-entropy for key replicas. For each reachable appliance it compares
 * the key objects on the token (C_FindObjects by label) with the registry,
 * forgets replicas the appliance lost (so no traffic goes there for them),
 * copies missing versions from a healthy holder, and reports objects the
 * registry does not know (never deleting them). An appliance without the
 * fleet KEK, such as one that came back wiped, is enrolled first.
 */
export class ReplicaReconciler {
  readonly #options: ReconcilerOptions;
  readonly #clock: () => number;
  readonly #inventory = new Map<string, ApplianceInventory>();
  #running: Promise<ReconcileReport> | undefined;
  #paused = false;
  #deferred = false;
  readonly #listeners: ReconciledListener[] = [];

  constructor(options: ReconcilerOptions) {
    this.#options = options;
    this.#clock = options.clock ?? Date.now;
  }

  /** Called after every run, with its trigger and report. Listeners must not throw. */
  onReconciled(listener: ReconciledListener): void {
    this.#listeners.push(listener);
  }

  /**
   * Holds back background runs (every trigger except `request`) until
   * {@link resume}; replicas reported missing are still taken out of
   * routing at once. For maintenance windows and for tests that change
   * tokens behind the broker's back and must not race the repair.
   */
  pause(): void {
    this.#paused = true;
  }

  /** Releases background runs; one full run catches up on what was held back. */
  resume(): void {
    this.#paused = false;
    if (this.#deferred) {
      this.#deferred = false;
      this.runInBackground('resumed');
    }
  }

  /**
   * Starts a background run (not awaited); failures are in its report.
   * While paused the run is held back.
   */
  runInBackground(trigger: Exclude<ReconcileTrigger, 'request'>, only?: readonly string[]): void {
    if (this.#paused) {
      this.#deferred = true;
      return;
    }
    this.reconcile(only, trigger).catch((error: unknown) =>
      this.#options.log('error', 'reconciliation failed', { trigger, error: BrokerError.from(error).message }),
    );
  }

  /** Last known inventory of an appliance. */
  inventory(applianceId: string): ApplianceInventory | undefined {
    return this.#inventory.get(applianceId);
  }

  /**
   * A replica that vanished (the appliance answered "no such object"): stop
   * routing that version there now, and repair it soon.
   */
  replicaMissing(applianceId: string, label: string): void {
    const parsed = parseObjectLabel(label);
    if (!parsed) return;
    this.#options.store.setReplica(parsed.keyId, parsed.version, applianceId, false, this.#clock());
    this.runInBackground('key-missing', [applianceId]);
  }

  /** An appliance whose token was replaced: nothing it held can be trusted to be there. */
  tokenReplaced(applianceId: string): void {
    this.#options.enrolled.delete(applianceId);
    for (const key of this.#options.store.allKeys()) {
      for (const version of key.versions) {
        if (version.replicas.includes(applianceId)) this.#options.store.setReplica(key.keyId, version.version, applianceId, false, this.#clock());
      }
    }
    this.#options.log('warn', 'appliance token replaced; re-enrolling and refilling it', { appliance: applianceId });
    this.runInBackground('token-replaced', [applianceId]);
  }

  /**
   * Reconciles the given appliances (all when omitted). Runs one at a time;
   * a request made while one runs starts when it ends.
   */
  reconcile(only?: readonly string[], trigger: ReconcileTrigger = 'request'): Promise<ReconcileReport> {
    if (this.#running) {
      return this.#running.then(
        () => this.reconcile(only, trigger),
        () => this.reconcile(only, trigger),
      );
    }
    this.#running = this.#run(only)
      .then((report) => {
        for (const listener of this.#listeners) listener(trigger, report);
        return report;
      })
      .finally(() => {
        this.#running = undefined;
      });
    return this.#running;
  }

  async #run(only?: readonly string[]): Promise<ReconcileReport> {
    const { fleet, store, registry, enrolled, log } = this.#options;
    const report: ReconcileReport = { appliancesChecked: 0, copied: 0, lost: 0, orphans: [], failures: [], enrolled: [] };
    const targets = fleet.appliances.filter((appliance) => appliance.available && (!only || only.includes(appliance.id)));

    const toEnroll = targets.filter((appliance) => !enrolled.has(appliance.id)).map((appliance) => appliance.id);
    if (toEnroll.length > 0) {
      try {
        const result = await enrollFleetKek(fleet, store, toEnroll);
        for (const id of result.enrolled) {
          if (!enrolled.has(id)) report.enrolled.push(id);
          enrolled.add(id);
        }
        for (const failure of result.failed) if (toEnroll.includes(failure.applianceId)) report.failures.push(`${failure.applianceId}: ${failure.error}`);
      } catch (error: unknown) {
        report.failures.push(`enrollment: ${BrokerError.from(error).message}`);
      }
    }

    // One read of the registry per run; keys created meanwhile are checked next run.
    const keys = store.allKeys();
    for (const appliance of targets) {
      if (!enrolled.has(appliance.id)) continue;
      report.appliancesChecked++;
      let labels: Set<string>;
      try {
        labels = new Set((await fleet.executeOn(appliance.id, 'listKeys', { prefix: objectLabelPrefix })).map((object) => object.label));
      } catch (error: unknown) {
        report.failures.push(`${appliance.id}: inventory failed: ${BrokerError.from(error).message}`);
        continue;
      }
      const known = new Set<string>();
      let missing = 0;
      for (const key of keys) {
        for (const version of key.versions) {
          const label = objectLabel(key.keyId, version.version);
          known.add(label);
          const registered = version.replicas.includes(appliance.id);
          if (labels.has(label) && registered) continue;
          if (registered) {
            store.setReplica(key.keyId, version.version, appliance.id, false, this.#clock());
            report.lost++;
            log('warn', 'replica lost; repairing', { appliance: appliance.id, keyId: key.keyId, version: version.version });
          }
          try {
            await registry.replicateVersion(key.keyId, version.version, appliance.id);
            report.copied++;
          } catch (error: unknown) {
            missing++;
            report.failures.push(`${appliance.id}: ${label}: ${BrokerError.from(error).message}`);
          }
        }
      }
      const orphans = [...labels].filter((label) => !known.has(label)).sort();
      for (const orphan of orphans) {
        if (!this.#inventory.get(appliance.id)?.orphans.includes(orphan)) {
          log('warn', 'orphan key object found; left in place', { appliance: appliance.id, label: orphan });
        }
      }
      report.orphans.push(...orphans.map((label) => `${appliance.id}:${label}`));
      this.#inventory.set(appliance.id, { missing, orphans, reconciledAt: this.#clock() });
    }
    if (report.copied > 0 || report.lost > 0 || report.enrolled.length > 0) {
      log('info', 'replicas reconciled', { copied: report.copied, lost: report.lost, enrolled: report.enrolled, failures: report.failures.length });
    }
    return report;
  }
}
