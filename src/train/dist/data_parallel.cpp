#include "train/dist/data_parallel.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace brisk::train {

std::vector<size_t> shard_positions(size_t begin, size_t end, int rank, int world) {
  BRISK_ASSERT(world >= 1 && rank >= 0 && rank < world && begin <= end);
  std::vector<size_t> out;
  for (size_t i = begin + size_t(rank); i < end; i += size_t(world)) out.push_back(i);
  return out;
}

void all_reduce_gradients(Communicator& comm, TrainEngine& engine) {
  // One process of a real backend still goes through it (with NCCL: `--gpus 1 --dp-backend
  // nccl` exercises the device path on one GPU); only the LocalCommunicator skips.
  if (comm.backend() == "local") return;
  std::vector<TrainEngine::GradSpan> spans = engine.gradient_spans();
  BRISK_CHECK(engine.gradients_on_device() == comm.device_buffers(), "data parallelism: the ", engine.device(),
              " engine keeps its gradients in ", engine.gradients_on_device() ? "device" : "host",
              " memory, but the ", comm.backend(), " backend reduces ", comm.device_buffers() ? "device" : "host",
              " buffers (use --dp-backend ", engine.gradients_on_device() ? "nccl" : "tcp or mpi", ")");
  if (comm.device_buffers()) {
    for (const auto& s : spans) comm.all_reduce_sum(s.data, s.n);
    return;
  }
  // Host: pack small tensors into buckets so a LoRA adapter's hundreds of tensors cost a few
  // collectives, not hundreds; tensors larger than a bucket go alone.
  std::vector<float> bucket;
  std::vector<size_t> members;
  auto flush = [&]() {
    if (members.empty()) return;
    comm.all_reduce_sum(bucket.data(), bucket.size());
    size_t off = 0;
    for (size_t i : members) {
      std::memcpy(spans[i].data, bucket.data() + off, spans[i].n * sizeof(float));
      off += spans[i].n;
    }
    bucket.clear();
    members.clear();
  };
  for (size_t i = 0; i < spans.size(); ++i) {
    if (spans[i].n >= kGradBucketFloats) {
      comm.all_reduce_sum(spans[i].data, spans[i].n);
      continue;
    }
    if (bucket.size() + spans[i].n > kGradBucketFloats) flush();
    bucket.insert(bucket.end(), spans[i].data, spans[i].data + spans[i].n);
    members.push_back(i);
  }
  flush();
}

uint64_t params_checksum(TrainEngine& engine) {
  uint64_t h = 1469598103934665603ull;
  for (const TrainGrad& p : engine.params()) {
    const auto* b = static_cast<const unsigned char*>(p.value.data);
    for (size_t i = 0, n = size_t(p.value.nbytes()); i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  }
  return h;
}

void check_replicas_agree(Communicator& comm, TrainEngine& engine, int64_t step) {
  if (comm.size() == 1) return;
  engine.sync_to_host();
  uint64_t mine = params_checksum(engine), root = mine;
  comm.broadcast(&root, sizeof root, 0);
  // Every rank learns whether any rank differs, so all stop together rather than some hanging.
  double differs = mine != root ? 1.0 : 0.0;
  comm.all_reduce_sum_f64(&differs, 1);
  BRISK_CHECK(differs == 0, "data parallelism: after step ", step, " the parameters of ", int64_t(differs),
              " rank(s) differ from rank 0's", mine != root ? cat(" (this is rank ", comm.rank(), ")") : "");
}

}  // namespace brisk::train
