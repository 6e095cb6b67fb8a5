import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dashboardPage, dashboardScript, dashboardStyle } from './dashboard-page.js';
import type { FleetView } from './fleet-view.js';
import type { Logger } from './logger.js';
import type { Readiness } from './readiness.js';

/** What the admin listener serves from. */
export interface AdminSources {
  /** Prometheus text exposition. */
  metrics(): Promise<string>;
  /** Content type of {@link metrics}. */
  metricsContentType: string;
  readiness(): Promise<Readiness>;
  view(): FleetView;
  /** Subscribes to fleet events (a breaker opened, a fault was injected), pushed to the dashboard at once. */
  onEvent(listener: () => void): void;
  log: Logger;
}

/** A bound admin listener. */
export interface RunningAdminServer {
  /** host:port actually bound. */
  address: string;
  port: number;
  close(): Promise<void>;
}

/** How often the dashboard's event stream sends the fleet; events are sent at once besides. */
const pushIntervalMs = 500;
/** Events come in bursts (a breaker opening during a fault injection): one push for each burst. */
const eventPushDelayMs = 20;

/**
 * The page may load only itself: no fonts, scripts or styles from anywhere
 * else, and it talks only to its own origin. Framing is refused.
 */
const pageHeaders = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

function send(response: ServerResponse, status: number, type: string, body: string): void {
  response.writeHead(status, { ...pageHeaders, 'content-type': type, 'content-length': Buffer.byteLength(body) });
  response.end(body);
}

/**
 * The admin HTTP listener: `/metrics` (Prometheus), `/healthz` (the process
 * answers), `/readyz` (the fleet and the metadata store can serve), the
 * live fleet dashboard at `/` with its event stream at `/events`
 * (server-sent events), and the same view as JSON at `/api/fleet`.
 * Read-only: nothing here changes the fleet.
 */
export async function startAdminServer(listen: string, sources: AdminSources): Promise<RunningAdminServer> {
  const streams = new Set<ServerResponse>();
  let pushTimer: NodeJS.Timeout | undefined;
  const push = (): void => {
    let message: string;
    try {
      message = `event: fleet\ndata: ${JSON.stringify(sources.view())}\n\n`;
    } catch (error: unknown) {
      sources.log.warn('dashboard view failed', { error: error instanceof Error ? error.message : String(error) });
      return;
    }
    for (const stream of streams) stream.write(message);
  };
  let eventPush: NodeJS.Timeout | undefined;
  sources.onEvent(() => {
    if (streams.size === 0 || eventPush) return;
    eventPush = setTimeout(() => {
      eventPush = undefined;
      push();
    }, eventPushDelayMs);
  });
  const openStream = (request: IncomingMessage, response: ServerResponse): void => {
    response.writeHead(200, { ...pageHeaders, 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive' });
    response.write('retry: 1000\n\n');
    streams.add(response);
    push();
    pushTimer ??= setInterval(push, pushIntervalMs);
    request.on('close', () => {
      streams.delete(response);
      if (streams.size === 0 && pushTimer) {
        clearInterval(pushTimer);
        pushTimer = undefined;
      }
    });
  };

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const path = new URL(request.url ?? '/', 'http://admin').pathname;
    switch (path) {
      case '/metrics':
        send(response, 200, sources.metricsContentType, await sources.metrics());
        return;
      case '/healthz':
        send(response, 200, 'application/json', JSON.stringify({ alive: true }));
        return;
      case '/readyz': {
        const readiness = await sources.readiness();
        send(response, readiness.ready ? 200 : 503, 'application/json', JSON.stringify(readiness));
        return;
      }
      case '/':
        send(response, 200, 'text/html; charset=utf-8', dashboardPage);
        return;
      case '/dashboard.js':
        send(response, 200, 'text/javascript; charset=utf-8', dashboardScript);
        return;
      case '/dashboard.css':
        send(response, 200, 'text/css; charset=utf-8', dashboardStyle);
        return;
      case '/api/fleet':
        send(response, 200, 'application/json', JSON.stringify(sources.view()));
        return;
      case '/events':
        openStream(request, response);
        return;
      default:
        send(response, 404, 'text/plain; charset=utf-8', 'not found: try /, /metrics, /healthz or /readyz\n');
    }
  };

  const server: Server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      sources.log.error('admin request failed', { path: request.url, error: error instanceof Error ? error.message : String(error) });
      if (!response.headersSent) send(response, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else response.end();
    });
  });
  const separator = listen.lastIndexOf(':');
  const host = listen.slice(0, separator).replace(/^\[(.*)\]$/, '$1');
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(listen.slice(separator + 1)), host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    address: `${listen.slice(0, separator)}:${String(port)}`,
    port,
    close() {
      if (pushTimer) clearInterval(pushTimer);
      if (eventPush) clearTimeout(eventPush);
      for (const stream of streams) stream.end();
      streams.clear();
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
