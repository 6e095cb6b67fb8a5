/** A configuration value that is not acceptable. The message names the field, the value and what is allowed. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}
