import { fileURLToPath, pathToFileURL } from 'node:url';

// The harness shares the image builds, container prerequisites and fleet
// secrets with `npm test`, `.ci/run` and the README's set-up, which live in
// tools/images as plain Node scripts (they run before node_modules exists).

/** The repository root (this file compiles to libs/testing/dist/). */
export const workspaceRoot = fileURLToPath(new URL('../../../', import.meta.url));

interface ImagesModule {
  buildImages(options: { log?: (line: string) => void; compile?: boolean }): { hsmNode: string; broker: string };
}
interface PrerequisitesModule {
  ensureContainerPrerequisites(options: { log?: (line: string) => void; compose?: boolean }): Promise<unknown>;
}
interface SecretsModule {
  ensureFleetSecrets(dir: string, names: string[]): void;
}

async function load<T>(path: string): Promise<T> {
  return (await import(pathToFileURL(`${workspaceRoot}${path}`).href)) as T;
}

let images: Promise<{ hsmNode: string; broker: string }> | undefined;

/**
 * The appliance and broker image tags, built once per process (and not at
 * all when images of the same content exist). Compiles the workspace first
 * unless `compile` is false (the test runner has built it already).
 */
export function fleetImages(log: (line: string) => void, compile = false): Promise<{ hsmNode: string; broker: string }> {
  images ??= (async () => {
    const prerequisites = await load<PrerequisitesModule>('tools/images/container-prerequisites.mjs');
    await prerequisites.ensureContainerPrerequisites({ log, compose: false });
    return (await load<ImagesModule>('tools/images/build-images.mjs')).buildImages({ log, compile });
  })();
  return images;
}

/** Writes PINs and fleet certificates for `names` into `dir`. */
export async function writeFleetSecrets(dir: string, names: string[]): Promise<void> {
  (await load<SecretsModule>('tools/images/fleet-secrets.mjs')).ensureFleetSecrets(dir, names);
}
