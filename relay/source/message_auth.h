// Authentication of wal-storage outbox messages (common/outbox_wire.h): HMAC-SHA256 with the
// database's key (SELECT outbox.message_key()), compared in constant time. Any role can write a
// logical message with prefix "outbox" (pg_logical_emit_message is PUBLIC in PostgreSQL 15); only
// outbox_emit knows the key, so a MAC that verifies means the message is genuine.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace outbox {

constexpr std::size_t kHmacSha256Bytes = 32;

class MessageAuth {
 public:
  MessageAuth();
  ~MessageAuth();
  MessageAuth(const MessageAuth&) = delete;
  MessageAuth& operator=(const MessageAuth&) = delete;

  // Sets the key (raw bytes, any length; outbox.message_key() gives OUTBOX_MAC_KEY_BYTES).
  // An empty key clears it.
  void set_key(std::string_view key);
  bool has_key() const { return has_key_; }
  std::size_t key_size() const { return key_size_; }

  // HMAC-SHA256(key, head + data) into out (kHmacSha256Bytes). Requires has_key().
  void mac(std::string_view data, unsigned char* out) { mac({}, data, out); }
  void mac(std::string_view head, std::string_view data, unsigned char* out);

  // True when `hex` is the lower-case hex of HMAC-SHA256(key, data). The comparison of the MAC
  // takes the same time wherever the first difference is (CRYPTO_memcmp). False without a key.
  bool verify_hex(std::string_view hex, std::string_view data) { return verify_hex(hex, {}, data); }
  // The same over head + data, without joining them.
  bool verify_hex(std::string_view hex, std::string_view head, std::string_view data);

 private:
  struct Impl;
  Impl* impl_ = nullptr;
  bool has_key_ = false;
  std::size_t key_size_ = 0;
};

// One-shot helpers (tests, tools): HMAC-SHA256(key, data) as 64 lower-case hex digits.
std::string hmac_sha256_hex(std::string_view key, std::string_view data);
std::string to_hex(const unsigned char* bytes, std::size_t n);

}  // namespace outbox
