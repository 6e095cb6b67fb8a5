// The public surface of @hsm-broker/testing.
export { ContainerFleet, startContainerFleet } from './container-fleet.js';
export type { ContainerFleetOptions } from './container-fleet.js';
export { FleetAppliance } from './fleet-appliance.js';
export { fleetBrokerConfig, fleetMembers, zoneName } from './fleet-broker-config.js';
export type { FleetMember } from './fleet-broker-config.js';
