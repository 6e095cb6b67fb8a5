#!/usr/bin/env node
// `node tools/images/setup.mjs [--images] [--compose-secrets]`: Docker engine,
// base image and compose ready; with --images also builds the appliance and
// broker images; with --compose-secrets also writes the PINs and fleet
// certificates docker-compose.yml mounts (.data/compose/secrets, once).
import { join } from 'node:path';
import { ensureContainerPrerequisites, ContainerPrerequisiteError } from './container-prerequisites.mjs';
import { buildImages, workspaceRoot } from './build-images.mjs';
import { ensureFleetSecrets } from './fleet-secrets.mjs';

/** The services of docker-compose.yml that hold a fleet certificate. */
const composeServices = ['broker', 'hsm-a1', 'hsm-a2', 'hsm-b1', 'hsm-b2', 'hsm-c1', 'hsm-c2'];

try {
  await ensureContainerPrerequisites();
  if (process.argv.includes('--compose-secrets')) {
    const dir = join(workspaceRoot, '.data', 'compose', 'secrets');
    ensureFleetSecrets(dir, composeServices);
    console.log(`containers: compose secrets in ${dir}`);
  }
  if (process.argv.includes('--images')) buildImages();
} catch (error) {
  if (!(error instanceof ContainerPrerequisiteError)) throw error;
  console.error(`containers: ${error.message}`);
  process.exitCode = 1;
}
