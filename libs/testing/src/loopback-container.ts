import type { GenericContainer } from 'testcontainers';

/** A GenericContainer that can publish a port on the host's loopback only. */
export interface LoopbackPortContainer extends GenericContainer {
  /** Publishes `container` (TCP) on 127.0.0.1:`host`, never on every interface of the host. */
  withLoopbackPort(container: number, host: number): this;
}

/**
 * testcontainers publishes ports on 0.0.0.0, which would put a development
 * broker (plaintext, fault injection on) on every network this machine is
 * on. This subclass binds the port to 127.0.0.1. testcontainers is loaded
 * lazily by the harness, so the class is made from the loaded one.
 */
export function loopbackContainerClass(Base: typeof GenericContainer): new (image: string) => LoopbackPortContainer {
  return class LoopbackContainer extends Base implements LoopbackPortContainer {
    withLoopbackPort(container: number, host: number): this {
      this.withExposedPorts({ container, host });
      const bindings = (this.hostConfig.PortBindings ?? {}) as Record<string, { HostIp?: string; HostPort: string }[]>;
      this.hostConfig.PortBindings = { ...bindings, [`${String(container)}/tcp`]: [{ HostIp: '127.0.0.1', HostPort: String(host) }] };
      return this;
    }
  };
}

/** Throws unless every host binding of `port` in a container's inspect output is on 127.0.0.1. */
export function assertLoopbackOnly(ports: Record<string, { HostIp: string; HostPort: string }[] | null> | undefined, port: number): void {
  const bindings = ports?.[`${String(port)}/tcp`] ?? [];
  if (bindings.length === 0 || bindings.some((binding) => binding.HostIp !== '127.0.0.1')) {
    throw new Error(`port ${String(port)} is published on ${bindings.map((binding) => `${binding.HostIp}:${binding.HostPort}`).join(', ') || 'nothing'}; expected 127.0.0.1 only`);
  }
}
