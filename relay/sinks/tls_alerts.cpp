#include "sinks/tls_alerts.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace outbox {

bool client_certificate_refused(unsigned long ssl_err) {
  if (ERR_GET_LIB(ssl_err) != ERR_LIB_SSL) return false;
  switch (ERR_GET_REASON(ssl_err)) {
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
      return true;
    default:
      return false;
  }
}

}  // namespace outbox
