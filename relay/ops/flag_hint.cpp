#include "ops/flag_hint.h"

#include <algorithm>
#include <cctype>
#include <cstddef>

#include "support/mask.h"

namespace outbox {

namespace {

// Names other tools (psql, pg_recvlogical, Debezium, AMQP clients) give the same thing.
struct Alias {
  const char* other;
  const char* flag;
};
constexpr Alias kAliases[] = {
    {"database", "pg"},     {"dbname", "pg"},       {"db", "pg"},           {"dsn", "pg"},
    {"conninfo", "pg"},     {"postgres", "pg"},     {"postgresql", "pg"},   {"pg-url", "pg"},
    {"pg-uri", "pg"},       {"connection", "pg"},   {"slot-name", "slot"},  {"dry-run", "check"},
    {"verbose", "log-level"}, {"debug", "log-level"}, {"rabbitmq", "amqp"}, {"rabbitmq-url", "amqp"},
    {"amqp-url", "amqp"},   {"nats-url", "nats"},   {"redis-url", "redis"}, {"sink", "default-sink"},
};

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::vector<std::string> words(const std::string& name) {
  std::vector<std::string> out(1);
  for (char c : name) {
    if (c == '-') out.emplace_back();
    else out.back() += c;
  }
  return out;
}

// Every word of `name`, in order, is a word of `flag` ("nats-prefix" in "nats-subject-prefix").
bool words_within(const std::string& name, const std::string& flag) {
  std::vector<std::string> want = words(name), have = words(flag);
  std::size_t at = 0;
  for (const std::string& w : want) {
    while (at < have.size() && have[at] != w) ++at;
    if (at++ >= have.size()) return false;
  }
  return want.size() > 1;
}

const KnownFlag* find(const std::string& name, const std::vector<KnownFlag>& flags) {
  for (const KnownFlag& f : flags)
    if (f.name == name) return &f;
  return nullptr;
}

bool is_flag(const std::string& word) { return word.size() > 1 && word[0] == '-'; }

std::string flag_name(const std::string& word) {
  std::size_t start = word.find_first_not_of('-');
  if (start == std::string::npos) return "";  // "---": no name at all
  std::string n = word.substr(start);
  return n.substr(0, n.find('='));
}

bool is_boolean_word(const std::string& w) {
  for (const char* b : {"true", "false", "1", "0", "yes", "no", "on", "off"})
    if (w == b) return true;
  return false;
}

std::string about_flag(const std::string& word, const std::vector<KnownFlag>& flags) {
  std::string name = flag_name(word);
  // A flag glued to its value (--amqpamqps://u:pw@h/) carries the secret in its "name".
  std::string out = "unknown flag --" + mask_text(name);
  const KnownFlag* f = nearest_flag(name, flags);
  if (!f) return out;
  out += " -- did you mean --" + f->name + (f->what.empty() ? "" : " (" + f->what + ")") + "?";
  std::string dashed = name;
  std::replace(dashed.begin(), dashed.end(), '_', '-');
  if (dashed != name && dashed == f->name)
    out += " Flags are written with '-'; the config file takes " + name + " or " + f->name;
  return out;
}

}  // namespace

const KnownFlag* nearest_flag(const std::string& name, const std::vector<KnownFlag>& flags) {
  std::string n = name;
  std::transform(n.begin(), n.end(), n.begin(), [](char c) { return c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });
  if (const KnownFlag* f = find(n, flags)) return f;
  for (const Alias& a : kAliases)
    if (n == a.other) return find(a.flag, flags);
  // A typo: the closest name, if it is close for its length ("slott", "max-in-flite").
  const KnownFlag* best = nullptr;
  std::size_t best_d = std::max<std::size_t>(1, std::min<std::size_t>(4, n.size() / 3)) + 1;
  for (const KnownFlag& f : flags) {
    std::size_t d = edit_distance(n, f.name);
    if (d < best_d) best = &f, best_d = d;
  }
  if (best) return best;
  // A word left out ("nats-prefix") or the start of one ("heart"): the shortest such flag.
  for (const KnownFlag& f : flags)
    if (words_within(n, f.name) || (n.size() >= 4 && f.name.rfind(n, 0) == 0))
      if (!best || f.name.size() < best->name.size()) best = &f;
  return best;
}

std::string explain_unexpected(const std::vector<std::string>& args, const std::vector<std::string>& extras,
                               const std::vector<KnownFlag>& flags) {
  std::vector<std::string> parts;
  std::vector<bool> told(args.size(), false);
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& w = args[i];
    if (told[i] || std::find(extras.begin(), extras.end(), w) == extras.end()) continue;
    told[i] = true;
    if (is_flag(w)) {
      parts.push_back(about_flag(w, flags));
      // Its value, if it took one, belongs to the same mistake.
      if (w.find('=') == std::string::npos && i + 1 < args.size() && !is_flag(args[i + 1])) told[i + 1] = true;
      continue;
    }
    const KnownFlag* before = i > 0 && is_flag(args[i - 1]) && args[i - 1].find('=') == std::string::npos
                                  ? find(flag_name(args[i - 1]), flags)
                                  : nullptr;
    if (before && before->boolean && is_boolean_word(w))
      parts.push_back("\"" + w + "\" follows --" + before->name + ", a boolean flag, which takes its value with '=': --" +
                      before->name + "=" + w);
    else
      parts.push_back("\"" + mask_text(w) + "\" was not expected: it follows no flag that takes a value (give it as --NAME VALUE)");
  }
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out + " (see outbox-relay --help)";
}

}  // namespace outbox
