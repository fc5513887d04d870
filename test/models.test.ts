import test from 'ava';
import { type ErrorCode, NnscopeError, Tensor, models } from '../lib/index.js';
import { expectCode, rng } from './helpers.js';


function randomVector(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

test('MLP layout names every tensor and the gradient matches the float64 reference', async (t) => {
  const data = models.datasets.blobs({ n: 64, d: 3, classes: 4, std: 0.7, seed: 1 });
  const obj = models.mlp({ widths: [3, 8, 4], activation: 'gelu', loss: 'softmax_cross_entropy', weightDecay: 1e-3 }, data);
  t.is(obj.dim, 3 * 8 + 8 + 8 * 4 + 4);
  t.deepEqual(obj.layout.map((e) => e.name), ['layer0.weight', 'layer0.bias', 'layer1.weight', 'layer1.bias']);
  t.deepEqual(obj.layout[2]!.shape, [4, 8]);
  t.is(obj.layout[2]!.offset, 32);
  const theta = obj.init(3);
  const { loss, grad } = await obj.lossGrad(theta);
  const ref = await obj.lossGrad64(Float64Array.from(theta));
  t.true(Math.abs(loss - ref.loss) < 1e-5 * Math.abs(ref.loss));
  let num = 0;
  let den = 0;
  for (let i = 0; i < obj.dim; i++) {
    num += (grad[i]! - ref.grad[i]!) ** 2;
    den += ref.grad[i]! ** 2;
  }
  t.true(Math.sqrt(num / den) < 1e-3);
  t.is(await obj.loss(theta), loss);
});

test('HVP equals a central difference of float64 gradients', async (t) => {
  const data = models.datasets.sine({ n: 40, noise: 0.05, seed: 2 });
  const obj = models.mlp({ widths: [1, 6, 5, 1], activation: 'softplus', loss: 'mse' }, data);
  const theta = Float64Array.from(obj.init(5));
  const v = Float64Array.from(randomVector(obj.dim, 7));
  const hv = await obj.hvp64(theta, v);
  const h = 1e-5;
  const plus = Float64Array.from(theta, (x, i) => x + h * v[i]!);
  const minus = Float64Array.from(theta, (x, i) => x - h * v[i]!);
  const gp = (await obj.lossGrad64(plus)).grad;
  const gm = (await obj.lossGrad64(minus)).grad;
  let num = 0;
  let den = 0;
  for (let i = 0; i < obj.dim; i++) {
    const fd = (gp[i]! - gm[i]!) / (2 * h);
    num += (hv[i]! - fd) ** 2;
    den += fd ** 2;
  }
  t.true(Math.sqrt(num / den) < 1e-6, `relative error ${Math.sqrt(num / den)}`);
  const hv32 = await obj.hvp(Float32Array.from(theta), Float32Array.from(v));
  let n32 = 0;
  for (let i = 0; i < obj.dim; i++) n32 += (hv32[i]! - hv[i]!) ** 2;
  t.true(Math.sqrt(n32 / den) < 1e-3);
});

test('lossGrid equals the one-point loss at every row', async (t) => {
  const obj = models.pinn({ beta: 2, nCollocation: 60 });
  const theta = obj.init(1);
  for (const k of [1, 2, 3]) {
    const dirs = new Tensor(randomVector(k * obj.dim, 10 + k, 0.05), [k, obj.dim]);
    const coords = new Tensor(randomVector(7 * k, 20 + k), [7, k]);
    const grid = await obj.lossGrid(theta, dirs, coords);
    for (let i = 0; i < 7; i++) {
      const point = theta.slice();
      for (let j = 0; j < k; j++) for (let p = 0; p < obj.dim; p++) point[p] += coords.data[i * k + j]! * dirs.data[j * obj.dim + p]!;
      const one = await obj.loss(point);
      t.true(Math.abs(grid[i]! - one) <= 1e-4 * Math.abs(one) + 1e-7, `k=${k} row ${i}: ${grid[i]} vs ${one}`);
    }
  }
});

test('PINN: β = 1 trains to relative L2 < 0.05 with L-BFGS; β = 40 fails (> 0.5), as the papers report', async (t) => {
  // seeds: network init 0, collocation sampling 0 (the defaults)
  const good = models.pinn({ beta: 1 });
  const r1 = await good.train(good.init(0), { optimizer: 'lbfgs', maxSteps: 2000 });
  const e1 = await good.evaluate(r1.theta);
  t.true(e1.relativeL2 < 0.05, `β=1: relative L2 ${e1.relativeL2} (${r1.stopReason} after ${r1.steps} steps)`);
  t.is(r1.lossHistory.length, r1.steps);
  t.true(r1.finalLoss < r1.lossHistory[0]!);
  const bad = models.pinn({ beta: 40 });
  const r40 = await bad.train(bad.init(0), { optimizer: 'lbfgs', maxSteps: 2000 });
  const e40 = await bad.evaluate(r40.theta);
  t.true(e40.relativeL2 > 0.5, `β=40: relative L2 ${e40.relativeL2}`);
});

test('Adam on two spirals lowers the loss, deterministically; mini-batches work', async (t) => {
  const data = models.datasets.twoSpirals({ n: 200, noise: 0.02, seed: 3 });
  const obj = models.mlp({ widths: [2, 16, 16, 1], activation: 'tanh', loss: 'binary_cross_entropy' }, data);
  const theta = obj.init(4);
  const a = await obj.train(theta, { optimizer: 'adam', lr: 0.01, maxSteps: 300 });
  const b = await obj.train(theta, { optimizer: 'adam', lr: 0.01, maxSteps: 300 });
  t.true(a.finalLoss < 0.5 * a.lossHistory[0]!, `${a.lossHistory[0]} → ${a.finalLoss}`);
  t.deepEqual(a.theta, b.theta);
  t.not(a.theta, theta);
  const events: { done: number; value?: number }[] = [];
  const c = await obj.train(theta, { optimizer: 'adam', lr: 0.01, maxSteps: 40, onProgress: (p) => events.push(p) });
  t.is(events.at(-1)!.done, 40);
  t.is(events.at(-1)!.value, c.lossHistory[39]);
  const mb = await obj.train(theta, { optimizer: 'adam', lr: 0.01, maxSteps: 50, batchSize: 32, seed: 9 });
  t.is(mb.steps, 50);
  t.true(Number.isFinite(mb.finalLoss));
});

test('training is cancellable and reports progress', async (t) => {
  const obj = models.pinn({ beta: 5 });
  const ac = new AbortController();
  let calls = 0;
  const p = obj.train(obj.init(0), {
    maxSteps: 100000,
    toleranceGrad: -1,
    toleranceChange: -1,
    signal: ac.signal,
    onProgress: () => {
      calls++;
      ac.abort();
    },
  });
  await expectCode(t, p, 'ERR_CANCELLED');
  t.true(calls >= 1);
});

test('models reject bad input with stable codes', async (t) => {
  const data = models.datasets.sine({ n: 10, seed: 1 });
  await expectCode(t, () => models.mlp({ widths: [2, 3, 1], loss: 'mse' }, data), 'ERR_SHAPE');
  await expectCode(t, () => models.mlp({ widths: [1], loss: 'mse' }, data), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, () => models.mlp({ widths: [1, 0, 1], loss: 'mse' }, data), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, () => models.mlp({ widths: [1, 3, 1], loss: 'hinge' as never }, data), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, () => models.mlp({ widths: [1, 3, 1], activation: 'swish' as never, loss: 'mse' }, data), 'ERR_INVALID_ARGUMENT');
  const labels = new Tensor(new Int32Array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]), [10]);
  await expectCode(t, () => models.mlp({ widths: [1, 3, 2], loss: 'softmax_cross_entropy' }, { inputs: data.inputs, labels }), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, () => models.pinn({ widths: [3, 5, 1] }), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, () => models.pinn({ beta: NaN }), 'ERR_INVALID_ARGUMENT');
  const obj = models.mlp({ widths: [1, 3, 1], loss: 'mse' }, data);
  await expectCode(t, obj.loss(new Float32Array(3)), 'ERR_SHAPE');
  await expectCode(t, obj.loss(new Float64Array(obj.dim) as never), 'ERR_DTYPE');
  const nan = obj.init(0);
  nan[2] = NaN;
  await expectCode(t, obj.loss(nan), 'ERR_NON_FINITE');
  await expectCode(t, obj.hvp(obj.init(0), nan), 'ERR_NON_FINITE');
  await expectCode(t, obj.lossGrid(obj.init(0), new Tensor(new Float32Array(obj.dim), [1, obj.dim]), new Tensor(new Float32Array(4), [2, 2])), 'ERR_SHAPE');
  await expectCode(t, obj.train(obj.init(0), { optimizer: 'sgd' as never }), 'ERR_INVALID_ARGUMENT');
  await expectCode(t, obj.train(obj.init(0), { maxSteps: -1 }), 'ERR_INVALID_ARGUMENT');
});
