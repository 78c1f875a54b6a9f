// The data-parallel pieces of the training loop (train/trainer.cpp): which rows of a step each
// rank trains on, summing gradients over ranks, and checking that the replicas agree.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "train/dist/communicator.h"
#include "train/train_engine.h"

namespace brisk::train {

// Positions in [begin, end) of the step's global batch that rank `rank` of `world` trains on:
// begin + rank, begin + rank + world, ... A rank may get none (a short last batch); the union
// over ranks is exactly [begin, end), each position once. Depends only on (begin, end, rank,
// world), so a resumed run with another world size recomputes the shards from the step alone.
std::vector<size_t> shard_positions(size_t begin, size_t end, int rank, int world);

// Sums the engine's gradients over the ranks in place (no-op for the LocalCommunicator). Host gradients go
// through the communicator in buckets of up to kGradBucketFloats, device gradients as one call.
constexpr size_t kGradBucketFloats = size_t(1) << 22;
void all_reduce_gradients(Communicator& comm, TrainEngine& engine);

// FNV-1a over the bytes of the engine's trainable tensors (after sync_to_host()).
uint64_t params_checksum(TrainEngine& engine);
// Broadcasts rank 0's checksum; throws, naming this rank and the step, when this rank's
// parameters differ (the replicas diverged: a bug, or nondeterminism between ranks).
void check_replicas_agree(Communicator& comm, TrainEngine& engine, int64_t step);

}  // namespace brisk::train
