/**
 * gRPC status codes, numbered as in the gRPC specification.
 *
 * Kept here (and not imported from @grpc/grpc-js) so that libraries that
 * never touch the network can still say which status a failure deserves.
 */
export enum Code {
  OK = 0,
  CANCELLED = 1,
  UNKNOWN = 2,
  INVALID_ARGUMENT = 3,
  DEADLINE_EXCEEDED = 4,
  NOT_FOUND = 5,
  ALREADY_EXISTS = 6,
  PERMISSION_DENIED = 7,
  RESOURCE_EXHAUSTED = 8,
  FAILED_PRECONDITION = 9,
  ABORTED = 10,
  OUT_OF_RANGE = 11,
  UNIMPLEMENTED = 12,
  INTERNAL = 13,
  UNAVAILABLE = 14,
  DATA_LOSS = 15,
  UNAUTHENTICATED = 16,
}

/** The name of a status code, e.g. `INVALID_ARGUMENT`. */
export function codeName(code: Code): string {
  return Code[code] ?? `CODE_${String(code)}`;
}
