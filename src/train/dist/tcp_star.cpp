#include "train/dist/tcp_star.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "core/error.h"

namespace brisk::train {
namespace {

constexpr uint32_t kMagic = 0x6b736962;  // "bisk": rejects stray connections to the port

void set_timeout(int fd, double seconds) {
  timeval tv{};
  tv.tv_sec = time_t(seconds);
  tv.tv_usec = suseconds_t((seconds - double(tv.tv_sec)) * 1e6);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

addrinfo* resolve(const DistEnv& env, bool passive) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  if (passive) hints.ai_flags = AI_PASSIVE;
  std::string port = std::to_string(env.master_port);
  int rc = ::getaddrinfo(passive ? nullptr : env.master_addr.c_str(), port.c_str(), &hints, &res);
  BRISK_CHECK(rc == 0 && res, "rank ", env.rank, ": cannot resolve master address ", env.master_addr, ":", port, " (",
              ::gai_strerror(rc), ")");
  return res;
}

void write_all(int fd, const void* data, size_t bytes, int me, int peer) {
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    ssize_t w = ::send(fd, p, bytes, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    BRISK_CHECK(w > 0, "rank ", me, ": sending to rank ", peer, " failed (",
                errno == EAGAIN ? "timed out" : std::strerror(errno), "): did rank ", peer, " exit or hang?");
    p += w;
    bytes -= size_t(w);
  }
}

void read_all(int fd, void* data, size_t bytes, int me, int peer) {
  char* p = static_cast<char*>(data);
  while (bytes > 0) {
    ssize_t r = ::recv(fd, p, bytes, 0);
    if (r < 0 && errno == EINTR) continue;
    BRISK_CHECK(r != 0, "rank ", me, ": rank ", peer, " closed its connection (did it exit?)");
    BRISK_CHECK(r > 0, "rank ", me, ": receiving from rank ", peer, " failed (",
                errno == EAGAIN ? "timed out: is it hung?" : std::strerror(errno), ")");
    p += r;
    bytes -= size_t(r);
  }
}

}  // namespace

TcpStar::TcpStar(const DistEnv& env) : rank_(env.rank), size_(env.world_size) {
  BRISK_CHECK(size_ >= 1 && rank_ >= 0 && rank_ < size_, "invalid rank ", rank_, " of world size ", size_);
  if (size_ == 1) return;
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + std::chrono::duration<double>(env.timeout_s);
  if (rank_ == 0) {
    fds_.assign(size_t(size_), -1);
    addrinfo* ai = resolve(env, true);
    int ls = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    int one = 1;
    ::setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    bool bound = ls >= 0 && ::bind(ls, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(ls, size_) == 0;
    int err = errno;
    ::freeaddrinfo(ai);
    if (!bound) {
      if (ls >= 0) ::close(ls);
      throw Error(cat("rank 0: cannot listen on port ", env.master_port, " (", std::strerror(err),
                      "): pick a free one with --master-port"));
    }
    set_timeout(ls, env.timeout_s);  // accept() waits at most the timeout
    for (int joined = 1; joined < size_;) {
      int fd = ::accept4(ls, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0 && errno == EINTR) continue;
      if (fd < 0) {
        ::close(ls);
        throw Error(cat("rank 0: only ", joined, " of ", size_, " ranks joined within ", env.timeout_s,
                        " s (did a worker fail to start?)"));
      }
      set_timeout(fd, env.timeout_s);
      uint32_t hello[3] = {0, 0, 0};
      try {
        read_all(fd, hello, sizeof hello, 0, -1);
      } catch (const Error&) {
        ::close(fd);
        continue;
      }
      int r = int(hello[1]);
      if (hello[0] != kMagic || int(hello[2]) != size_ || r < 1 || r >= size_ || fds_[size_t(r)] >= 0) {
        ::close(fd);
        ::close(ls);
        throw Error(cat("rank 0: a process connected as rank ", r, " of ", hello[2], " (expected a new rank of ",
                        size_, "): two runs on port ", env.master_port, "?"));
      }
      fds_[size_t(r)] = fd;
      ++joined;
    }
    ::close(ls);
  } else {
    fds_.assign(1, -1);
    std::string last_error;
    while (fds_[0] < 0) {
      addrinfo* ai = resolve(env, false);
      int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
      if (fd >= 0 && ::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
        fds_[0] = fd;
      } else {
        last_error = std::strerror(errno);
        if (fd >= 0) ::close(fd);
      }
      ::freeaddrinfo(ai);
      if (fds_[0] >= 0) break;
      BRISK_CHECK(clock::now() < deadline, "rank ", rank_, ": cannot reach rank 0 at ", env.master_addr, ":",
                  env.master_port, " within ", env.timeout_s, " s (", last_error, ")");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    set_timeout(fds_[0], env.timeout_s);
    uint32_t hello[3] = {kMagic, uint32_t(rank_), uint32_t(size_)};
    write_all(fds_[0], hello, sizeof hello, rank_, 0);
  }
}

TcpStar::~TcpStar() {
  for (int fd : fds_)
    if (fd >= 0) ::close(fd);
}

int TcpStar::fd_of(int peer) const {
  BRISK_ASSERT(rank_ == 0 ? (peer >= 1 && peer < size_) : peer == 0);
  return rank_ == 0 ? fds_[size_t(peer)] : fds_[0];
}

void TcpStar::send(int peer, const void* data, size_t bytes) { write_all(fd_of(peer), data, bytes, rank_, peer); }
void TcpStar::recv(int peer, void* data, size_t bytes) { read_all(fd_of(peer), data, bytes, rank_, peer); }

}  // namespace brisk::train
