// The database's encoding of the plugin's lines. Both plugins write column values and logical
// message content in the server encoding (PostgreSQL converts nothing on the replication
// protocol); the parser reads UTF-8 JSON. A line is converted to UTF-8 before it is parsed when
// the server encoding is neither UTF8 nor SQL_ASCII (where outbox_emit lets only ASCII in).
//
// The conversion must be PostgreSQL's own, character for character: a wal-storage MAC is over
// the body as PostgreSQL converts it (pg_server_to_any), and the consumer must get the characters
// the application wrote. glibc's iconv differs from PostgreSQL in three places, all handled here
// (test/relay/source/line_encoding_integration_test.cpp compares every character with the server's):
//  - EUC_JP: glibc's EUC-JP maps 7 characters differently (0xA1C1 to U+301C, PostgreSQL U+FF5E)
//    and lacks 189 (NEC row 13, ...); its EUC-JP-MS is PostgreSQL's mapping exactly.
//  - single-byte encodings: glibc's CP1258 composes a letter and a following combining mark
//    (a + 0xEC gives U+00E1; PostgreSQL gives a + U+0301). A table of the 128 upper bytes, each
//    converted alone when the encoding is chosen, maps byte by byte as PostgreSQL does.
//  - EUC_JIS_2004: glibc maps 0xA1B1 to U+FFE3 and 0xA1EF to U+FFE5 (PostgreSQL: U+203E, U+00A5);
//    nothing else maps to those, so the output is corrected after iconv.
//
// One iconv descriptor (or the byte table) and one buffer, reused: a line costs no allocation
// once the buffer has grown to the largest line, and an ASCII line (B/C lines, ASCII events) is
// not copied at all.
#pragma once
#include <iconv.h>

#include <string>
#include <string_view>

namespace outbox {

class LineEncoding {
 public:
  LineEncoding() = default;
  ~LineEncoding();
  LineEncoding(const LineEncoding&) = delete;
  LineEncoding& operator=(const LineEncoding&) = delete;

  // Takes the server encoding as `SHOW server_encoding` names it. Returns "" when lines in it can
  // be read, else why not and the fix (a configuration error: the relay exits 2).
  std::string use(const std::string& server_encoding);
  const std::string& server_encoding() const { return server_encoding_; }
  bool converts() const { return single_byte_ || cd_ != invalid(); }

  // Sets `utf8` to the line in UTF-8: the line itself when nothing needs converting, else this
  // object's buffer (valid until the next call). Returns false, with `why`, for bytes that are
  // not a character of the server encoding or have no UTF-8 equivalent: only a message written
  // with pg_logical_emit_message can hold them, so the line is not a genuine event.
  bool to_utf8(std::string_view line, std::string_view& utf8, std::string& why);

  // iconv's name for a PostgreSQL server encoding; nullptr when there is none.
  static const char* iconv_name(std::string_view server_encoding);

 private:
  static iconv_t invalid() { return reinterpret_cast<iconv_t>(-1); }
  void close();
  bool by_table(std::string_view line, std::string_view& utf8, std::string& why);
  bool by_iconv(std::string_view line, std::string_view& utf8, std::string& why);
  void fix_jis_2004(std::size_t& len);

  iconv_t cd_ = invalid();
  bool single_byte_ = false;
  struct Utf8Char {
    unsigned char len = 0;  // 0: the byte is no character of the encoding
    char bytes[3] = {};
  };
  Utf8Char upper_[128];  // single-byte encodings: bytes 0x80..0xFF
  std::string server_encoding_;
  std::string buf_;
};

}  // namespace outbox
