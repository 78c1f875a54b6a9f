// Small typed accessors over nlohmann::json for reading tokenizer.json, so every malformed
// field becomes one brisk::Error naming the component and key instead of a json exception.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace brisk::text::json_util {

using nlohmann::json;

inline const json& field(const json& obj, const char* key, const std::string& where) {
  BRISK_CHECK(obj.is_object(), where, " must be a JSON object");
  auto it = obj.find(key);
  BRISK_CHECK(it != obj.end(), where, " is missing \"", key, "\"");
  return *it;
}
inline std::string get_string(const json& obj, const char* key, const std::string& where) {
  const json& v = field(obj, key, where);
  BRISK_CHECK(v.is_string(), where, ".", key, " must be a string");
  return v.get<std::string>();
}
inline bool get_bool(const json& obj, const char* key, const std::string& where, bool fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  BRISK_CHECK(it->is_boolean(), where, ".", key, " must be true or false");
  return it->get<bool>();
}
inline int64_t get_int(const json& obj, const char* key, const std::string& where) {
  const json& v = field(obj, key, where);
  BRISK_CHECK(v.is_number_integer(), where, ".", key, " must be an integer");
  return v.get<int64_t>();
}
inline std::string type_of(const json& obj, const std::string& where) { return get_string(obj, "type", where); }

}  // namespace brisk::text::json_util
