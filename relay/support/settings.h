// The relay's settings as one table of rows. A row says everything about a setting (name, type,
// default, help, validation, which sink reads it); ops/config.cpp derives from the rows the flags,
// the environment variables, the keys of the TOML file, --help, the precedence and the warnings
// about settings nothing reads. The core declares its rows in ops/config.cpp, each broker its own
// in sinks/<broker>/settings.cpp, and the values reach both through SettingValues.
#pragma once
#include <any>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace outbox {

// A setting's value, or the settings file, is wrong: the message names the setting, where its
// value came from and the fix.
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class SettingType {
  Text,
  Integer,  // from min to max
  Boolean,  // true/false, 1/0, yes/no, on/off; a flag that takes an optional value
  UrlList,  // URLs separated by commas, each of one of the schemes in `choices`
  OneOf,    // one of `choices`
};

struct Setting;
// A named check of a value that its type does not cover (a slot name, an address:port, ...).
// Throws ConfigError; `source` is where the value came from ("flag --slot", "env ...", ...).
using SettingCheck = void (*)(const Setting& row, const std::string& value, const std::string& source);

struct Setting {
  std::string name;  // the flag without "--"; the file's key with '-' or '_'
  SettingType type = SettingType::Text;
  std::string def;
  std::string help;
  std::string owner;  // the sink kind that reads it; "" = the core

  // Validation: Integer: the range (and the unit said after it in errors); OneOf: the values;
  // UrlList: the schemes. A check, when given, replaces the test of the choices (and may use them
  // in its message); for Text it is the whole validation.
  long long min = 0, max = 1000000000;
  std::string unit;
  std::vector<std::string> choices;
  SettingCheck check = nullptr;

  // UrlList only: the flag may be repeated and the file may give an array.
  bool repeatable = false;
  // An environment variable read when neither a flag, OUTBOX_RELAY_*, nor the file gives it.
  std::string fallback_env;
  // Another setting that is given with this one or not at all (a certificate and its key).
  std::string pair;
  // Read only when a URL of the owner's server has this scheme (TLS files): given without one,
  // it is reported as ignored.
  std::string tls_scheme;

  Setting& repeated() { return repeatable = true, *this; }
  Setting& falls_back_to(std::string env) { return fallback_env = std::move(env), *this; }
  Setting& together_with(std::string other) { return pair = std::move(other), *this; }
  Setting& only_with(std::string scheme) { return tls_scheme = std::move(scheme), *this; }
};

Setting text_setting(std::string name, std::string def, std::string help, SettingCheck check = nullptr);
Setting integer_setting(std::string name, std::string def, long long min, long long max, std::string help,
                        std::string unit = "");
Setting boolean_setting(std::string name, std::string def, std::string help);
Setting one_of_setting(std::string name, std::string def, std::vector<std::string> choices, std::string help,
                       SettingCheck check = nullptr);
Setting url_list_setting(std::string name, std::string def, std::vector<std::string> schemes, std::string help,
                         SettingCheck check = nullptr);
// The rows of one sink kind, each marked as read by it.
std::vector<Setting> owned_by(const std::string& kind, std::vector<Setting> rows);

// The checked, typed values of every row, and what the sinks parsed from their own tables of the
// settings file. Reading a name no row declares is a bug: std::logic_error.
class SettingValues {
 public:
  // Converts and checks `text` by the row (throws ConfigError with the row's message).
  void set(const Setting& row, std::string text, std::string source);
  const std::string& text(const std::string& name) const;
  int integer(const std::string& name) const;
  bool boolean(const std::string& name) const;
  const std::vector<std::string>& urls(const std::string& name) const;
  // "flag --NAME" | "env OUTBOX_RELAY_NAME" | "file F" | "default" (or "env <fallback>").
  const std::string& source(const std::string& name) const;
  bool given(const std::string& name) const { return source(name) != "default"; }

  // A sink's table of the settings file ([topology], ...), as its parser made it; `given`: the
  // file gave something in it.
  void set_table(const std::string& key, std::any parsed, bool given);
  template <class T>
  const T& table(const std::string& key) const {
    return std::any_cast<const T&>(table_at(key).parsed);
  }
  bool table_given(const std::string& key) const { return table_at(key).given; }

 private:
  struct Value {
    std::string text, source;
    int number = 0;
    bool flag = false;
    std::vector<std::string> urls;
  };
  struct Table {
    std::any parsed;
    bool given = false;
  };
  const Value& at(const std::string& name) const;
  const Table& table_at(const std::string& key) const;
  std::map<std::string, Value> values_;
  std::map<std::string, Table> tables_;
};

// "a, b,c" -> {"a", "b", "c"} (spaces around each URL dropped; empty entries kept as "" so that
// the caller can name them).
std::vector<std::string> split_url_list(const std::string& text);

// "a", "a or b", "a, b or c".
std::string or_list(const std::vector<std::string>& items);
// {"a", "b"}, ", " -> "a, b".
std::string join(const std::vector<std::string>& items, const std::string& separator);

// Checks for the TLS key of any sink: the path of a file, not the key itself.
void check_key_path(const Setting& row, const std::string& value, const std::string& source);

}  // namespace outbox
