#include "source/line_encoding.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace outbox {

namespace {

// PostgreSQL's server encodings (pg_wchar.h, up to PG_ENCODING_BE_LAST) and glibc's names for
// them. UTF8 and SQL_ASCII need no conversion; MULE_INTERNAL has no iconv equivalent.
// BIG5, GBK, UHC, SJIS, JOHAB, GB18030 and SHIFT_JIS_2004 are client-only encodings.
struct Name {
  const char* pg;
  const char* iconv;
  bool multibyte;
};
constexpr Name kNames[] = {
    {"LATIN1", "ISO-8859-1", false},   {"LATIN2", "ISO-8859-2", false},    {"LATIN3", "ISO-8859-3", false},
    {"LATIN4", "ISO-8859-4", false},   {"LATIN5", "ISO-8859-9", false},    {"LATIN6", "ISO-8859-10", false},
    {"LATIN7", "ISO-8859-13", false},  {"LATIN8", "ISO-8859-14", false},   {"LATIN9", "ISO-8859-15", false},
    {"LATIN10", "ISO-8859-16", false}, {"ISO_8859_5", "ISO-8859-5", false}, {"ISO_8859_6", "ISO-8859-6", false},
    {"ISO_8859_7", "ISO-8859-7", false}, {"ISO_8859_8", "ISO-8859-8", false}, {"WIN1250", "CP1250", false},
    {"WIN1251", "CP1251", false},      {"WIN1252", "CP1252", false},       {"WIN1253", "CP1253", false},
    {"WIN1254", "CP1254", false},      {"WIN1255", "CP1255", false},       {"WIN1256", "CP1256", false},
    {"WIN1257", "CP1257", false},      {"WIN1258", "CP1258", false},       {"WIN866", "CP866", false},
    {"WIN874", "CP874", false},        {"KOI8R", "KOI8-R", false},         {"KOI8U", "KOI8-U", false},
    {"EUC_JP", "EUC-JP-MS", true},     {"EUC_CN", "EUC-CN", true},         {"EUC_KR", "EUC-KR", true},
    {"EUC_TW", "EUC-TW", true},        {"EUC_JIS_2004", "EUC-JISX0213", true},
};

const Name* find(std::string_view server_encoding) {
  for (const Name& n : kNames)
    if (server_encoding == n.pg) return &n;
  return nullptr;
}

// Eight bytes at a time: most lines of a busy outbox are ASCII (B/C lines, ASCII events).
bool ascii(std::string_view s) {
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    if (w & 0x8080808080808080ULL) return false;
  }
  for (; i < s.size(); ++i)
    if (static_cast<unsigned char>(s[i]) >= 0x80) return false;
  return true;
}

std::string hex_byte(unsigned char c) {
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%02x", c);
  return hex;
}

}  // namespace

LineEncoding::~LineEncoding() { close(); }

void LineEncoding::close() {
  if (cd_ != invalid()) iconv_close(cd_);
  cd_ = invalid();
  single_byte_ = false;
}

const char* LineEncoding::iconv_name(std::string_view server_encoding) {
  const Name* n = find(server_encoding);
  return n ? n->iconv : nullptr;
}

std::string LineEncoding::use(const std::string& server_encoding) {
  close();
  server_encoding_ = server_encoding;
  if (server_encoding == "UTF8" || server_encoding == "SQL_ASCII") return "";
  const Name* name = find(server_encoding);
  if (!name)
    return "the database's encoding is " + server_encoding +
           ", which outbox-relay cannot convert to UTF-8 (it has no iconv equivalent) -- fix: use a database "
           "encoded in UTF8 (CREATE DATABASE ... ENCODING 'UTF8') or another server encoding";
  cd_ = iconv_open("UTF-8", name->iconv);
  if (cd_ == invalid())
    return "the database's encoding is " + server_encoding + ", and this system's iconv cannot convert " +
           name->iconv + " to UTF-8 -- fix: install the iconv conversion modules (glibc's gconv), or use a UTF8 database";
  if (name->multibyte) return "";
  for (int b = 0x80; b <= 0xff; ++b) {
    char in_byte = static_cast<char>(b);
    char* in = &in_byte;
    std::size_t in_left = 1;
    Utf8Char& u = upper_[b - 0x80];
    char* out = u.bytes;
    std::size_t out_left = sizeof u.bytes;
    iconv(cd_, nullptr, nullptr, nullptr, nullptr);
    bool ok = iconv(cd_, &in, &in_left, &out, &out_left) != static_cast<std::size_t>(-1) &&
              iconv(cd_, nullptr, nullptr, &out, &out_left) != static_cast<std::size_t>(-1);
    u.len = ok ? static_cast<unsigned char>(out - u.bytes) : 0;
  }
  iconv_close(cd_);
  cd_ = invalid();
  single_byte_ = true;
  return "";
}

bool LineEncoding::to_utf8(std::string_view line, std::string_view& utf8, std::string& why) {
  if (!converts() || ascii(line)) {
    utf8 = line;
    return true;
  }
  // Every server encoding maps one byte to at most 3 UTF-8 bytes, and longer sequences to no
  // more bytes than they have.
  if (buf_.size() < line.size() * 3 + 16) buf_.resize(line.size() * 3 + 16);
  return single_byte_ ? by_table(line, utf8, why) : by_iconv(line, utf8, why);
}

bool LineEncoding::by_table(std::string_view line, std::string_view& utf8, std::string& why) {
  char* out = buf_.data();
  for (std::size_t i = 0; i < line.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(line[i]);
    if (c < 0x80) {
      *out++ = static_cast<char>(c);
      continue;
    }
    const Utf8Char& u = upper_[c - 0x80];
    if (u.len == 0) {
      why = "byte " + hex_byte(c) + " at " + std::to_string(i) + " of the line is not a " + server_encoding_ +
            " character with a UTF-8 equivalent";
      return false;
    }
    std::memcpy(out, u.bytes, u.len);
    out += u.len;
  }
  utf8 = std::string_view(buf_.data(), static_cast<std::size_t>(out - buf_.data()));
  return true;
}

bool LineEncoding::by_iconv(std::string_view line, std::string_view& utf8, std::string& why) {
  iconv(cd_, nullptr, nullptr, nullptr, nullptr);
  char* in = const_cast<char*>(line.data());
  std::size_t in_left = line.size();
  std::size_t done = 0;
  while (true) {
    char* out = buf_.data() + done;
    std::size_t out_left = buf_.size() - done;
    // Once the input is consumed, flush what a stateful decoder may still hold.
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
    why = err == EINVAL ? "the line ends inside a " + server_encoding_ + " character (at byte " +
                              std::to_string(at) + ")"
                        : "byte " + hex_byte(static_cast<unsigned char>(line[at])) + " at " + std::to_string(at) +
                              " of the line is not a " + server_encoding_ + " character with a UTF-8 equivalent";
    return false;
  }
  if (server_encoding_ == "EUC_JIS_2004") fix_jis_2004(done);
  utf8 = std::string_view(buf_.data(), done);
  return true;
}

// U+FFE3 -> U+203E and U+FFE5 -> U+00A5, in place (see the header).
void LineEncoding::fix_jis_2004(std::size_t& len) {
  char* b = buf_.data();
  std::size_t w = 0;
  for (std::size_t r = 0; r < len;) {
    if (r + 2 < len && b[r] == '\xef' && b[r + 1] == '\xbf' && (b[r + 2] == '\xa3' || b[r + 2] == '\xa5')) {
      if (b[r + 2] == '\xa3') {
        b[w++] = '\xe2', b[w++] = '\x80', b[w++] = '\xbe';
      } else {
        b[w++] = '\xc2', b[w++] = '\xa5';
      }
      r += 3;
    } else {
      b[w++] = b[r++];
    }
  }
  len = w;
}

}  // namespace outbox
