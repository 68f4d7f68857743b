#include "support/toml_table.h"

#include <sstream>

namespace outbox {

std::string toml_line(const std::string& file, const toml::node& n) {
  std::ostringstream os;
  os << "config file " << file << " line " << n.source().begin.line << ": ";
  return os.str();
}

const char* toml_type_name(const toml::node& n) {
  if (n.is_string()) return "a string";
  if (n.is_integer()) return "an integer";
  if (n.is_floating_point()) return "a float";
  if (n.is_boolean()) return "a boolean";
  if (n.is_array()) return "an array";
  if (n.is_table()) return "a table";
  return "a date or time";
}

TomlEntry::TomlEntry(const toml::table& t, std::string file, std::string what, std::vector<const char*> keys)
    : t_(t), file_(std::move(file)), what_(std::move(what)) {
  for (auto& [k, v] : t_) {
    std::string key(k.str());
    bool known = false;
    for (const char* kk : keys) known = known || key == kk;
    if (!known) {
      std::string list;
      for (const char* kk : keys) list += std::string(list.empty() ? "" : ", ") + kk;
      throw ConfigError(toml_line(file_, v) + what_ + " has an unknown key \"" + key + "\" (known: " + list + ")");
    }
  }
}

std::string TomlEntry::str(const char* key, std::string def) const {
  const toml::node* n = t_.get(key);
  if (!n) return def;
  if (auto s = n->as_string()) return s->get();
  throw wrong(*n, key, "a string");
}

bool TomlEntry::boolean(const char* key, bool def) const {
  const toml::node* n = t_.get(key);
  if (!n) return def;
  if (auto b = n->as_boolean()) return b->get();
  throw wrong(*n, key, "true or false (without quotes)");
}

std::optional<std::int64_t> TomlEntry::integer(const char* key) const {
  const toml::node* n = t_.get(key);
  if (!n) return std::nullopt;
  auto i = n->as_integer();
  if (!i || i->get() < 0) throw wrong(*n, key, "an integer >= 0 (without quotes)");
  return i->get();
}

void TomlEntry::one_of(const char* key, const std::string& v, std::vector<const char*> allowed, bool x_ok) const {
  if (v.empty() || (x_ok && v.rfind("x-", 0) == 0)) return;
  std::string list;
  for (const char* a : allowed) {
    if (v == a) return;
    list += std::string(list.empty() ? "" : ", ") + a;
  }
  throw ConfigError(line_of(key) + what_ + " " + key + " = \"" + v + "\" is not one of " + list);
}

std::string TomlEntry::line_of(const char* key) const {
  const toml::node* n = t_.get(key);
  return n ? toml_line(file_, *n) : toml_line(file_, t_);
}

ConfigError TomlEntry::wrong(const toml::node& n, const char* key, const char* want) const {
  return ConfigError(toml_line(file_, n) + what_ + " " + key + " is " + toml_type_name(n) + "; it must be " + want);
}

std::vector<const toml::table*> toml_entries(const toml::table& parent, const char* name, const std::string& file) {
  std::vector<const toml::table*> out;
  const toml::node* n = parent.get(name);
  if (!n) return out;
  const toml::array* arr = n->as_array();
  if (!arr)
    throw ConfigError(toml_line(file, *n) + "topology." + name + " is " + toml_type_name(*n) +
                      "; write each one as [[topology." + name + "]]");
  for (const toml::node& e : *arr) {
    const toml::table* t = e.as_table();
    if (!t)
      throw ConfigError(toml_line(file, e) + "an entry of topology." + name + " is " + toml_type_name(e) +
                        "; write each one as [[topology." + name + "]]");
    out.push_back(t);
  }
  return out;
}

}  // namespace outbox
