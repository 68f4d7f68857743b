#include "support/settings.h"

#include <cctype>

#include "support/mask.h"

namespace outbox {

namespace {

bool parse_bool(const std::string& v, bool& out) {
  std::string l;
  for (char c : v) l += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (l == "1" || l == "true" || l == "yes" || l == "on") return out = true, true;
  if (l == "0" || l == "false" || l == "no" || l == "off" || l.empty()) return out = false, true;
  return false;
}

int to_int(const Setting& row, const std::string& v, const std::string& source) {
  try {
    std::size_t pos = 0;
    long long x = std::stoll(v, &pos);
    if (pos != v.size() || x < row.min || x > row.max) throw std::out_of_range("range");
    return static_cast<int>(x);
  } catch (const std::exception&) {
    throw ConfigError("setting " + row.name + " (from " + source + "): \"" + v + "\" is not an integer from " +
                      std::to_string(row.min) + " to " + std::to_string(row.max) + row.unit + "; fix the value of --" +
                      row.name);
  }
}

void check_one_of(const Setting& row, const std::string& v, const std::string& source) {
  for (const std::string& c : row.choices)
    if (v == c) return;
  throw ConfigError("setting " + row.name + " (from " + source + "): \"" + v + "\" must be " + or_list(row.choices));
}

// An empty text gives no URLs (the sink is not configured).
std::vector<std::string> to_urls(const Setting& row, const std::string& text, const std::string& source) {
  std::vector<std::string> urls;
  if (text.empty()) return urls;
  urls = split_url_list(text);
  for (const std::string& u : urls) {
    bool ok = false;
    for (const std::string& sch : row.choices) ok = ok || (u.rfind(sch, 0) == 0 && u.size() > sch.size());
    if (!ok) {
      throw ConfigError("setting " + row.name + " (from " + source + "): \"" + mask_url(u) + "\" is not a " +
                        join(row.choices, " or ") +
                        " URL" + (u.empty() ? " (an empty entry: separate URLs by single commas)" : ""));
    }
  }
  return urls;
}

Setting row(std::string name, SettingType type, std::string def, std::string help,
            std::vector<std::string> choices = {}, SettingCheck check = nullptr) {
  Setting s;
  s.name = std::move(name);
  s.type = type;
  s.def = std::move(def);
  s.help = std::move(help);
  s.choices = std::move(choices);
  s.check = check;
  return s;
}

}  // namespace

Setting text_setting(std::string name, std::string def, std::string help, SettingCheck check) {
  return row(std::move(name), SettingType::Text, std::move(def), std::move(help), {}, check);
}

Setting integer_setting(std::string name, std::string def, long long min, long long max, std::string help,
                        std::string unit) {
  Setting s = row(std::move(name), SettingType::Integer, std::move(def), std::move(help));
  s.min = min;
  s.max = max;
  s.unit = std::move(unit);
  return s;
}

Setting boolean_setting(std::string name, std::string def, std::string help) {
  return row(std::move(name), SettingType::Boolean, std::move(def), std::move(help));
}

Setting one_of_setting(std::string name, std::string def, std::vector<std::string> choices, std::string help,
                       SettingCheck check) {
  return row(std::move(name), SettingType::OneOf, std::move(def), std::move(help), std::move(choices), check);
}

Setting url_list_setting(std::string name, std::string def, std::vector<std::string> schemes, std::string help,
                         SettingCheck check) {
  return row(std::move(name), SettingType::UrlList, std::move(def), std::move(help), std::move(schemes), check);
}

std::vector<Setting> owned_by(const std::string& kind, std::vector<Setting> rows) {
  for (Setting& s : rows) s.owner = kind;
  return rows;
}

void SettingValues::set(const Setting& row, std::string text, std::string source) {
  Value v;
  switch (row.type) {
    case SettingType::Text:
      if (row.check) row.check(row, text, source);
      break;
    case SettingType::Integer:
      v.number = to_int(row, text, source);
      break;
    case SettingType::Boolean:
      if (!parse_bool(text, v.flag))
        throw ConfigError("setting " + row.name + " (from " + source + "): \"" + text +
                          "\" is not a boolean (true/false, 1/0, yes/no, on/off)");
      break;
    case SettingType::OneOf:
      (row.check ? row.check : check_one_of)(row, text, source);
      break;
    case SettingType::UrlList:
      if (row.check) {
        row.check(row, text, source);
        v.urls = text.empty() ? std::vector<std::string>{} : split_url_list(text);
      } else {
        v.urls = to_urls(row, text, source);
      }
      break;
  }
  v.text = std::move(text);
  v.source = std::move(source);
  values_[row.name] = std::move(v);
}

const SettingValues::Value& SettingValues::at(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) throw std::logic_error("no setting " + name + " was loaded");
  return it->second;
}

const std::string& SettingValues::text(const std::string& name) const { return at(name).text; }
int SettingValues::integer(const std::string& name) const { return at(name).number; }
bool SettingValues::boolean(const std::string& name) const { return at(name).flag; }
const std::vector<std::string>& SettingValues::urls(const std::string& name) const { return at(name).urls; }
const std::string& SettingValues::source(const std::string& name) const { return at(name).source; }

void SettingValues::set_table(const std::string& key, std::any parsed, bool given) {
  tables_[key] = Table{std::move(parsed), given};
}

const SettingValues::Table& SettingValues::table_at(const std::string& key) const {
  auto it = tables_.find(key);
  if (it == tables_.end()) throw std::logic_error("no table " + key + " was parsed");
  return it->second;
}

std::vector<std::string> split_url_list(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    std::size_t comma = text.find(',', start);
    std::string part = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    auto b = part.find_first_not_of(" \t");
    auto e = part.find_last_not_of(" \t");
    out.push_back(b == std::string::npos ? "" : part.substr(b, e - b + 1));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string or_list(const std::vector<std::string>& items) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i)
    out += (i == 0 ? "" : i + 1 == items.size() ? " or " : ", ") + items[i];
  return out;
}

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (const std::string& i : items) out += (out.empty() ? "" : separator) + i;
  return out;
}

// A key's contents given where its path belongs would be echoed by every error about the file.
void check_key_path(const Setting& row, const std::string& value, const std::string& source) {
  if (value.find('\n') != std::string::npos || value.find("-----BEGIN") != std::string::npos)
    throw ConfigError("setting " + row.name + " (from " + source + ") holds a key's contents, not the "
                      "path of its file -- fix: write the key to a file only the relay can read and give its path");
}

}  // namespace outbox
