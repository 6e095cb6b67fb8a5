/**
 * Any subset of a message's fields; the client fills the rest with proto3
 * defaults (empty string, zero, empty bytes) through the generated
 * `fromPartial`. Same shape as ts-proto's `DeepPartial`.
 */
export type PartialMessage<T> = T extends Date | Uint8Array | string | number | boolean | undefined
  ? T
  : T extends Array<infer U>
    ? Array<PartialMessage<U>>
    : T extends ReadonlyArray<infer U>
      ? ReadonlyArray<PartialMessage<U>>
      : T extends object
        ? { [K in keyof T]?: PartialMessage<T[K]> }
        : Partial<T>;
