// nnscope core: multilayer perceptrons described by plain data, their flat
// parameter layout, seeded initialisation, and MlpObjective (an MLP bound to a
// dataset: exact loss, gradient and Hessian-vector product, float32 and float64).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "models/dataset.h"
#include "models/objective.h"

namespace nnscope::models {

// Elementwise activations. Every one has exact first, second and third derivatives
// (the PINN's HVP needs σ'''). Gelu is the exact erf form z·Φ(z).
enum class Activation { Identity, Tanh, Relu, Gelu, Softplus, Sigmoid };

// Losses on the network output a_L (the logits for the two classification losses):
//   Mse                  mean over all n·d_out elements of (a − y)²  (PyTorch MSELoss 'mean')
//   SoftmaxCrossEntropy  mean over samples of logsumexp(a) − a[label]  (int32 labels)
//   BinaryCrossEntropy   mean over n·d_out elements of max(a,0) − a·y + log1p(e^−|a|)
//                        (BCE on logits, stable form; float targets, usually in [0, 1])
enum class LossKind { Mse, SoftmaxCrossEntropy, BinaryCrossEntropy };

const char* activation_name(Activation a) noexcept;  // "identity", "tanh", ...
const char* loss_name(LossKind l) noexcept;          // "mse", "softmax_cross_entropy", "binary_cross_entropy"
// Parse the names above; throw ErrorCode::InvalidArgument for anything else.
Activation parse_activation(const std::string& name);
LossKind parse_loss(const std::string& name);

struct MlpSpec {
  std::vector<std::size_t> widths;  // input, hidden..., output (at least 2 entries, all > 0)
  Activation hidden = Activation::Tanh;
  Activation output = Activation::Identity;
  LossKind loss = LossKind::Mse;
  double weight_decay = 0.0;  // adds wd/2·‖θ‖² to the loss (all parameters, biases included)
};

// Throws InvalidArgument (empty/short widths, zero width, negative or non-finite
// weight decay) or TooLarge (parameter count overflows).
void validate(const MlpSpec& spec);

// ---- flat parameter layout
// For each layer l (0-based): "layer{l}.weight" [out×in] row-major, then
// "layer{l}.bias" [out]. Rows of a weight are the filters (one per output unit).
struct ParamEntry {
  std::string name;
  std::size_t offset = 0;            // into the flat parameter array
  std::vector<std::size_t> shape;    // [out, in] or [out]
  std::size_t size() const noexcept;
};

struct ParamLayout {
  std::vector<ParamEntry> entries;
  std::size_t total = 0;  // P
  // The entry of that name, or nullptr.
  const ParamEntry* find(const std::string& name) const noexcept;
};

ParamLayout mlp_layout(const std::vector<std::size_t>& widths);
std::size_t mlp_num_params(const std::vector<std::size_t>& widths);

// Weight initialisation. Auto: Xavier normal for tanh / sigmoid / identity hidden
// layers, He normal for relu / gelu / softplus. Biases are zero.
//   XavierNormal  N(0, 2/(fan_in+fan_out))      XavierUniform U(±sqrt(6/(fan_in+fan_out)))
//   HeNormal      N(0, 2/fan_in)                HeUniform     U(±sqrt(6/fan_in))
enum class InitKind { Auto, XavierNormal, XavierUniform, HeNormal, HeUniform };

// Fills theta[P] from nnscope::Rng(seed): layer l draws from stream l, so the
// weights of a layer do not depend on the other layers' sizes.
void init_params(const std::vector<std::size_t>& widths, Activation hidden, uint64_t seed, float* theta,
                 InitKind kind = InitKind::Auto);
std::vector<float> mlp_init(const MlpSpec& spec, uint64_t seed, InitKind kind = InitKind::Auto);

// ---- the objective
// An MLP bound to a dataset: the full batch, or a fixed subset of sample indices
// (a fixed mini-batch). The selected rows are copied in at construction (so the
// objective owns its data, and the hot loops read contiguous rows); the Dataset
// passed in need not outlive it.
//
// Throws: InvalidArgument (bad spec, labels out of range, index out of range, a
// loss without the data it needs, empty batch), Shape (input width ≠ widths[0],
// target width ≠ widths.back()).
class MlpObjective final : public Objective {
 public:
  MlpObjective(MlpSpec spec, const Dataset& data, const std::vector<std::size_t>& indices = {});
  ~MlpObjective() override;
  MlpObjective(const MlpObjective&) = delete;
  MlpObjective& operator=(const MlpObjective&) = delete;

  std::size_t dim() const override;
  double loss(const float* theta, const OpContext& ctx) override;
  double loss_grad(const float* theta, float* grad, const OpContext& ctx) override;
  void hvp(const float* theta, const float* v, float* hv, const OpContext& ctx) override;
  double loss_grad64(const double* theta, double* grad, const OpContext& ctx) override;
  void hvp64(const double* theta, const double* v, double* hv, const OpContext& ctx) override;
  void loss_grid(const float* theta0, const float* dirs, std::size_t k, const float* coords, std::size_t n_points,
                 double* out, const OpContext& ctx) override;

  // L(θ) in float64 (reference; no gradient).
  double loss64(const double* theta, const OpContext& ctx = {});

  const MlpSpec& spec() const noexcept;
  const ParamLayout& layout() const noexcept;
  std::size_t batch_size() const noexcept;  // samples in the (fixed) batch

 private:
  struct Impl;
  Impl* impl_;
};

// Network outputs a_L (after the output activation; logits for the classification
// losses) for n input rows: out[n × widths.back()]. Multi-threaded, deterministic.
void mlp_predict(const MlpSpec& spec, const float* theta, const float* inputs, std::size_t n, float* out,
                 const OpContext& ctx = {});

}  // namespace nnscope::models
