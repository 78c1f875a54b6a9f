// A star of TCP connections between the ranks of a run: rank 0 listens on
// master_addr:master_port, every other rank connects to it (retrying until the timeout, so the
// ranks may start in any order). Used to hand NCCL its unique id and by TcpCommunicator.
// Every socket has the run's timeout, so a rank that hangs or dies becomes a one-line error
// naming it, never a silent hang.
#pragma once
#include <cstddef>
#include <vector>

#include "train/dist/communicator.h"

namespace brisk::train {

class TcpStar {
 public:
  explicit TcpStar(const DistEnv& env);
  ~TcpStar();
  TcpStar(const TcpStar&) = delete;
  TcpStar& operator=(const TcpStar&) = delete;
  int rank() const { return rank_; }
  int size() const { return size_; }
  // Rank 0 talks to any peer; the other ranks only to rank 0.
  void send(int peer, const void* data, size_t bytes);
  void recv(int peer, void* data, size_t bytes);

 private:
  int fd_of(int peer) const;
  int rank_, size_;
  std::vector<int> fds_;  // rank 0: fds_[r] for r >= 1; other ranks: fds_[0] (to rank 0)
};

}  // namespace brisk::train
