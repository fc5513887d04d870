/**
 * The one error class of nnscope. Every failure — validation in TypeScript, an
 * exception in the native engine, a cancellation — is an `NnscopeError` whose
 * `code` is one of the stable strings below.
 */
export const ErrorCodes = [
  'ERR_INVALID_ARGUMENT',
  'ERR_SHAPE',
  'ERR_DTYPE',
  'ERR_NON_FINITE',
  'ERR_TOO_LARGE',
  'ERR_UNKNOWN_DEVICE',
  'ERR_DEVICE_UNAVAILABLE',
  'ERR_CANCELLED',
  'ERR_FORMAT',
  'ERR_OUT_OF_MEMORY',
  'ERR_CUDA',
  'ERR_IO',
  'ERR_INTERNAL',
  'ERR_DETACHED',
  'ERR_CALLBACK',
  'ERR_NATIVE_LOAD',
] as const;

export type ErrorCode = (typeof ErrorCodes)[number];

export class NnscopeError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NnscopeError';
    this.code = code;
  }
}

/** True when `e` is an NnscopeError (optionally with the given code). */
export function isNnscopeError(e: unknown, code?: ErrorCode): e is NnscopeError {
  return e instanceof NnscopeError && (code === undefined || e.code === code);
}

/** Builds the error for a native (code, message) pair; unknown codes become ERR_INTERNAL. */
export function fromNative(code: string, message: string): NnscopeError {
  const known = (ErrorCodes as readonly string[]).includes(code) ? (code as ErrorCode) : 'ERR_INTERNAL';
  return new NnscopeError(known, message);
}
