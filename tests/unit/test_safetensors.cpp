// safetensors reader/writer: round trips of every dtype, sharding, and every malformed input
// the reader must reject (each with the error text a user would see).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <numeric>

#include "common/test_util.h"
#include "core/fs.h"
#include "io/safetensors.h"

using namespace brisk;
using namespace brisk::io;
using brisk::testing::TempDir;

namespace {

// File bytes: u64 little-endian header length, header text, data buffer.
std::string st_bytes(const std::string& header, const std::string& data = "") {
  std::string out(8, '\0');
  uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

SafeTensorsFile parse(const std::string& bytes) { return SafeTensorsFile::from_bytes(bytes.data(), bytes.size(), "t.st"); }

// Parsing must fail with a message that names the file and contains `needle`.
void expect_rejects(const std::string& bytes, const std::string& needle) {
  try {
    parse(bytes);
    ADD_FAILURE() << "accepted; expected error containing: " << needle;
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(needle), std::string::npos) << "message: " << msg << "\nexpected: " << needle;
    EXPECT_EQ(msg.rfind("t.st", 0), 0u) << "message does not start with the file name: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "multi-line message: " << msg;
  }
}

template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

// Deterministic bytes that differ across tensors and positions.
HostTensor filled(DType dt, Shape s, uint32_t seed) {
  HostTensor h(dt, s);
  auto* p = static_cast<uint8_t*>(h.t.data);
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < h.t.nbytes(); ++i) {
    x = x * 1664525u + 1013904223u;
    p[i] = uint8_t(x >> 24);
  }
  return h;
}

}  // namespace

TEST(SafeTensors, RoundTripEveryDtypeZeroSizeAndScalar) {
  TempDir tmp;
  std::vector<HostTensor> keep;
  keep.push_back(filled(DType::F32, {3, 5}, 1));
  keep.push_back(filled(DType::BF16, {7}, 2));
  keep.push_back(filled(DType::F16, {2, 3, 4}, 3));
  keep.push_back(filled(DType::I32, {1, 2, 3, 4}, 4));
  keep.push_back(filled(DType::I64, {5}, 5));
  keep.push_back(filled(DType::U8, {13}, 6));  // odd size: later tensors start misaligned
  keep.push_back(filled(DType::F32, {0, 4}, 7));
  keep.push_back(filled(DType::I64, {}, 8));   // scalar
  NamedTensors named;
  const char* names[] = {"a.f32", "b.bf16", "c.f16", "d.i32", "e.i64", "f.u8", "g.empty", "h.scalar"};
  for (size_t i = 0; i < keep.size(); ++i) named.emplace_back(names[i], keep[i].t);
  std::string path = tmp.path + "/x.safetensors";
  write_safetensors(path, named);

  std::string raw = read_file(path);
  uint64_t hlen;
  std::memcpy(&hlen, raw.data(), 8);
  EXPECT_EQ((8 + hlen) % 8, 0u) << "data must start 8-byte aligned";

  SafeTensorsFile f = SafeTensorsFile::open(path);
  EXPECT_EQ(f.metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
  EXPECT_EQ(f.names(), std::vector<std::string>(std::begin(names), std::end(names)));  // data order
  for (size_t i = 0; i < keep.size(); ++i) {
    SCOPED_TRACE(names[i]);
    Tensor t = f.get(names[i]);
    EXPECT_EQ(t.dtype, keep[i].t.dtype);
    EXPECT_EQ(t.shape, keep[i].t.shape);
    EXPECT_EQ(t.numel(), keep[i].t.numel());
    std::vector<uint8_t> got(t.nbytes());
    f.read_bytes(names[i], got.data());
    EXPECT_EQ(0, std::memcmp(got.data(), keep[i].t.data, got.size()));
  }
  EXPECT_EQ(f.get("h.scalar").ndim(), 0);
  EXPECT_EQ(f.get("h.scalar").numel(), 1);
  EXPECT_EQ(f.get("g.empty").numel(), 0);
}

TEST(SafeTensors, HalfPrecisionToF32IsExactForEveryBitPattern) {
  // Every one of the 65536 bf16 and f16 values, stored misaligned (after a 1-byte tensor), must
  // read back as exactly the f32 that the scalar conversion gives.
  std::vector<uint16_t> all(65536);
  std::iota(all.begin(), all.end(), 0);
  std::string data(1, '\x7f');
  data.append(reinterpret_cast<const char*>(all.data()), all.size() * 2);
  data.append(reinterpret_cast<const char*>(all.data()), all.size() * 2);
  std::string header = R"({"pad":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                       R"("bf":{"dtype":"BF16","shape":[256,256],"data_offsets":[1,131073]},)"
                       R"("h":{"dtype":"F16","shape":[65536],"data_offsets":[131073,262145]}})";
  SafeTensorsFile f = parse(st_bytes(header, data));
  EXPECT_FALSE(f.aligned("bf"));
  EXPECT_FALSE(f.aligned("h"));
  EXPECT_TRUE(f.aligned("pad"));
  std::vector<float> got(65536);
  for (const char* name : {"bf", "h"}) {
    f.read_f32(name, got.data());
    size_t bad = 0;
    for (uint32_t i = 0; i < 65536; ++i) {
      float want = std::string(name) == "bf" ? bf16_to_f32(uint16_t(i)) : f16_to_f32(uint16_t(i));
      if (std::memcmp(&want, &got[i], 4) != 0 && !(std::isnan(want) && std::isnan(got[i]))) ++bad;
    }
    EXPECT_EQ(bad, 0u) << name;
  }
  // f32 stays bit-exact, including from a misaligned offset.
  float vals[3] = {1.5f, -0.0f, 3.4e38f};
  std::string d2(3, 'x');
  d2.append(reinterpret_cast<const char*>(vals), 12);
  SafeTensorsFile g = parse(st_bytes(R"({"p":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},)"
                                     R"("v":{"dtype":"F32","shape":[3],"data_offsets":[3,15]}})",
                                     d2));
  float out[3];
  g.read_f32("v", out);
  EXPECT_EQ(0, std::memcmp(out, vals, 12));
}

TEST(SafeTensors, HeaderPaddingAndExtraDtypesAreAccepted) {
  std::string header = R"({"__metadata__":{"format":"pt","k":"v"},"d":{"dtype":"F64","shape":[2],"data_offsets":[0,16]},)"
                       R"("b":{"dtype":"BOOL","shape":[3],"data_offsets":[16,19]},)"
                       R"("big":{"dtype":"U8","shape":[1,1,1,1,1],"data_offsets":[19,20]}})";
  header += "       ";
  SafeTensorsFile f = parse(st_bytes(header, std::string(20, '\0')));
  EXPECT_EQ(f.metadata().at("k"), "v");
  EXPECT_TRUE(f.has("d"));
  EXPECT_FALSE(f.info("d").supported);
  EXPECT_EQ(f.info("d").dtype_name, "F64");
  EXPECT_EQ(error_of([&] { f.get("d"); }),
            "t.st: tensor \"d\" has dtype F64, which brisk does not load (supported: F32, BF16, F16, I32, I64, U8)");
  EXPECT_NE(error_of([&] { f.get("b"); }).find("dtype BOOL"), std::string::npos);
  EXPECT_NE(error_of([&] { f.get("big"); }).find("5 dimensions (at most 4"), std::string::npos);
  float out[2];
  EXPECT_NE(error_of([&] { f.read_f32("d", out); }).find("cannot read it as f32"), std::string::npos);
  EXPECT_EQ(error_of([&] { f.get("nope"); }), "tensor \"nope\" not found in t.st");
  // An empty header object with an empty buffer is a valid (empty) file.
  EXPECT_TRUE(parse(st_bytes("{}")).names().empty());
}

TEST(SafeTensors, RejectsMalformedFiles) {
  const std::string ok_entry = R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::string d8(8, '\0');
  // Sanity: the baseline is accepted, so each case below fails for its own reason.
  EXPECT_NO_THROW(parse(st_bytes("{" + ok_entry + "}", d8)));

  expect_rejects("abc", "shorter than the 8-byte header length");
  expect_rejects(std::string(7, '\0'), "shorter than the 8-byte header length");
  {
    std::string b = st_bytes("{}");
    uint64_t huge = 100'000'001;
    std::memcpy(b.data(), &huge, 8);
    expect_rejects(b, "header length 100000001 exceeds the limit of 100000000 bytes");
    uint64_t lie = 50;
    std::memcpy(b.data(), &lie, 8);
    expect_rejects(b, "header length 50 is past the end of the file (10 bytes)");
    uint64_t max = ~uint64_t(0);
    std::memcpy(b.data(), &max, 8);
    expect_rejects(b, "exceeds the limit");
  }
  expect_rejects(st_bytes("{\"w\xff\":1}"), "not valid UTF-8 (byte 3 of the header)");
  expect_rejects(st_bytes("{\"\xc0\xaf\":1}"), "not valid UTF-8");      // overlong '/'
  expect_rejects(st_bytes("{\"\xed\xa0\x80\":1}"), "not valid UTF-8");  // surrogate
  expect_rejects(st_bytes(R"({"w":)"), "invalid JSON");
  expect_rejects(st_bytes(R"({"w":{}} x)"), "invalid JSON");
  expect_rejects(st_bytes("[1]"), "does not start with '{'");
  expect_rejects(st_bytes(" {}"), "does not start with '{'");
  expect_rejects(st_bytes("{" + ok_entry + "," + ok_entry + "}", d8), "duplicate key \"w\"");
  expect_rejects(st_bytes(R"({"__metadata__":{"a":"1","a":"2"}})"), "duplicate key \"a\"");
  expect_rejects(st_bytes(R"({"w":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})", d8),
                 "duplicate key \"dtype\"");
  expect_rejects(st_bytes(R"({"w":3})"), "tensor \"w\": header entry is not an object");
  expect_rejects(st_bytes(R"({"w":{"shape":[2],"data_offsets":[0,8]}})", d8), "tensor \"w\": missing \"dtype\"");
  expect_rejects(st_bytes(R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", d8), "missing \"shape\"");
  expect_rejects(st_bytes(R"({"w":{"dtype":"F32","shape":[2]}})", d8), "missing \"data_offsets\"");
  expect_rejects(st_bytes(R"({"w":{"dtype":32,"shape":[2],"data_offsets":[0,8]}})", d8), "\"dtype\" is not a string");
  expect_rejects(st_bytes(R"({"w":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})", d8), "\"shape\" is not an array");
  expect_rejects(st_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", d8),
                 "\"data_offsets\" is not an array of 2 integers");
  expect_rejects(st_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":{"a":0}}})", d8),
                 "\"data_offsets\" is not an array of 2 integers");
  expect_rejects(st_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8.0]}})", d8),
                 "are not non-negative integers");
  expect_rejects(st_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,8]}})", d8),
                 "are not non-negative integers");
  expect_rejects(st_bytes(R"({"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", d8),
                 "shape holds 2.5, not a non-negative integer");
  expect_rejects(st_bytes(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", d8), "negative dimension -2");
  expect_rejects(st_bytes(R"({"w":{"dtype":"F99","shape":[2],"data_offsets":[0,8]}})", d8), "unknown dtype \"F99\"");
  expect_rejects(st_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", d8),
                 "data_offsets [8,0] begin after end");
  expect_rejects(st_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", d8),
                 "data_offsets [0,16] end past the data buffer (8 bytes)");
  expect_rejects(st_bytes(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", d8),
                 "span 8 bytes but F32[3] needs 12");
  expect_rejects(st_bytes(R"({"w":{"dtype":"BF16","shape":[2],"data_offsets":[0,8]}})", d8),
                 "span 8 bytes but BF16[2] needs 4");
  // 2^32 * 2^32 * 4 elements overflows 64 bits: must be caught, not wrapped to a small size.
  expect_rejects(st_bytes(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,8]}})", d8),
                 "has too many elements");
  expect_rejects(st_bytes(R"({"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,8]}})", d8),
                 "has too many elements");  // numel fits, numel * 32 bits does not
  expect_rejects(st_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                          R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                          d8),
                 "tensor \"b\" (bytes 4..8) overlaps tensor \"a\" (bytes 0..8)");
  expect_rejects(st_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                          R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                          std::string(12, '\0')),
                 "bytes 4..8 of the data buffer belong to no tensor (hole before \"b\")");
  expect_rejects(st_bytes("{" + ok_entry + "}", std::string(12, '\0')), "bytes 8..12 of the data buffer belong to no tensor");
  expect_rejects(st_bytes("{}", "x"), "bytes 0..1 of the data buffer belong to no tensor");
  expect_rejects(st_bytes(R"({"__metadata__":{"n":1}})"), "__metadata__ value of \"n\" is not a string (number)");
  expect_rejects(st_bytes(R"({"__metadata__":["pt"]})"), "__metadata__ is not an object");
  expect_rejects(st_bytes(std::string(200, '[') + std::string(200, ']')), "does not start with '{'");
  expect_rejects(st_bytes("{\"a\":" + std::string(200, '[') + std::string(200, ']') + "}"), "nested deeper than 128");
}

TEST(SafeTensors, OpenErrorsNameThePath) {
  TempDir tmp;
  std::string p = tmp.path + "/short.safetensors";
  write_file_atomic(p, "abcd");
  EXPECT_EQ(error_of([&] { SafeTensorsFile::open(p); }),
            p + ": not a safetensors file (4 bytes, shorter than the 8-byte header length)");
  write_file_atomic(p, "");
  EXPECT_NE(error_of([&] { SafeTensorsFile::open(p); }).find(p + ": not a safetensors file (0 bytes"), std::string::npos);
  EXPECT_NE(error_of([&] { SafeTensorsFile::open(tmp.path + "/none"); }).find("cannot open " + tmp.path + "/none"),
            std::string::npos);
  EXPECT_NE(error_of([&] { SafeTensorsFile::open(tmp.path); }).find("not a regular file"), std::string::npos);
}

TEST(SafeTensors, ViewsOutliveTheFileObjectThroughCopiesAndKeepalive) {
  TempDir tmp;
  HostTensor h = filled(DType::F32, {64}, 9);
  write_safetensors(tmp.path + "/a.safetensors", {{"w", h.t}});
  std::shared_ptr<const void> keep;
  Tensor view;
  {
    SafeTensorsFile f = SafeTensorsFile::open(tmp.path + "/a.safetensors");
    keep = f.keepalive();
    view = f.get("w");
  }
  EXPECT_EQ(0, std::memcmp(view.data, h.t.data, h.t.nbytes()));  // ASan would flag an unmapped read
}

TEST(SafeTensors, WriterRejectsBadInput) {
  TempDir tmp;
  HostTensor a(DType::F32, {2, 3});
  std::string p = tmp.path + "/w.safetensors";
  EXPECT_EQ(error_of([&] { write_safetensors(p, {{"x", a.t}, {"x", a.t}}); }), p + ": tensor \"x\" given twice");
  EXPECT_EQ(error_of([&] { write_safetensors(p, {{"__metadata__", a.t}}); }),
            p + ": \"__metadata__\" is reserved, not a tensor name");
  EXPECT_EQ(error_of([&] { write_safetensors(p, {{"bad\xff", a.t}}); }), p + ": a tensor name is not valid UTF-8");
  EXPECT_EQ(error_of([&] { write_safetensors(p, {{"a", a.t}}, {{"k", "\xc0"}}); }),
            p + ": a metadata value is not valid UTF-8");
  Tensor strided = a.t;
  std::swap(strided.stride[0], strided.stride[1]);
  std::swap(strided.shape[0], strided.shape[1]);
  EXPECT_EQ(error_of([&] { write_safetensors(p, {{"t", strided}}); }), p + ": tensor \"t\" is not contiguous");
  Tensor gpu = a.t;
  gpu.device = Device::CUDA;
  EXPECT_NE(error_of([&] { write_safetensors(p, {{"g", gpu}}); }).find("is on cuda"), std::string::npos);
  EXPECT_FALSE(file_exists(p)) << "a failed write must leave nothing behind";
}

TEST(SafeTensors, ShardedWriteAndModelWeightsRead) {
  TempDir tmp;
  std::vector<HostTensor> keep;
  NamedTensors named;
  for (int i = 0; i < 5; ++i) {
    keep.push_back(filled(i % 2 ? DType::BF16 : DType::F32, {4, int64_t(10 + i)}, uint32_t(i)));
  }
  for (int i = 0; i < 5; ++i) named.emplace_back(cat("model.layers.", i, ".w"), keep[i].t);
  // Sizes: 160, 88, 192, 104, 224 bytes; 300-byte shards -> [160, 88] [192, 104] [224].
  std::string dir = tmp.path + "/m";
  write_safetensors_sharded(dir, named, 300);
  EXPECT_FALSE(file_exists(dir + "/model.safetensors"));
  for (const char* f : {"model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                        "model-00003-of-00003.safetensors"})
    EXPECT_TRUE(file_exists(dir + "/" + f)) << f;
  auto index = nlohmann::json::parse(read_file(dir + "/model.safetensors.index.json"));
  EXPECT_EQ(index["metadata"]["total_size"], 160 + 88 + 192 + 104 + 224);
  EXPECT_EQ(index["weight_map"]["model.layers.1.w"], "model-00001-of-00003.safetensors");
  EXPECT_EQ(index["weight_map"]["model.layers.2.w"], "model-00002-of-00003.safetensors");
  EXPECT_EQ(index["weight_map"]["model.layers.4.w"], "model-00003-of-00003.safetensors");

  ModelWeights w = ModelWeights::open(dir);
  EXPECT_EQ(w.files().size(), 3u);
  EXPECT_EQ(w.names().size(), 5u);
  for (int i = 0; i < 5; ++i) {
    std::string name = named[i].first;
    Tensor t = w.get_checked(name, keep[i].t.shape);
    EXPECT_EQ(t.dtype, keep[i].t.dtype);
    std::vector<uint8_t> got(t.nbytes());
    w.read_bytes(name, got.data());
    EXPECT_EQ(0, std::memcmp(got.data(), keep[i].t.data, got.size())) << name;
    std::vector<float> f32(size_t(t.numel())), want(size_t(t.numel()));
    w.read_f32(name, f32.data());
    convert_floats(keep[i].t.data, keep[i].t.dtype, want.data(), DType::F32, want.size());
    EXPECT_EQ(0, std::memcmp(f32.data(), want.data(), want.size() * 4)) << name;
  }
  EXPECT_EQ(error_of([&] { w.get("lm_head.weight"); }), "tensor \"lm_head.weight\" not found in " + dir);
  EXPECT_EQ(error_of([&] { w.get_checked("model.layers.0.w", {10, 4}); }),
            "tensor \"model.layers.0.w\" has shape [4, 10], expected [10, 4] (in " + dir +
                "/model-00001-of-00003.safetensors)");

  // Everything fits: one model.safetensors, and the stale index is gone.
  write_safetensors_sharded(dir, named, 1 << 20);
  EXPECT_TRUE(file_exists(dir + "/model.safetensors"));
  EXPECT_FALSE(file_exists(dir + "/model.safetensors.index.json"));
  ModelWeights w1 = ModelWeights::open(dir);
  EXPECT_EQ(w1.files().size(), 1u);
  EXPECT_EQ(w1.names(), w.names());
}

TEST(SafeTensors, ModelWeightsRejectsBadFolders) {
  TempDir tmp;
  std::string dir = tmp.path;
  EXPECT_EQ(error_of([&] { ModelWeights::open(dir + "/nope"); }),
            "model folder " + dir + "/nope does not exist or is not a folder");
  EXPECT_EQ(error_of([&] { ModelWeights::open(dir); }),
            dir + " holds no model.safetensors or model.safetensors.index.json");

  HostTensor a = filled(DType::F32, {2}, 1);
  write_safetensors(dir + "/s1.safetensors", {{"a", a.t}});
  std::string index = dir + "/model.safetensors.index.json";
  auto with_map = [&](const std::string& wm) { write_file_atomic(index, R"({"metadata":{},"weight_map":)" + wm + "}"); };

  with_map(R"({"a":"s1.safetensors"})");
  EXPECT_EQ(ModelWeights::open(dir).names(), std::vector<std::string>{"a"});
  with_map(R"({"a":"../s1.safetensors"})");
  EXPECT_EQ(error_of([&] { ModelWeights::open(dir); }),
            index + ": weight_map names \"../s1.safetensors\" for tensor \"a\", which is not a file inside the model folder");
  with_map(R"({"a":"/etc/passwd"})");
  EXPECT_NE(error_of([&] { ModelWeights::open(dir); }).find("\"/etc/passwd\" for tensor \"a\", which is not a file inside"),
            std::string::npos);
  with_map(R"({"a":".."})");
  EXPECT_NE(error_of([&] { ModelWeights::open(dir); }).find("not a file inside"), std::string::npos);
  with_map(R"({"a":"s1.safetensors","b":"s1.safetensors"})");
  EXPECT_EQ(error_of([&] { ModelWeights::open(dir); }),
            "tensor \"b\" listed in " + index + " is missing from " + dir + "/s1.safetensors");
  with_map(R"({"a":"s2.safetensors"})");
  EXPECT_EQ(error_of([&] { ModelWeights::open(dir); }), index + ": shard s2.safetensors is missing from " + dir);
  with_map(R"({"a":3})");
  EXPECT_NE(error_of([&] { ModelWeights::open(dir); }).find("weight_map entry for \"a\" is not a file name string"),
            std::string::npos);
  write_file_atomic(index, R"({"metadata":{}})");
  EXPECT_EQ(error_of([&] { ModelWeights::open(dir); }), index + ": no \"weight_map\" object");
  write_file_atomic(index, R"({"weight_map":{"a":"s1.safetensors","a":"s1.safetensors"}})");
  EXPECT_NE(error_of([&] { ModelWeights::open(dir); }).find("duplicate key \"a\""), std::string::npos);
  write_file_atomic(index, "{");
  EXPECT_NE(error_of([&] { ModelWeights::open(dir); }).find(index + ": invalid JSON"), std::string::npos);

  // A corrupt shard's error names the shard.
  write_file_atomic(dir + "/s1.safetensors", "xx");
  with_map(R"({"a":"s1.safetensors"})");
  EXPECT_NE(error_of([&] { ModelWeights::open(dir); }).find(dir + "/s1.safetensors: not a safetensors file"),
            std::string::npos);
}
