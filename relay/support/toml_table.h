// Reading a table of the settings file ([topology], [[routes]], [[jetstream.streams]], ...):
// every key must be known and of its type, and a mistake is reported with the file's line (a
// typo such as `typ = "fanout"` silently made a topic exchange).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "support/settings.h"

namespace outbox {

// "config file F line N: " for a node of the file.
std::string toml_line(const std::string& file, const toml::node& n);

// "a string", "an integer", ...: what a node is, for messages.
const char* toml_type_name(const toml::node& n);

// One entry of an array of tables (one [[topology.exchanges]], one [[routes]], ...).
class TomlEntry {
 public:
  // Throws unless every key of `t` is one of `keys`; `what` names the entry in messages.
  TomlEntry(const toml::table& t, std::string file, std::string what, std::vector<const char*> keys);
  std::string str(const char* key, std::string def = {}) const;
  bool boolean(const char* key, bool def) const;
  std::optional<std::int64_t> integer(const char* key) const;  // >= 0
  // The key's value must be one of `allowed` (or, with `x_ok`, a plugin's x-... name).
  void one_of(const char* key, const std::string& v, std::vector<const char*> allowed, bool x_ok = false) const;
  std::string line_of(const char* key) const;
  const std::string& what() const { return what_; }

 private:
  ConfigError wrong(const toml::node& n, const char* key, const char* want) const;
  const toml::table& t_;
  std::string file_, what_;
};

// The entries of the array of tables `name` inside `parent` (none when absent), or an error with
// the line. The error calls the array topology.<name> whatever its parent ([[routes]] and
// [[jetstream.streams]] included), as the relay always has.
std::vector<const toml::table*> toml_entries(const toml::table& parent, const char* name, const std::string& file);

}  // namespace outbox
