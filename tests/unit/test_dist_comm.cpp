// Data-parallel building blocks on the CPU: the shards of a global batch, the TCP star and
// communicator (ranks as threads of this process), ZeRO-1's owner assignment, and the
// launcher's worker environment.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <thread>

#include "common/test_util.h"
#include "core/error.h"
#include "train/dist/communicator.h"
#include "train/dist/data_parallel.h"
#include "train/dist/launcher.h"
#include "train/dist/zero1.h"

namespace brisk::train {
namespace {

TEST(DistShards, DisjointAndTheirUnionIsTheBatch) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    size_t begin = rng() % 50, end = begin + rng() % 40;
    int world = 1 + int(rng() % 8);
    std::vector<int> seen(end, 0);
    size_t total = 0;
    for (int r = 0; r < world; ++r) {
      auto s = shard_positions(begin, end, r, world);
      for (size_t i = 1; i < s.size(); ++i) ASSERT_LT(s[i - 1], s[i]);
      for (size_t p : s) {
        ASSERT_GE(p, begin);
        ASSERT_LT(p, end);
        ++seen[p];
      }
      total += s.size();
      // Balanced: shard sizes differ by at most one row.
      size_t lo = (end - begin) / size_t(world);
      ASSERT_TRUE(s.size() == lo || s.size() == lo + 1);
    }
    ASSERT_EQ(total, end - begin);
    for (size_t p = begin; p < end; ++p) ASSERT_EQ(seen[p], 1) << "position " << p << " world " << world;
  }
}

// Runs fn(rank) on `world` threads with TCP communicators; rethrows the first failure.
template <class Fn>
void run_ranks(int world, int port, Fn fn) {
  std::vector<std::thread> threads;
  std::vector<std::string> errors(static_cast<size_t>(world));
  for (int r = 0; r < world; ++r)
    threads.emplace_back([&, r] {
      try {
        DistEnv e;
        e.rank = r, e.world_size = world, e.master_port = port, e.timeout_s = 20;
        auto comm = make_communicator("tcp", e);
        fn(*comm);
      } catch (const std::exception& ex) {
        errors[size_t(r)] = ex.what();
      }
    });
  for (auto& t : threads) t.join();
  for (int r = 0; r < world; ++r) ASSERT_EQ(errors[size_t(r)], "") << "rank " << r;
}

TEST(DistTcp, AllReduceBroadcastBarrier) {
  const int world = 3;
  const size_t n = 100003;  // not a multiple of anything
  std::vector<std::vector<float>> in(world, std::vector<float>(n));
  std::vector<std::vector<double>> in64(world, std::vector<double>(5));
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1, 1);
  for (auto& v : in)
    for (float& x : v) x = u(rng);
  for (auto& v : in64)
    for (double& x : v) x = double(u(rng)) * 1e6;
  std::vector<std::vector<float>> out(world);
  std::vector<std::vector<double>> out64(world);
  std::vector<std::vector<char>> bc(world, std::vector<char>(777, 0));
  run_ranks(world, testing::free_port(), [&](Communicator& c) {
    ASSERT_EQ(c.size(), world);
    out[size_t(c.rank())] = in[size_t(c.rank())];
    c.all_reduce_sum(out[size_t(c.rank())].data(), n);
    out64[size_t(c.rank())] = in64[size_t(c.rank())];
    c.all_reduce_sum_f64(out64[size_t(c.rank())].data(), 5);
    if (c.rank() == 2)
      for (size_t i = 0; i < 777; ++i) bc[2][i] = char(i * 7 + 1);
    c.broadcast(bc[size_t(c.rank())].data(), 777, 2);  // a root other than 0
    c.barrier();
  });
  double max_err = 0;
  for (size_t i = 0; i < n; ++i) {
    float want = (in[0][i] + in[1][i]) + in[2][i];  // rank order, as documented
    for (int r = 0; r < world; ++r) {
      ASSERT_EQ(out[size_t(r)][i], out[0][i]);  // every rank gets the same bits
      max_err = std::max(max_err, double(std::fabs(out[size_t(r)][i] - want)));
    }
  }
  std::printf("[tcp all-reduce] max |err| %.3g over %zu floats\n", max_err, n);
  EXPECT_EQ(max_err, 0.0);
  for (int r = 0; r < world; ++r)
    for (size_t i = 0; i < 5; ++i) EXPECT_EQ(out64[size_t(r)][i], (in64[0][i] + in64[1][i]) + in64[2][i]);
  for (int r = 0; r < world; ++r) EXPECT_EQ(bc[size_t(r)], bc[2]) << "rank " << r;
}

TEST(DistTcp, MissingRankIsAClearError) {
  DistEnv e;
  e.rank = 0, e.world_size = 2, e.master_port = testing::free_port(), e.timeout_s = 1;
  try {
    make_communicator("tcp", e);
    FAIL() << "no error";
  } catch (const Error& ex) {
    EXPECT_NE(std::string(ex.what()).find("only 1 of 2 ranks joined"), std::string::npos) << ex.what();
  }
  e.rank = 1;
  try {
    make_communicator("tcp", e);
    FAIL() << "no error";
  } catch (const Error& ex) {
    EXPECT_NE(std::string(ex.what()).find("rank 1: cannot reach rank 0"), std::string::npos) << ex.what();
  }
}

TEST(DistTcp, PeerThatExitsIsNamed) {
  const int port = testing::free_port();
  std::string err;
  std::thread t0([&] {
    try {
      DistEnv e;
      e.rank = 0, e.world_size = 2, e.master_port = port, e.timeout_s = 20;
      auto c = make_communicator("tcp", e);
      float x[4] = {1, 2, 3, 4};
      c->all_reduce_sum(x, 4);  // rank 1 leaves without taking part
    } catch (const Error& ex) {
      err = ex.what();
    }
  });
  {
    DistEnv e;
    e.rank = 1, e.world_size = 2, e.master_port = port, e.timeout_s = 20;
    auto c = make_communicator("tcp", e);
  }
  t0.join();
  EXPECT_NE(err.find("rank 0: rank 1 closed its connection"), std::string::npos) << err;
}

TEST(DistTcp, PeerThatHangsTimesOut) {
  const int port = testing::free_port();
  std::string err;
  std::thread t0([&] {
    try {
      DistEnv e;
      e.rank = 0, e.world_size = 2, e.master_port = port, e.timeout_s = 1;
      auto c = make_communicator("tcp", e);
      double x = 1;
      c->all_reduce_sum_f64(&x, 1);  // rank 1 is connected but never takes part
    } catch (const Error& ex) {
      err = ex.what();
    }
  });
  DistEnv e;
  e.rank = 1, e.world_size = 2, e.master_port = port, e.timeout_s = 1;
  auto c = make_communicator("tcp", e);
  t0.join();  // rank 1 stays connected (silent) until rank 0 has given up
  EXPECT_NE(err.find("rank 0: receiving from rank 1 failed (timed out: is it hung?)"), std::string::npos) << err;
}

TEST(DistEnvironment, BackendsAndErrors) {
  DistEnv two;
  two.world_size = 2;
  EXPECT_THROW(make_communicator("local", two), Error);
  EXPECT_THROW(make_communicator("carrier-pigeon", DistEnv{}), Error);
  auto one = make_communicator("local", DistEnv{});
  float x[3] = {1.5f, -2.0f, 3.25f};
  one->all_reduce_sum(x, 3);
  EXPECT_EQ(x[0], 1.5f);
  EXPECT_EQ(x[2], 3.25f);
}

TEST(DistZero1, OwnersAreBalancedAndDeterministic) {
  std::mt19937 rng(5);
  std::vector<std::vector<float>> store;
  std::vector<Param> params;
  for (int i = 0; i < 37; ++i) {
    int64_t n = 1 + int64_t(rng() % 5000);
    store.emplace_back(size_t(n), 0.5f);
    Tensor t(store.back().data(), DType::F32, Shape{n});
    params.push_back({"p" + std::to_string(i), t, t, true});
  }
  for (int world : {1, 2, 3, 8}) {
    auto o = zero1_owners(params, world);
    EXPECT_EQ(o, zero1_owners(params, world));
    std::vector<int64_t> load(size_t(world), 0);
    int64_t largest = 0;
    for (size_t i = 0; i < params.size(); ++i) {
      ASSERT_GE(o[i], 0);
      ASSERT_LT(o[i], world);
      load[size_t(o[i])] += params[i].value.numel();
      largest = std::max(largest, params[i].value.numel());
    }
    auto [lo, hi] = std::minmax_element(load.begin(), load.end());
    std::printf("[zero1 owners] world %d: shard sizes %lld..%lld elements\n", world, (long long)*lo, (long long)*hi);
    EXPECT_LE(*hi - *lo, largest);
  }
}

TEST(DistLauncher, WorkerEnvironment) {
  LaunchOptions o;
  o.nproc_per_node = 4, o.nnodes = 2, o.node_rank = 1, o.master_addr = "10.0.0.1", o.master_port = 1234;
  o.backend = "nccl", o.one_gpu_per_worker = true;
  auto env = worker_environment(o, 2, "3,5,6,7");
  auto get = [&](const std::string& k) {
    for (auto& [a, b] : env)
      if (a == k) return b;
    return std::string("<unset>");
  };
  EXPECT_EQ(get("BRISK_RANK"), "6");
  EXPECT_EQ(get("BRISK_WORLD_SIZE"), "8");
  EXPECT_EQ(get("BRISK_LOCAL_RANK"), "2");
  EXPECT_EQ(get("BRISK_MASTER_ADDR"), "10.0.0.1");
  EXPECT_EQ(get("BRISK_MASTER_PORT"), "1234");
  EXPECT_EQ(get("BRISK_DP_BACKEND"), "nccl");
  EXPECT_EQ(get("CUDA_VISIBLE_DEVICES"), "6");
  EXPECT_EQ(get("NCCL_NVLS_ENABLE"), "0");
  env = worker_environment(o, 3, nullptr);
  EXPECT_EQ(get("CUDA_VISIBLE_DEVICES"), "3");
  EXPECT_THROW(worker_environment(o, 3, "0,1"), Error);
}

}  // namespace
}  // namespace brisk::train
