import type { Fleet } from '@hsm-broker/fleet';
import type { KeyRegistry, KeyStore, ReplicaReconciler, SweepReport } from '@hsm-broker/keys';
import { isLoopbackListen } from './admin-config.js';
import { startAdminServer } from './admin-server.js';
import type { RunningAdminServer } from './admin-server.js';
import { BrokerMetrics } from './broker-metrics.js';
import type { CallPipeline } from './call-pipeline.js';
import { FleetActivity } from './fleet-activity.js';
import { fleetView } from './fleet-view.js';
import type { FleetView } from './fleet-view.js';
import type { Logger } from './logger.js';
import { readinessOf } from './readiness.js';
import { StoreWatch } from './store-watch.js';
import type { StoreWatchOptions } from './store-watch.js';

/** What operators watch the broker through. */
export interface ObservedBroker {
  fleet: Fleet;
  registry: KeyRegistry;
  store: KeyStore;
  reconciler: ReplicaReconciler;
}

/**
 * Metrics, recent fleet activity and the admin HTTP listener that serves
 * them. Created before the reconciler's first run and before any traffic,
 * so every routed call, breaker change and reconciliation is seen.
 */
export class AdminListener {
  /** The Prometheus metrics. */
  readonly metrics: BrokerMetrics;
  /** Traffic and events for the dashboard. */
  readonly activity = new FleetActivity();
  /** The store as readiness, metrics and the dashboard see it, read without holding the event loop. */
  readonly watch: StoreWatch;
  readonly #broker: ObservedBroker;
  #server: RunningAdminServer | undefined;

  constructor(broker: ObservedBroker, watchOptions: StoreWatchOptions = {}) {
    this.#broker = broker;
    this.watch = new StoreWatch(broker.store.reads, watchOptions);
    this.metrics = new BrokerMetrics({ ...broker, watch: this.watch });
    this.metrics.observe();
    this.activity.observe(broker.fleet);
    broker.reconciler.onReconciled((trigger, report) => this.activity.reconciled(trigger, report));
  }

  /** Wraps a call pipeline so every answered call is counted by method and status code. */
  pipeline(inner: CallPipeline): CallPipeline {
    return {
      ...inner,
      finished: (context, outcome) => {
        try {
          inner.finished(context, outcome);
        } finally {
          this.metrics.rpcFinished(context.method, outcome.code, outcome.latencyMs);
        }
      },
    };
  }

  /** Records a deletion or rotation sweep. */
  sweepFinished(kind: 'deletion' | 'rotation', report: SweepReport): void {
    this.metrics.sweepFinished(kind, report);
    if (report.done.length > 0 || report.failures.length > 0) {
      this.activity.note(`${kind}-sweep`, '', `${kind} sweep: ${String(report.done.length)} done, ${String(report.failures.length)} left for later`);
    }
  }

  /** The dashboard's view of the fleet now. */
  view(): FleetView {
    return fleetView({ ...this.#broker, watch: this.watch, activity: this.activity });
  }

  /** Binds the admin HTTP listener on `listen` (host:port); does nothing when it is undefined (turned off). */
  async listen(listen: string | undefined, log: Logger): Promise<RunningAdminServer | undefined> {
    if (listen === undefined) {
      log.info('admin listener off (admin.listen: off): no /metrics, /readyz or dashboard');
      return undefined;
    }
    const { fleet, registry } = this.#broker;
    try {
      this.#server = await startAdminServer(listen, {
        metrics: () => this.metrics.metrics(),
        metricsContentType: this.metrics.registry.contentType,
        readiness: async () => readinessOf(fleet, registry, await this.watch.check()),
        view: () => this.view(),
        onEvent: (listener) => this.activity.onEvent(listener),
        log,
      });
    } catch (error: unknown) {
      throw new Error(`admin.listen (HSMB_ADMIN_LISTEN): cannot listen on ${listen}: ${error instanceof Error ? error.message : String(error)}`);
    }
    const url = `http://${this.#server.address}`;
    log.info('admin listener ready', { dashboard: `${url}/`, metrics: `${url}/metrics`, readyz: `${url}/readyz` });
    if (!isLoopbackListen(listen)) {
      log.warn('ADMIN LISTENER BEYOND LOOPBACK: metrics, health and the dashboard have no authentication; anyone who reaches the port sees the fleet (read-only). Keep it on a management network', {
        listen: this.#server.address,
      });
    }
    return this.#server;
  }

  /** Closes the listener and its event streams. */
  async close(): Promise<void> {
    await this.#server?.close();
    this.#server = undefined;
  }
}
