// What to say about command-line words the parser did not expect: the flag an unknown one most
// likely meant (a typo, the config file's spelling with '_', a name other tools use), a boolean's
// value given after a space, and values that follow no flag (masked: they can be URLs with
// passwords).
#pragma once
#include <string>
#include <vector>

namespace outbox {

struct KnownFlag {
  std::string name;  // without the leading "--"
  bool boolean = false;
  std::string what;  // a few words for the suggestion, "" for none
};

// The known flag that `name` (without dashes or "=value") most likely meant, or nullptr.
const KnownFlag* nearest_flag(const std::string& name, const std::vector<KnownFlag>& flags);

// The message for the words of `args` (argv without the program) that CLI11 reported as not
// expected (`extras`, in any order).
std::string explain_unexpected(const std::vector<std::string>& args, const std::vector<std::string>& extras,
                               const std::vector<KnownFlag>& flags);

}  // namespace outbox
