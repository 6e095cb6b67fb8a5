export { startBroker } from './broker.js';
export type { BrokerOverrides, RunningBroker } from './broker.js';
export { ConfigError, loadConfig } from './broker-config.js';
export type { BrokerConfig, ConfiguredAppliance, PinSource } from './broker-config.js';
export { createLogger } from './logger.js';
export type { LogLevel, Logger } from './logger.js';
