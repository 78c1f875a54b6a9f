// GGUF reader and writer: round trips of every value type and tensor dtype (byte-exact), the
// file layout (alignment, padding, ne order), atomic writes, and one clear error for each kind
// of malformed file (built by hand, byte by byte).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <random>

#include "common/test_util.h"
#include "core/fs.h"
#include "io/gguf.h"

using namespace brisk;
using namespace brisk::io;
using brisk::testing::TempDir;

namespace {

// A GGUF file assembled by hand, so each test can break exactly one thing.
struct Bytes {
  std::string b;
  template <typename T>
  Bytes& put(T v) {
    b.append(reinterpret_cast<const char*>(&v), sizeof(T));
    return *this;
  }
  Bytes& str(const std::string& s) {
    put<uint64_t>(s.size());
    b += s;
    return *this;
  }
  Bytes& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return put<uint32_t>(0x46554747).put<uint32_t>(version).put<uint64_t>(n_tensors).put<uint64_t>(n_kv);
  }
  Bytes& kv_u32(const std::string& key, uint32_t v) { return str(key).put<uint32_t>(4).put<uint32_t>(v); }
  // A 1-D F32 tensor of n elements at data offset `offset`.
  Bytes& tensor_f32(const std::string& name, uint64_t n, uint64_t offset) {
    return str(name).put<uint32_t>(1).put<uint64_t>(n).put<uint32_t>(0).put<uint64_t>(offset);
  }
  Bytes& pad_to(size_t a) {
    b.resize((b.size() + a - 1) / a * a, '\0');
    return *this;
  }
  Bytes& zeros(size_t n) {
    b.append(n, '\0');
    return *this;
  }
};

GGUFFile parse(const Bytes& x) { return GGUFFile::from_bytes(x.b.data(), x.b.size(), "t.gguf"); }

// Expects parse to throw a brisk::Error whose one-line message contains `needle`.
void expect_error(const Bytes& x, const std::string& needle) {
  try {
    parse(x);
    ADD_FAILURE() << "no error; expected one containing: " << needle;
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_NE(msg.find("t.gguf"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

std::string write_to_string(GGUFWriter& w) {
  TempDir dir;
  std::string path = dir.path + "/m.gguf";
  w.write(path);
  return read_file(path);
}

GGUFFile round_trip(GGUFWriter& w) {
  std::string bytes = write_to_string(w);
  return GGUFFile::from_bytes(bytes.data(), bytes.size(), "rt.gguf");
}

}  // namespace

TEST(GGUF, ValuesOfEveryTypeRoundTrip) {
  GGUFWriter w;
  auto scalar = [](GGUFType t, auto x) {
    GGUFValue v;
    v.type = t;
    v.v = x;
    return v;
  };
  w.set("u8", scalar(GGUFType::U8, uint64_t(250)));
  w.set("i8", scalar(GGUFType::I8, int64_t(-100)));
  w.set("u16", scalar(GGUFType::U16, uint64_t(65000)));
  w.set("i16", scalar(GGUFType::I16, int64_t(-32000)));
  w.set("u32", GGUFValue::u32(4000000000u));
  w.set("i32", GGUFValue::i32(-2000000000));
  w.set("f32", GGUFValue::f32(0.1f));
  w.set("bool", GGUFValue::boolean(true));
  w.set("string", GGUFValue::str("h\xC3\xA9llo\n"));
  w.set("u64", GGUFValue::u64(18000000000000000000ull));
  w.set("i64", scalar(GGUFType::I64, int64_t(-9000000000000000000ll)));
  w.set("f64", scalar(GGUFType::F64, 0.1));
  w.set("strings", GGUFValue::strings({"a", "", "b c"}));
  w.set("f32s", GGUFValue::f32s({1.5, -0.25}));
  w.set("i32s", GGUFValue::i32s({-1, 7, 2147483647}));
  GGUFValue u8s;
  u8s.type = GGUFType::ARRAY;
  u8s.elem_type = GGUFType::U8;
  u8s.v = std::vector<int64_t>{0, 255};
  w.set("u8s", u8s);
  GGUFValue empty = GGUFValue::strings({});
  w.set("empty", empty);
  w.set("i32", GGUFValue::i32(-5));  // set again: replaced in place, not duplicated

  std::string bytes = write_to_string(w);
  GGUFFile f = GGUFFile::from_bytes(bytes.data(), bytes.size(), "rt.gguf");
  EXPECT_EQ(f.metadata().size(), 17u);
  EXPECT_EQ(f.get_int("u8"), 250);
  EXPECT_EQ(f.get_int("i8"), -100);
  EXPECT_EQ(f.get_int("u16"), 65000);
  EXPECT_EQ(f.get_int("i16"), -32000);
  EXPECT_EQ(f.get_int("u32"), 4000000000);
  EXPECT_EQ(f.get_int("i32"), -5);
  EXPECT_EQ(f.get_float("f32"), double(0.1f));
  EXPECT_EQ(f.get_bool("bool"), true);
  EXPECT_EQ(f.get_string("string"), "h\xC3\xA9llo\n");
  EXPECT_EQ(std::get<uint64_t>(f.get("u64").v), 18000000000000000000ull);
  EXPECT_THROW(f.get_int("u64"), Error);  // above INT64_MAX
  EXPECT_EQ(f.get_int("i64"), -9000000000000000000ll);
  EXPECT_EQ(f.get_float("f64"), 0.1);
  EXPECT_EQ(f.get_float("u32"), 4000000000.0);
  EXPECT_EQ(std::get<std::vector<std::string>>(f.get("strings").v), (std::vector<std::string>{"a", "", "b c"}));
  EXPECT_EQ(std::get<std::vector<double>>(f.get("f32s").v), (std::vector<double>{1.5, -0.25}));
  EXPECT_EQ(f.get("i32s").elem_type, GGUFType::I32);
  EXPECT_EQ(std::get<std::vector<int64_t>>(f.get("i32s").v), (std::vector<int64_t>{-1, 7, 2147483647}));
  EXPECT_EQ(f.get("u8s").elem_type, GGUFType::U8);
  EXPECT_EQ(std::get<std::vector<int64_t>>(f.get("u8s").v), (std::vector<int64_t>{0, 255}));
  EXPECT_TRUE(std::get<std::vector<std::string>>(f.get("empty").v).empty());
  // Exact on-disk types: each scalar is written with its own width.
  EXPECT_EQ(f.get("u16").type, GGUFType::U16);
  EXPECT_EQ(f.get("i64").type, GGUFType::I64);
  // Type mismatches and missing keys name the key.
  EXPECT_THROW(f.get_string("u32"), Error);
  EXPECT_THROW(f.get_bool("u8"), Error);
  try {
    f.get_int("nope");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'nope'"), std::string::npos);
  }
  EXPECT_EQ(f.get_int_or("nope", 7), 7);
  EXPECT_EQ(f.get_string_or("string", "x"), "h\xC3\xA9llo\n");
  EXPECT_EQ(f.get_float_or("nope", 2.5), 2.5);
}

TEST(GGUF, KeysKeepInsertionOrderOnDisk) {
  GGUFWriter w;
  w.set("zeta", GGUFValue::u32(1));
  w.set("alpha", GGUFValue::u32(2));
  std::string bytes = write_to_string(w);
  EXPECT_LT(bytes.find("zeta"), bytes.find("alpha"));
}

TEST(GGUF, TensorsOfEveryDTypeRoundTripByteExact) {
  struct Case {
    DType dtype;
    Shape shape;
    uint32_t ggml;
  };
  const Case cases[] = {
      {DType::F32, {3, 5}, 0},      {DType::F16, {2, 3, 7}, 1},  {DType::BF16, {11}, 30},
      {DType::Q8_0, {3, 64}, 8},    {DType::Q4_0, {2, 32}, 2},   {DType::Q4_K, {2, 256}, 12},
      {DType::Q5_K, {1, 512}, 13},  {DType::Q6_K, {3, 256}, 14}, {DType::F32, {1, 2, 3, 4}, 0},
  };
  std::mt19937 rng(42);
  std::vector<std::string> payloads;
  GGUFWriter w(64);
  for (size_t i = 0; i < std::size(cases); ++i) {
    std::string p(tensor_bytes(cases[i].dtype, cases[i].shape), '\0');
    for (char& c : p) c = char(rng());
    payloads.push_back(p);
    w.add_tensor(cat("t", i), cases[i].dtype, cases[i].shape,
                 [&payloads, i](void* dst) { std::memcpy(dst, payloads[i].data(), payloads[i].size()); });
  }
  std::vector<uint64_t> progress;
  TempDir dir;
  std::string path = dir.path + "/m.gguf";
  w.write(path, false, [&](size_t done, size_t total, uint64_t bytes) {
    EXPECT_EQ(done, progress.size() + 1);
    EXPECT_EQ(total, std::size(cases));
    progress.push_back(bytes);
  });
  ASSERT_EQ(progress.size(), std::size(cases));
  GGUFFile f = GGUFFile::open(path);
  EXPECT_EQ(std::filesystem::file_size(path), progress.back());
  EXPECT_EQ(f.get_int("general.alignment"), 64);  // written because it is not the default
  ASSERT_EQ(f.tensors().size(), std::size(cases));
  for (size_t i = 0; i < std::size(cases); ++i) {
    const GGUFTensorInfo& info = f.tensor_info(cat("t", i));
    EXPECT_EQ(info.ggml_type, cases[i].ggml);
    EXPECT_EQ(info.offset % 64, 0u);
    // ne is innermost first: HF [rows, cols] is stored as [cols, rows].
    EXPECT_EQ(info.ne.front(), cases[i].shape[cases[i].shape.ndim - 1]);
    Tensor t = f.tensor(cat("t", i));
    EXPECT_EQ(t.dtype, cases[i].dtype);
    EXPECT_EQ(t.shape, cases[i].shape);
    ASSERT_EQ(t.nbytes(), payloads[i].size());
    EXPECT_EQ(std::memcmp(t.data, payloads[i].data(), payloads[i].size()), 0) << i;
    EXPECT_EQ(f.tensor_data(cat("t", i)), t.data);
    // The data section starts aligned in the file too (the mapping is page-aligned).
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % 64, 0u);
  }
  EXPECT_THROW(f.tensor("missing"), Error);
}

TEST(GGUF, LayoutMatchesTheSpecByteForByte) {
  GGUFWriter w;
  w.set("k", GGUFValue::u32(9));
  float vals[3] = {1, 2, 3};
  w.add_tensor("w", DType::F32, {3}, [&](void* dst) { std::memcpy(dst, vals, 12); });
  std::string got = write_to_string(w);
  Bytes want;
  want.header(1, 1).kv_u32("k", 9).tensor_f32("w", 3, 0).pad_to(32);
  want.b.append(reinterpret_cast<const char*>(vals), 12);
  want.pad_to(32);
  EXPECT_EQ(got, want.b);
}

TEST(GGUF, WriterRefusesExistingFileUnlessForcedAndLeavesNoTempFile) {
  TempDir dir;
  std::string path = dir.path + "/m.gguf";
  write_file_atomic(path, "old");
  GGUFWriter w;
  w.set("a", GGUFValue::u32(1));
  try {
    w.write(path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), path + " exists (use --force)");
  }
  EXPECT_EQ(read_file(path), "old");
  w.write(path, true);
  EXPECT_EQ(GGUFFile::open(path).get_int("a"), 1);

  // A fill that throws: the error comes through, no file appears, no temp file is left.
  GGUFWriter bad;
  bad.add_tensor("x", DType::F32, {4}, [](void*) { throw Error("source tensor unreadable"); });
  std::string out = dir.path + "/bad.gguf";
  EXPECT_THROW(bad.write(out), Error);
  EXPECT_FALSE(file_exists(out));
  size_t n = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path)) n += e.path().filename() != "m.gguf";
  EXPECT_EQ(n, 0u);
}

TEST(GGUF, WriterReportsDiskFull) {
  if (!file_exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  // /dev/full fails every write with ENOSPC; the temp file is created beside it, so write into
  // a folder where the temp name maps to /dev/full through a symlink.
  TempDir dir;
  std::string path = dir.path + "/m.gguf";
  std::filesystem::create_symlink("/dev/full", cat(path, ".tmp-", ::getpid()));
  GGUFWriter w;
  w.add_tensor("x", DType::F32, {1024}, [](void* dst) { std::memset(dst, 1, 4096); });
  try {
    w.write(path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "disk full writing " + path);
  }
  EXPECT_FALSE(file_exists(path));
}

TEST(GGUF, WriterRejectsBadTensors) {
  GGUFWriter w;
  auto nop = [](void*) {};
  w.add_tensor("a", DType::F32, {2}, nop);
  EXPECT_THROW(w.add_tensor("a", DType::F32, {2}, nop), Error);
  EXPECT_THROW(w.add_tensor("q", DType::Q4_K, {2, 128}, nop), Error);  // row not a multiple of 256
  EXPECT_THROW(w.add_tensor(std::string(64, 'n'), DType::F32, {2}, nop), Error);
  EXPECT_THROW(w.add_tensor("z", DType::F32, {0, 2}, nop), Error);
  EXPECT_THROW(w.add_tensor("u", DType::U8, {2}, nop), Error);  // GGUF has no u8 tensors
  EXPECT_THROW(GGUFWriter(24), Error);
}

TEST(GGUF, VersionTwoAndIntegerAlignmentOfAnyWidth) {
  Bytes x;
  x.header(1, 1, 2).str("general.alignment").put<uint32_t>(10).put<uint64_t>(16).tensor_f32("w", 2, 0).pad_to(16).zeros(8);
  GGUFFile f = parse(x);
  EXPECT_EQ(f.tensor_info("w").nbytes, 8u);
  EXPECT_EQ(f.get_int("general.alignment"), 16);
}

TEST(GGUF, MalformedFilesGiveOneClearError) {
  Bytes ok;
  ok.header(1, 1).kv_u32("a", 1).tensor_f32("w", 4, 0).pad_to(32).zeros(16);
  ASSERT_NO_THROW(parse(ok));

  for (size_t cut : {size_t(0), size_t(3), size_t(10), size_t(30), ok.b.size() - 1}) {
    Bytes t;
    t.b = ok.b.substr(0, cut);
    EXPECT_THROW(parse(t), Error) << cut;
  }
  Bytes trunc;
  trunc.b = ok.b.substr(0, 30);
  expect_error(trunc, "truncated");

  Bytes magic = ok;
  magic.b[0] = 'X';
  expect_error(magic, "not a GGUF file (bad magic)");

  expect_error(Bytes().header(0, 0, 1), "version 1 is not supported");
  expect_error(Bytes().header(0, 0, 7), "unsupported GGUF version 7");
  expect_error(Bytes().header(0, 0, 0x03000000), "big-endian");

  Bytes key;
  key.header(0, 1).put<uint64_t>(1000).b += "abc";
  expect_error(key, "metadata key length 1000 exceeds the 3 bytes left");
  expect_error(Bytes().header(0, 1).str("k").put<uint32_t>(8).put<uint64_t>(uint64_t(1) << 62).zeros(8),
               "string value length 4611686018427387904 exceeds");
  expect_error(Bytes().header(0, 1).str("k").put<uint32_t>(9).put<uint32_t>(4).put<uint64_t>(uint64_t(1) << 60).zeros(8),
               "key 'k': array of 1152921504606846976 u32 does not fit");
  expect_error(Bytes().header(0, 1).str("k").put<uint32_t>(9).put<uint32_t>(8).put<uint64_t>(1000000).zeros(64),
               "array of 1000000 string does not fit");
  expect_error(Bytes().header(0, 1).str("k").put<uint32_t>(9).put<uint32_t>(9).put<uint64_t>(1).zeros(32),
               "key 'k': nested arrays are not supported");
  expect_error(Bytes().header(0, 1).str("k").put<uint32_t>(13).zeros(8), "key 'k': unknown value type 13");
  expect_error(Bytes().header(0, 1).str("k").put<uint32_t>(7).put<uint8_t>(2), "bool value 2");
  expect_error(Bytes().header(0, 2).kv_u32("k", 1).kv_u32("k", 2), "duplicate key 'k'");
  expect_error(Bytes().header(uint64_t(1) << 40, 0).zeros(64), "tensor count 1099511627776 cannot fit");
  expect_error(Bytes().header(0, uint64_t(1) << 40).zeros(64), "metadata count 1099511627776 cannot fit");

  expect_error(Bytes().header(1, 1).str("general.alignment").put<uint32_t>(4).put<uint32_t>(24).tensor_f32("w", 1, 0),
               "general.alignment must be a power of two");
  expect_error(Bytes().header(1, 1).str("general.alignment").put<uint32_t>(8).str("32").tensor_f32("w", 1, 0),
               "general.alignment must be a power of two");

  expect_error(Bytes().header(1, 0).tensor_f32("w", 4, 32).pad_to(32).zeros(16), "extends past the end of the file");
  expect_error(Bytes().header(1, 0).tensor_f32("w", 4, uint64_t(-32)).pad_to(32).zeros(16), "extends past the end");
  expect_error(Bytes().header(1, 0).tensor_f32("w", 4, 4).pad_to(32).zeros(64), "offset 4 is not a multiple of the alignment 32");
  expect_error(Bytes().header(2, 0).tensor_f32("a", 16, 0).tensor_f32("b", 4, 32).pad_to(32).zeros(128),
               "tensors 'a' and 'b' overlap");
  expect_error(Bytes().header(2, 0).tensor_f32("a", 4, 0).tensor_f32("a", 4, 32).pad_to(32).zeros(64),
               "duplicate tensor name 'a'");
  expect_error(Bytes().header(1, 0).str("w").put<uint32_t>(5).zeros(64), "tensor 'w': n_dims 5");
  expect_error(Bytes().header(1, 0).str("w").put<uint32_t>(0).zeros(64), "tensor 'w': n_dims 0");
  expect_error(Bytes().header(1, 0).str("w").put<uint32_t>(1).put<uint64_t>(0).put<uint32_t>(0).put<uint64_t>(0).zeros(32),
               "tensor 'w': dimension 0 is 0");
  expect_error(Bytes().header(1, 0).str("w").put<uint32_t>(2).put<uint64_t>(uint64_t(1) << 40).put<uint64_t>(uint64_t(1) << 40)
                   .put<uint32_t>(0).put<uint64_t>(0).zeros(32),
               "element count overflows");
  expect_error(Bytes().header(1, 0).str("w").put<uint32_t>(1).put<uint64_t>(32).put<uint32_t>(4).put<uint64_t>(0).zeros(64),
               "tensor 'w': unknown ggml type 4");
  expect_error(Bytes().header(1, 0).str("w").put<uint32_t>(1).put<uint64_t>(100).put<uint32_t>(12).put<uint64_t>(0).zeros(64),
               "row length 100 is not a multiple of the Q4_K block (256)");
}

TEST(GGUF, TypesBriskCannotComputeWithListButRefuseViews) {
  // Q4_1 (ggml id 3): 32 elements in 20 bytes.
  Bytes x;
  x.header(1, 0).str("w").put<uint32_t>(1).put<uint64_t>(32).put<uint32_t>(3).put<uint64_t>(0).pad_to(32).zeros(20);
  GGUFFile f = parse(x);
  EXPECT_EQ(f.tensor_info("w").nbytes, 20u);
  try {
    f.tensor("w");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ggml type Q4_1 (id 3)"), std::string::npos) << e.what();
  }
}

TEST(GGUF, OpenNamesTheFile) {
  try {
    GGUFFile::open("/nonexistent/x.gguf");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/x.gguf"), std::string::npos);
  }
  TempDir dir;
  std::string p = dir.path + "/bad.gguf";
  write_file_atomic(p, "GGUF");
  try {
    GGUFFile::open(p);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(p), std::string::npos);
  }
}
