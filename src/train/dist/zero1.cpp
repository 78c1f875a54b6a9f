#include "train/dist/zero1.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "core/error.h"

namespace brisk::train {

std::vector<int> zero1_owners(const std::vector<Param>& params, int world) {
  BRISK_ASSERT(world >= 1);
  std::vector<size_t> by_size(params.size());
  std::iota(by_size.begin(), by_size.end(), size_t(0));
  std::stable_sort(by_size.begin(), by_size.end(),
                   [&](size_t a, size_t b) { return params[a].value.numel() > params[b].value.numel(); });
  std::vector<int64_t> load(size_t(world), 0);
  std::vector<int> owner(params.size(), 0);
  for (size_t i : by_size) {
    int r = int(std::min_element(load.begin(), load.end()) - load.begin());
    owner[i] = r;
    load[size_t(r)] += params[i].value.numel();
  }
  return owner;
}

Zero1Optimizer::Zero1Optimizer(AdamW& full, Communicator& comm) : full_(full), comm_(comm) {
  std::vector<Param>& all = full_.params();
  owner_ = zero1_owners(all, comm_.size());
  std::vector<Param> mine;
  for (size_t i = 0; i < all.size(); ++i)
    if (owner_[i] == comm_.rank()) owned_.push_back(i), mine.push_back(all[i]);
  shard_ = std::make_unique<AdamW>(std::move(mine));
  shard_->set_steps(full_.steps());
  auto from = full_.state_tensors(), to = shard_->state_tensors();
  for (size_t k = 0; k < owned_.size(); ++k)
    for (size_t j = 0; j < 2; ++j)
      std::memcpy(to[2 * k + j].second.data, from[2 * owned_[k] + j].second.data, to[2 * k + j].second.nbytes());
  full_.release_state();
}

void Zero1Optimizer::step(const AdamWOptions& o) {
  shard_->step(o);
  for (size_t i = 0; i < owner_.size(); ++i) {
    Tensor& v = full_.params()[i].value;
    comm_.broadcast(v.data, v.nbytes(), owner_[i]);
  }
}

void Zero1Optimizer::gather(int saver) {
  full_.set_steps(shard_->steps());
  const bool keep = comm_.rank() == saver;
  if (keep) full_.restore_state();
  auto mine = shard_->state_tensors();
  std::vector<std::pair<std::string, Tensor>> all;
  if (keep) all = full_.state_tensors();
  std::vector<float> scratch;
  size_t k = 0;  // next owned tensor
  for (size_t i = 0; i < owner_.size(); ++i) {
    const size_t n = size_t(full_.params()[i].value.numel());
    for (size_t j = 0; j < 2; ++j) {
      // The buffer each rank passes: the owner its shard's moment, the saver the full
      // optimizer's, everyone else scratch.
      float* buf;
      if (owner_[i] == comm_.rank()) buf = mine[2 * k + j].second.f32();
      else if (keep) buf = all[2 * i + j].second.f32();
      else scratch.resize(n), buf = scratch.data();
      comm_.broadcast(buf, n * sizeof(float), owner_[i]);
      if (keep && owner_[i] == comm_.rank()) std::memcpy(all[2 * i + j].second.data, buf, n * sizeof(float));
    }
    if (owner_[i] == comm_.rank()) ++k;
  }
}

void Zero1Optimizer::release() {
  if (full_.has_state()) full_.release_state();
}

}  // namespace brisk::train
