// minidl_run_optim_program: runs one random optimizer program of tests/tools/optim_vs_torch.py (which runs the same
// program with torch.optim and compares) and writes what it computed.
//   minidl_run_optim_program PROGRAM.json RESULT.json
// PROGRAM: {"dtype": "float32"|"float64",
//           "params": [{"shape": [...], "values": [...]}, ...],
//           "optimizer": "sgd"|"adam"|"adamw"|"hysteresis", "defaults": {option: value},
//           "groups": [{"params": [indices], "options": {option: value}}, ...],
//           "scheduler": null | {"kind": "multistep", "milestones": [...], "gamma": g}
//                             | {"kind": "cosine", "t_max": T, "eta_min": e}
//                             | {"kind": "warmup", "warmup": W, "start_factor": f},
//           "steps": [[values or null per parameter], ...]}   (null: that parameter has no gradient that step)
// Each step sets the gradients, calls optimizer.step(), then scheduler.step().
// RESULT: {"params": [[[values] per parameter] per step], "lrs": [[lr per group] per step],
//          "flips": [signs flipped per step (hysteresis) or null],
//          "state": [{name: [values]} per parameter] (after the last step)} or {"error": message}.
#include <memory>
#include <string>
#include <vector>

#include "program_io.h"

using namespace minidl;
using json = nlohmann::json;
using program_io::values_of;

namespace {

Tensor make(const json& values, const Shape& shape, DType dt) {
  return program_io::make(values.get<std::vector<double>>(), shape, dt);
}

optim::Options options_of(const json& j) {
  optim::Options o;
  for (auto it = j.begin(); it != j.end(); ++it) o[it.key()] = it.value().get<double>();
  return o;
}

// The options SGD and the hysteresis optimizer share, from the program's defaults.
template <class Options>
void read_sgd_options(Options& o, const json& defaults) {
  o.lr = defaults.value("lr", o.lr);
  o.momentum = defaults.value("momentum", o.momentum);
  o.dampening = defaults.value("dampening", o.dampening);
  o.weight_decay = defaults.value("weight_decay", o.weight_decay);
  o.nesterov = defaults.value("nesterov", 0.0) != 0.0;
}

std::unique_ptr<optim::Optimizer> make_optimizer(const std::string& name, const json& defaults,
                                                 std::vector<optim::ParamGroup> groups) {
  if (name == "sgd") {
    optim::SGDOptions o;
    read_sgd_options(o, defaults);
    return std::make_unique<optim::SGD>(std::move(groups), o);
  }
  if (name == "hysteresis") {
    optim::HysteresisOptions o;
    read_sgd_options(o, defaults);
    o.threshold = defaults.value("threshold", o.threshold);
    o.binary = defaults.value("binary", 1.0) != 0.0;
    o.mode = defaults.value("mode", 0.0) != 0.0 ? optim::HysteresisMode::OneStep : optim::HysteresisMode::Classical;
    return std::make_unique<optim::Hysteresis>(std::move(groups), o);
  }
  MINIDL_CHECK(name == "adam" || name == "adamw", "unknown optimizer ", name);
  optim::AdamOptions o = name == "adamw" ? optim::AdamW::adamw_defaults() : optim::AdamOptions{};
  o.lr = defaults.value("lr", o.lr);
  o.beta1 = defaults.value("beta1", o.beta1);
  o.beta2 = defaults.value("beta2", o.beta2);
  o.eps = defaults.value("eps", o.eps);
  o.weight_decay = defaults.value("weight_decay", o.weight_decay);
  o.amsgrad = defaults.value("amsgrad", 0.0) != 0.0;
  if (name == "adamw") return std::make_unique<optim::AdamW>(std::move(groups), o);
  return std::make_unique<optim::Adam>(std::move(groups), o);
}

std::unique_ptr<optim::LRScheduler> make_scheduler(const json& s, optim::Optimizer& opt) {
  if (s.is_null()) return nullptr;
  const std::string kind = s.at("kind").get<std::string>();
  if (kind == "multistep")
    return std::make_unique<optim::MultiStepLR>(opt, s.at("milestones").get<std::vector<int64_t>>(),
                                                s.at("gamma").get<double>());
  if (kind == "cosine")
    return std::make_unique<optim::CosineAnnealingLR>(opt, s.at("t_max").get<int64_t>(), s.at("eta_min").get<double>());
  MINIDL_CHECK(kind == "warmup", "unknown scheduler ", kind);
  return std::make_unique<optim::LinearWarmupLR>(opt, s.at("warmup").get<int64_t>(), nullptr,
                                                 s.at("start_factor").get<double>());
}

json run(const json& program) {
  const DType dt = program_io::dtype_of(program);
  std::vector<Tensor> params;
  for (const json& p : program.at("params")) {
    params.push_back(make(p.at("values"), p.at("shape").get<Shape>(), dt));
    params.back().set_requires_grad(true);
  }
  std::vector<optim::ParamGroup> groups;
  for (const json& g : program.at("groups")) {
    optim::ParamGroup group;
    for (size_t i : g.at("params").get<std::vector<size_t>>()) group.params.push_back(params.at(i));
    group.options = options_of(g.value("options", json::object()));
    groups.push_back(std::move(group));
  }
  auto opt = make_optimizer(program.at("optimizer").get<std::string>(), program.at("defaults"), std::move(groups));
  auto sched = make_scheduler(program.value("scheduler", json()), *opt);
  json out_params = json::array(), lrs = json::array(), flips = json::array();
  const auto* hysteresis = dynamic_cast<const optim::Hysteresis*>(opt.get());
  for (const json& step : program.at("steps")) {
    opt->zero_grad();
    for (size_t i = 0; i < params.size(); ++i)
      if (!step.at(i).is_null()) params[i].set_grad(make(step.at(i), params[i].sizes(), dt));
    opt->step();
    if (sched) sched->step();
    json now = json::array();
    for (const Tensor& p : params) now.push_back(values_of(p));
    out_params.push_back(now);
    json lr = json::array();
    for (const auto& g : opt->param_groups()) lr.push_back(g.lr());
    lrs.push_back(lr);
    flips.push_back(hysteresis ? json(hysteresis->last_flips()) : json(nullptr));
  }
  // The optimizer numbers parameters over its groups in order; the result lists them as the program does.
  json state = json::array();
  for (size_t i = 0; i < params.size(); ++i) state.push_back(json::object());
  size_t index = 0;
  for (const json& g : program.at("groups"))
    for (size_t i : g.at("params").get<std::vector<size_t>>()) {
      for (const auto& [name, t] : opt->state(index)) state[i][name] = values_of(t);
      ++index;
    }
  return {{"params", out_params}, {"lrs", lrs}, {"flips", flips}, {"state", state}};
}

}  // namespace

int main(int argc, char** argv) { return program_io::run_main(argc, argv, run); }
