// nnscope core: datasets for the native models — a non-owning view of user arrays
// and seeded built-in generators (two spirals, Gaussian blobs, noisy sine).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace nnscope::models {

// A view of n samples. inputs: n × d_in float32, row-major. Targets are either
// float n × d_out (Mse, BinaryCrossEntropy) or int32 labels[n] (SoftmaxCrossEntropy);
// a dataset may carry both (the generators fill both where it makes sense).
struct Dataset {
  std::size_t n = 0;
  std::size_t d_in = 0;
  const float* inputs = nullptr;
  std::size_t d_out = 0;           // width of targets (0 when there are none)
  const float* targets = nullptr;  // n × d_out, or nullptr
  const int32_t* labels = nullptr; // n, or nullptr
};

// An owning dataset (what the generators return).
struct OwnedDataset {
  std::size_t n = 0, d_in = 0, d_out = 0;
  std::vector<float> inputs;    // n × d_in
  std::vector<float> targets;   // n × d_out (may be empty)
  std::vector<int32_t> labels;  // n (may be empty)
  Dataset view() const noexcept;
};

// Two interleaved spirals in 2-D, classes 0 and 1 (n/2 each, the odd one to class 0).
// Point i of a class: r = (i + 0.5)/m ∈ (0, 1), angle φ = turns·2π·r (+π for class 1),
// x = r·(cos φ, sin φ) + noise·N(0, I). labels[n]; targets n × 1 = the label as float
// (for BinaryCrossEntropy with one logit). turns > 0.
OwnedDataset make_two_spirals(std::size_t n, double noise, uint64_t seed, double turns = 1.5);

// c Gaussian blobs in d dimensions: centres drawn once from N(0, spread_centres²·I),
// sample i has class i mod c and is centre + std·N(0, I). labels[n]; targets n × c
// one-hot (for Mse on one-hot targets).
OwnedDataset make_blobs(std::size_t n, std::size_t d, std::size_t classes, double std, uint64_t seed,
                        double spread_centres = 4.0);

// Noisy sine regression: x ~ U(−π, π), y = sin x + noise·N(0, 1). inputs n × 1,
// targets n × 1, no labels.
OwnedDataset make_sine(std::size_t n, double noise, uint64_t seed);

}  // namespace nnscope::models
