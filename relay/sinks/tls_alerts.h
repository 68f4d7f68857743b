// What an OpenSSL error says about the peer refusing our side of a TLS handshake, for every
// client the relay opens (RabbitMQ, Redis): the same alerts mean the same fix.
#pragma once

namespace outbox {

// The server refused our certificate, or wanted one (an alert it sent; in TLS 1.3 it arrives
// after the handshake looked done, at the first read).
bool client_certificate_refused(unsigned long ssl_err);

}  // namespace outbox
