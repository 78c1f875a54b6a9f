// File helpers with errors that name the path.
#pragma once
#include <string>
#include <string_view>

namespace brisk {

std::string read_file(const std::string& path);  // whole file; throws brisk::Error
bool file_exists(const std::string& path);
bool dir_exists(const std::string& path);
std::string path_join(std::string_view a, std::string_view b);
// Writes to "<path>.tmp-<pid>", fsyncs, renames over path: readers never see a partial file.
void write_file_atomic(const std::string& path, std::string_view data);
void make_dirs(const std::string& path);  // mkdir -p; throws with the path on failure

}  // namespace brisk
