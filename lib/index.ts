/**
 * nnscope: methods for understanding and accelerating neural networks, on a
 * native C++/CUDA engine. Families are namespaces: `linalg`, `models`, `io`, `hessian`,
 * `attention`, `landscape`, `topology`, `plot`; `spectral` as it lands.
 */
export { NnscopeError, ErrorCodes, isNnscopeError, type ErrorCode } from './errors.js';
export { Tensor, type Float32Tensor, dtypeOf, shapeSize, MAX_ELEMENTS, type DType, type TypedArrayOf, type AnyTypedArray } from './tensor.js';
export type { TensorLike, DeviceName } from './validate.js';
export type { AsyncOptions, ProgressEvent } from './async.js';
export { devices, buildInfo, numThreads, setNumThreads, measureBandwidth, type DevicesReport, type CudaReport } from './system.js';
export * as linalg from './linalg/index.js';
export * as models from './models/index.js';
export * as io from './io/index.js';
export * as hessian from './hessian/index.js';
export * as attention from './attention/index.js';
export * as plot from './plot/index.js';
export * as landscape from './landscape/index.js';
export * as topology from './topology/index.js';
