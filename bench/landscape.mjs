// Landscape sampling: the convection PINN's 41³ grid (21³ with --quick) in its
// top-3 Hessian directions (layer-normalised, distance 0.01), evaluated through
// Objective.lossGrid in chunks; points/s beside a PyTorch one-point-at-a-time
// loop over the same PINN (the way the reference landscape tools evaluate), run in
// the same process tree when python3-torch is installed. Options: --quick,
// --device=cpu|cuda|auto (default cpu).
import { buildInfo, devices, landscape, models, numThreads } from '../dist/lib/index.js';
import { TORCH_PINN, gitSha, machine, pythonPeer, table, time, writeResults } from './common.mjs';

const TORCH = `
${TORCH_PINN}# one point at a time: θ₀ + a₁d₁ + a₂d₂ + a₃d₃ copied into the model, loss evaluated per point
theta0 = [p.detach().clone() for p in params]
def layer_normalised():
    d = [torch.randn_like(p) for p in params]
    return [x * t.norm() / (x.norm() + 1e-10) for x, t in zip(d, theta0)]
dirs = [layer_normalised() for _ in range(3)]
n = args["points"]
axis = torch.linspace(-0.01, 0.01, args["steps"])
idx = torch.randint(0, args["steps"], (n, 3), generator=torch.Generator().manual_seed(1))
def run():
    for i in range(n):
        a = axis[idx[i]]
        with torch.no_grad():
            for j, p in enumerate(params):
                p.copy_(theta0[j] + a[0] * dirs[0][j] + a[1] * dirs[1][j] + a[2] * dirs[2][j])
        loss_fn().item()
run()
ts = []
for _ in range(args["runs"]):
    t0 = time.perf_counter(); run(); ts.append((time.perf_counter() - t0) * 1000)
ts.sort()
ms = ts[len(ts) // 2]
print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "params": P, "points": n, "ms": ms, "pointsPerSecond": n / (ms / 1000)}))
`;

export async function main(argv) {
  const quick = argv.includes('--quick');
  const device = (argv.find((a) => a.startsWith('--device=')) ?? '--device=cpu').slice('--device='.length);
  const steps = quick ? 21 : 41;
  const nCollocation = 100; // the papers' trainer default
  const mach = machine(devices().cpu.isa);
  const info = buildInfo();
  console.log(`nnscope ${info.version} (${gitSha()}), ${mach.cpu}, ${numThreads()} threads, device ${device}`);
  const pinn = models.pinn({ beta: 1, nCollocation, collocationSampling: 'random' });
  const trained = await pinn.train(pinn.init(0), { maxSteps: quick ? 50 : 300, device });
  const theta = trained.theta;

  const t0 = performance.now();
  const dirs = await landscape.directions(pinn, theta, { kind: 'hessian', k: 3, seed: 0 }, { normalization: 'layer', device });
  const directionsMs = performance.now() - t0;

  const points = steps ** 3;
  let result;
  const grid = await time(async () => {
    result = await landscape.sample(pinn, theta, dirs, { steps, distance: 0.01, device });
  }, { warmup: quick ? 0 : 1, minRuns: quick ? 2 : 3, minMs: 0 });
  const rate = points / (grid.median / 1000);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of result.losses) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }

  const torchPoints = quick ? 100 : 400;
  const torch = pythonPeer(TORCH, { beta: 1, nCollocation, steps, points: torchPoints, runs: quick ? 1 : 3 });
  const rows = [{ impl: 'nnscope lossGrid (chunked)', points, 'median ms': grid.median.toFixed(0), 'points/s': rate.toFixed(0), 'full grid s': (points / rate).toFixed(1) }];
  if (!torch.skipped) {
    rows.push({
      impl: `torch ${torch.torch} one point at a time (${torch.threads} threads)`, points: torch.points, 'median ms': torch.ms.toFixed(0),
      'points/s': torch.pointsPerSecond.toFixed(0), 'full grid s': (points / torch.pointsPerSecond).toFixed(1),
    });
  }
  console.log(`\nPINN β=1 (${pinn.dim} parameters, ${nCollocation} collocation points), ${steps}³ = ${points} points in the top-3 Hessian directions (λ = ${Array.from(dirs.eigenvalues, (v) => v.toPrecision(4)).join(', ')}), layer-normalised, distance 0.01:`);
  table(rows, ['impl', 'points', 'median ms', 'points/s', 'full grid s']);
  console.log(`Hessian directions: ${directionsMs.toFixed(0)} ms; losses in [${lo.toPrecision(4)}, ${hi.toPrecision(4)}]`);
  if (torch.skipped) console.log(`torch: skipped (${torch.skipped})`);
  else console.log(`speed-up over the torch one-point loop: ${(rate / torch.pointsPerSecond).toFixed(1)}×`);
  const file = writeResults('landscape', {
    family: 'landscape', date: new Date().toISOString(), git: gitSha(), build: info, machine: mach, threads: numThreads(), device,
    pinn: { params: pinn.dim, nCollocation, trainSteps: trained.steps, finalLoss: trained.finalLoss },
    directions: { ms: directionsMs, eigenvalues: Array.from(dirs.eigenvalues) },
    grid: { steps, points, ms: grid, pointsPerSecond: rate, lossRange: [lo, hi] },
    torch,
  });
  console.log(`\nJSON: ${file}`);
}
