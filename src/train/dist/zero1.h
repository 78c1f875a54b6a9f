// ZeRO stage 1 for the CPU engine: the AdamW moments (8 bytes per trainable parameter, the
// largest part of full fine-tuning's state) are sharded over the ranks. Every rank still holds
// all parameters and the full (all-reduced) gradients; each trainable tensor has one owner rank
// that keeps its moments and updates it, then broadcasts the new values to the others. The
// update of each element is AdamW's own code, so the result equals plain data parallelism
// bit for bit.
//
// Checkpoints stay in the unsharded format (so a run resumes with any number of ranks, with or
// without ZeRO): gather() refills the full optimizer's moments on the saving rank from their
// owners, release() frees them again afterwards. The saving rank therefore holds the whole
// state while a checkpoint is written.
#pragma once
#include <cstddef>
#include <memory>
#include <vector>

#include "train/dist/communicator.h"
#include "train/optimizer.h"

namespace brisk::train {

// Owner rank of each parameter: largest tensors first, each to the least loaded rank (ties:
// lowest rank), so the shards' sizes differ by at most one tensor. Deterministic.
std::vector<int> zero1_owners(const std::vector<Param>& params, int world);

class Zero1Optimizer {
 public:
  // Takes this rank's share of `full`'s moments and step count (a resumed run's), then frees
  // full's moments. `full` must outlive this object.
  Zero1Optimizer(AdamW& full, Communicator& comm);
  // AdamW on the owned tensors, then every tensor broadcast from its owner (collective).
  void step(const AdamWOptions& o);
  // Collective: the full optimizer gets every moment (on `saver` only; the others take part in
  // the broadcasts) and the current step count; release() undoes it.
  void gather(int saver);
  void release();
  size_t state_bytes() const { return shard_->state_bytes(); }

 private:
  AdamW& full_;
  Communicator& comm_;
  std::vector<int> owner_;
  std::vector<size_t> owned_;  // indices into full_.params() owned by this rank
  std::unique_ptr<AdamW> shard_;
};

}  // namespace brisk::train
