#include "source/message_auth.h"

#include <cstring>
#include <new>
#include <stdexcept>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace outbox {

// One EVP_MAC context keyed once; every MAC re-initialises it without a key, which restarts from
// the keyed state OpenSSL keeps (no key schedule, no allocation per message).
struct MessageAuth::Impl {
  EVP_MAC* mac = nullptr;
  EVP_MAC_CTX* ctx = nullptr;
  ~Impl() {
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
  }
};

MessageAuth::MessageAuth() = default;

MessageAuth::~MessageAuth() { delete impl_; }

void MessageAuth::set_key(std::string_view key) {
  delete impl_;
  impl_ = nullptr;
  has_key_ = false;
  key_size_ = 0;
  if (key.empty()) return;
  auto impl = new Impl;
  impl->mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (impl->mac) impl->ctx = EVP_MAC_CTX_new(impl->mac);
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
  if (!impl->ctx ||
      !EVP_MAC_init(impl->ctx, reinterpret_cast<const unsigned char*>(key.data()), key.size(), params)) {
    delete impl;
    throw std::runtime_error("OpenSSL: cannot set up HMAC-SHA256");
  }
  impl_ = impl;
  has_key_ = true;
  key_size_ = key.size();
}

void MessageAuth::mac(std::string_view head, std::string_view data, unsigned char* out) {
  if (!impl_) throw std::logic_error("MessageAuth::mac without a key");
  std::size_t len = 0;
  if (!EVP_MAC_init(impl_->ctx, nullptr, 0, nullptr) ||
      !EVP_MAC_update(impl_->ctx, reinterpret_cast<const unsigned char*>(head.data()), head.size()) ||
      !EVP_MAC_update(impl_->ctx, reinterpret_cast<const unsigned char*>(data.data()), data.size()) ||
      !EVP_MAC_final(impl_->ctx, out, &len, kHmacSha256Bytes) || len != kHmacSha256Bytes)
    throw std::runtime_error("OpenSSL: HMAC-SHA256 failed");
}

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // upper case is not the wire format
}

}  // namespace

bool MessageAuth::verify_hex(std::string_view hex, std::string_view head, std::string_view data) {
  if (!impl_ || hex.size() != 2 * kHmacSha256Bytes) return false;
  unsigned char given[kHmacSha256Bytes];
  for (std::size_t i = 0; i < kHmacSha256Bytes; ++i) {
    int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;  // malformed, not a secret-dependent decision
    given[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  unsigned char expected[kHmacSha256Bytes];
  mac(head, data, expected);
  bool ok = CRYPTO_memcmp(given, expected, kHmacSha256Bytes) == 0;
  return ok;
}

std::string to_hex(const unsigned char* bytes, std::size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s(2 * n, '0');
  for (std::size_t i = 0; i < n; ++i) {
    s[2 * i] = digits[bytes[i] >> 4];
    s[2 * i + 1] = digits[bytes[i] & 15];
  }
  return s;
}

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
            data.size(), out, &len))
    throw std::runtime_error("OpenSSL: HMAC-SHA256 failed");
  return to_hex(out, len);
}

}  // namespace outbox
