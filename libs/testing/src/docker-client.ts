import type { getContainerRuntimeClient } from 'testcontainers';

/** The Docker API client testcontainers holds (dockerode), for what testcontainers does not wrap: kill, pause, networks. */
export type DockerClient = Awaited<ReturnType<typeof getContainerRuntimeClient>>['container']['dockerode'];

/** One container as the Docker API client sees it. */
export type DockerContainer = ReturnType<DockerClient['getContainer']>;
