// The database's encoding of the plugin's lines. Both plugins write column values and logical
// message content in the server encoding (PostgreSQL converts nothing on the replication
// protocol); the parser reads UTF-8 JSON. A line is converted to UTF-8 before it is parsed when
// the server encoding is neither UTF8 nor SQL_ASCII (where outbox_emit lets only ASCII in).
//
// One iconv descriptor and one buffer, reused: a line costs no allocation once the buffer has
// grown to the largest line, and an ASCII line (B/C lines, ASCII events) is not copied at all.
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
  bool converts() const { return cd_ != invalid(); }

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

  iconv_t cd_ = invalid();
  std::string server_encoding_;
  std::string buf_;
};

}  // namespace outbox
