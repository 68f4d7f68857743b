#include "line_encoding.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>

namespace outbox {

namespace {

// PostgreSQL's server encodings (pg_wchar.h, up to PG_ENCODING_BE_LAST) and glibc's names for
// them. UTF8 and SQL_ASCII need no conversion; MULE_INTERNAL has no iconv equivalent.
// BIG5, GBK, UHC, SJIS, JOHAB, GB18030 and SHIFT_JIS_2004 are client-only encodings.
struct Name {
  const char* pg;
  const char* iconv;
};
constexpr Name kNames[] = {
    {"LATIN1", "ISO-8859-1"},   {"LATIN2", "ISO-8859-2"},    {"LATIN3", "ISO-8859-3"},
    {"LATIN4", "ISO-8859-4"},   {"LATIN5", "ISO-8859-9"},    {"LATIN6", "ISO-8859-10"},
    {"LATIN7", "ISO-8859-13"},  {"LATIN8", "ISO-8859-14"},   {"LATIN9", "ISO-8859-15"},
    {"LATIN10", "ISO-8859-16"}, {"ISO_8859_5", "ISO-8859-5"}, {"ISO_8859_6", "ISO-8859-6"},
    {"ISO_8859_7", "ISO-8859-7"}, {"ISO_8859_8", "ISO-8859-8"}, {"WIN1250", "CP1250"},
    {"WIN1251", "CP1251"},      {"WIN1252", "CP1252"},       {"WIN1253", "CP1253"},
    {"WIN1254", "CP1254"},      {"WIN1255", "CP1255"},       {"WIN1256", "CP1256"},
    {"WIN1257", "CP1257"},      {"WIN1258", "CP1258"},       {"WIN866", "CP866"},
    {"WIN874", "CP874"},        {"KOI8R", "KOI8-R"},         {"KOI8U", "KOI8-U"},
    {"EUC_JP", "EUC-JP"},       {"EUC_CN", "EUC-CN"},        {"EUC_KR", "EUC-KR"},
    {"EUC_TW", "EUC-TW"},       {"EUC_JIS_2004", "EUC-JISX0213"},
};

bool ascii(std::string_view s) {
  for (unsigned char c : s)
    if (c >= 0x80) return false;
  return true;
}

}  // namespace

LineEncoding::~LineEncoding() { close(); }

void LineEncoding::close() {
  if (cd_ != invalid()) iconv_close(cd_);
  cd_ = invalid();
}

const char* LineEncoding::iconv_name(std::string_view server_encoding) {
  for (const Name& n : kNames)
    if (server_encoding == n.pg) return n.iconv;
  return nullptr;
}

std::string LineEncoding::use(const std::string& server_encoding) {
  close();
  server_encoding_ = server_encoding;
  if (server_encoding == "UTF8" || server_encoding == "SQL_ASCII") return "";
  const char* name = iconv_name(server_encoding);
  if (!name)
    return "the database's encoding is " + server_encoding +
           ", which outbox-relay cannot convert to UTF-8 (it has no iconv equivalent) -- fix: use a database "
           "encoded in UTF8 (CREATE DATABASE ... ENCODING 'UTF8') or another server encoding";
  cd_ = iconv_open("UTF-8", name);
  if (cd_ == invalid())
    return "the database's encoding is " + server_encoding + ", and this system's iconv cannot convert " + name +
           " to UTF-8 -- fix: install the iconv conversion modules (glibc's gconv), or use a UTF8 database";
  return "";
}

bool LineEncoding::to_utf8(std::string_view line, std::string_view& utf8, std::string& why) {
  if (!converts() || ascii(line)) {
    utf8 = line;
    return true;
  }
  // Every server encoding maps one byte to at most 3 UTF-8 bytes, and longer sequences to no
  // more bytes than they have; E2BIG grows the buffer all the same.
  if (buf_.size() < line.size() * 3 + 16) buf_.resize(line.size() * 3 + 16);
  iconv(cd_, nullptr, nullptr, nullptr, nullptr);
  char* in = const_cast<char*>(line.data());
  std::size_t in_left = line.size();
  std::size_t done = 0;
  while (true) {
    char* out = buf_.data() + done;
    std::size_t out_left = buf_.size() - done;
    // Once the input is consumed, flush what a stateful decoder still holds (glibc's CP1258
    // keeps a base letter back in case a combining mark follows).
    bool flush = in_left == 0;
    std::size_t r = flush ? iconv(cd_, nullptr, nullptr, &out, &out_left) : iconv(cd_, &in, &in_left, &out, &out_left);
    int err = errno;
    done = static_cast<std::size_t>(out - buf_.data());
    if (r != static_cast<std::size_t>(-1)) {
      if (flush) break;
      continue;
    }
    if (err == E2BIG) {
      buf_.resize(buf_.size() * 2);
      continue;
    }
    std::size_t at = std::min(line.size() - in_left, line.size() - 1);
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned char>(line[at]));
    why = err == EINVAL ? "the line ends inside a " + server_encoding_ + " character (at byte " +
                              std::to_string(at) + ")"
                        : "byte " + std::string(hex) + " at " + std::to_string(at) + " of the line is not a " +
                              server_encoding_ + " character with a UTF-8 equivalent";
    return false;
  }
  utf8 = std::string_view(buf_.data(), done);
  return true;
}

}  // namespace outbox
