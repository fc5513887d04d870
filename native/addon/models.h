// nnscope addon: the model objectives' shared state, for the families that work
// on a model (hessian, landscape). Translation only.
#pragma once
#include <napi.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/device.h"
#include "models/dataset.h"
#include "models/mlp.h"
#include "models/objective.h"
#include "models/pinn.h"

namespace nnscope::addon {

// What an Objective handle owns. Calls on one objective are serialised by mu
// (objectives keep scratch state); different objectives run in parallel.
struct ObjectiveState {
  std::string kind;  // "mlp" | "pinn"
  std::unique_ptr<models::Objective> cpu;
  std::unique_ptr<models::Objective> gpu;  // made on first use of device 'cuda' (under mu)
  models::ParamLayout layout;
  // MLP only: the spec and an owned copy of the data (mini-batch training and
  // subsets build objectives from it).
  models::MlpSpec mlp_spec;
  models::OwnedDataset data;
  std::vector<std::size_t> indices;
  // PINN only.
  models::PinnSpec pinn_spec;
  std::mutex mu;
};

// The objective for a resolved device; the GPU one is created lazily (its data is
// uploaded once). Call with s.mu held.
models::Objective& objective_for(ObjectiveState& s, Device device);

// The state behind a JS Objective handle, or InvalidArgument naming `what`.
std::shared_ptr<ObjectiveState> objective_state(const Napi::Value& value, const char* what);

}  // namespace nnscope::addon
