// Models: HVP, gradient and loss of the convection PINN (2→50→50→50→50→1, tanh)
// on 1,000 collocation points, and lossGrid throughput (points/s), beside PyTorch
// (double backward for the HVP; a one-point-at-a-time loop for the grid, as the
// reference landscape tools do) measured in the same run when it is installed.
import { Tensor, buildInfo, devices, models, numThreads } from '../dist/lib/index.js';
import { TORCH_PINN, gitSha, machine, pythonPeer, table, time, writeResults } from './common.mjs';

const TORCH = `
${TORCH_PINN}v = [torch.randn_like(p) for p in params]
def hvp():
    L = loss_fn()
    gr = torch.autograd.grad(L, params, create_graph=True)
    dot = sum((a * b).sum() for a, b in zip(gr, v))
    return torch.autograd.grad(dot, params)
def grad():
    return torch.autograd.grad(loss_fn(), params)
def timeit(fn, runs):
    fn()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter(); fn(); ts.append((time.perf_counter() - t0) * 1000)
    ts.sort(); return ts[len(ts) // 2]
out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "params": P}
out["hvpMs"] = timeit(hvp, args["runs"])
out["gradMs"] = timeit(grad, args["runs"])
out["lossMs"] = timeit(loss_fn, args["runs"])
# one point at a time: theta0 + a1 d1 + a2 d2 + a3 d3, loss evaluated per point
theta0 = [p.detach().clone() for p in params]
dirs = [[torch.randn_like(p) * 0.01 for p in params] for _ in range(3)]
n = args["gridPoints"]
coords = torch.rand(n, 3) * 2 - 1
t0 = time.perf_counter()
for i in range(n):
    with torch.no_grad():
        for j, p in enumerate(params):
            p.copy_(theta0[j] + coords[i, 0] * dirs[0][j] + coords[i, 1] * dirs[1][j] + coords[i, 2] * dirs[2][j])
    loss_fn().item()
out["gridPointsPerSecond"] = n / (time.perf_counter() - t0)
print(json.dumps(out))
`;

export async function main(argv) {
  const quick = argv.includes('--quick');
  const nCollocation = 1000;
  const runs = quick ? 5 : 15;
  const mach = machine(devices().cpu.isa);
  const info = buildInfo();
  console.log(`nnscope ${info.version} (${gitSha()}), ${mach.cpu}, ${numThreads()} threads`);
  const pinn = models.pinn({ beta: 1, nCollocation, collocationSampling: 'random' });
  const theta = pinn.init(0);
  const v = pinn.init(1);
  const timing = { minRuns: runs, minMs: quick ? 200 : 1000 };
  const hvp = await time(() => pinn.hvp(theta, v, { device: 'cpu' }), timing);
  const grad = await time(() => pinn.lossGrad(theta, { device: 'cpu' }), timing);
  const loss = await time(() => pinn.loss(theta, { device: 'cpu' }), timing);

  // lossGrid: points in 3 random directions, scaled like a landscape (distance 0.01 per layer norm ≈ small)
  const k = 3;
  const nGrid = quick ? 2000 : 8000;
  const dirs = new Tensor(new Float32Array(k * pinn.dim), [k, pinn.dim]);
  for (let i = 0; i < dirs.size; i++) dirs.data[i] = 0.01 * Math.sin(12.9898 * i);
  const coords = new Tensor(new Float32Array(nGrid * k), [nGrid, k]);
  for (let i = 0; i < coords.size; i++) coords.data[i] = Math.cos(7.1 * i);
  const grid = await time(() => pinn.lossGrid(theta, dirs, coords, { device: 'cpu' }), { minRuns: quick ? 2 : 3, minMs: 0 });
  const gridRate = nGrid / (grid.median / 1000);
  const flopsPerPoint = 2 * pinn.dim * (256 + 2 * 100 + 3 * nCollocation); // forward multiply-adds, 3 channels on collocation rows
  const rows = [
    { op: 'hvp', 'nnscope ms': hvp.median.toFixed(2) },
    { op: 'loss+grad', 'nnscope ms': grad.median.toFixed(2) },
    { op: 'loss', 'nnscope ms': loss.median.toFixed(2) },
  ];
  const torch = pythonPeer(TORCH, { beta: 1, nCollocation, runs, gridPoints: quick ? 100 : 300 });
  if (!torch.skipped) {
    rows[0]['torch ms'] = torch.hvpMs.toFixed(2);
    rows[1]['torch ms'] = torch.gradMs.toFixed(2);
    rows[2]['torch ms'] = torch.lossMs.toFixed(2);
    rows[0]['speed-up'] = `${(torch.hvpMs / hvp.median).toFixed(1)}×`;
    rows[1]['speed-up'] = `${(torch.gradMs / grad.median).toFixed(1)}×`;
    rows[2]['speed-up'] = `${(torch.lossMs / loss.median).toFixed(1)}×`;
  }
  console.log(`\nPINN (${pinn.dim} parameters, ${nCollocation} collocation + 256 initial + 100 boundary pairs), CPU:`);
  table(rows, torch.skipped ? ['op', 'nnscope ms'] : ['op', 'nnscope ms', 'torch ms', 'speed-up']);
  console.log(`\nlossGrid, ${nGrid} points in ${k} directions: ${gridRate.toFixed(0)} points/s (${((gridRate * flopsPerPoint) / 1e9).toFixed(1)} GFLOP/s of forward multiply-adds; CPU peak ${mach.peakGflops.toFixed(0)})`);
  if (torch.skipped) console.log(`torch: skipped (${torch.skipped})`);
  else {
    console.log(`torch one-point loop: ${torch.gridPointsPerSecond.toFixed(0)} points/s → nnscope ${(gridRate / torch.gridPointsPerSecond).toFixed(1)}× (torch ${torch.torch}, ${torch.threads} threads, ${torch.python})`);
  }
  const file = writeResults('models', {
    family: 'models', date: new Date().toISOString(), git: gitSha(), build: info, machine: mach, threads: numThreads(),
    pinn: { params: pinn.dim, nCollocation, hvpMs: hvp, gradMs: grad, lossMs: loss },
    lossGrid: { points: nGrid, k, ms: grid, pointsPerSecond: gridRate },
    torch,
  });
  console.log(`\nJSON: ${file}`);
}
