#include <gtest/gtest.h>

#include "ops/metrics.h"
#include "source/pg_admin.h"
#include "source/pg_connect.h"
#include "source/pg_errors.h"
#include "source/pg_replication.h"

using namespace outbox;

namespace {
PgError cls(const std::string& state, const std::string& m, PgOp op = PgOp::Decoding) {
  return classify_pg_error(state, m, op, "myslot", "wal2json");
}
bool says(const PgError& e, const std::string& s) { return std::string(e.what()).find(s) != std::string::npos; }
}  // namespace

// The kind comes from the SQLSTATE alone: the same errors in German (lc_messages = de_DE) are
// classified like the English ones, and each names the fix.
TEST(PgErrors, ClassifiedBySqlstateInAnyLanguage) {
  struct Case {
    const char* state;
    PgOp op;
    const char* english;
    const char* german;
    PgErrorKind kind;
    const char* fix;
  };
  const Case cases[] = {
      {"55006", PgOp::Decoding, "ERROR:  replication slot \"myslot\" is active for PID 4242",
       "FEHLER:  Replikations-Slot »myslot« ist aktiv für PID 4242", PgErrorKind::SlotBusy, ""},
      {"28P01", PgOp::Connect, "FATAL:  password authentication failed for user \"relay\"",
       "FATAL:  Passwort-Authentifizierung für Benutzer »relay« fehlgeschlagen", PgErrorKind::Auth, "password"},
      {"28000", PgOp::ReplicationConnect,
       "FATAL:  no pg_hba.conf entry for replication connection from host \"10.0.0.1\", user \"relay\"",
       "FATAL:  kein pg_hba.conf-Eintrag für Replikationsverbindung von Host »10.0.0.1«, Benutzer »relay«",
       PgErrorKind::Auth, "'host <database> <role> <address> <method>'"},
      {"28000", PgOp::Connect, "FATAL:  role \"relay\" does not exist", "FATAL:  Rolle »relay« existiert nicht",
       PgErrorKind::Auth, "LOGIN"},
      {"42501", PgOp::ReplicationConnect, "FATAL:  must be superuser or replication role to start walsender",
       "FATAL:  nur Superuser und Replikationsrollen können WAL-Sender starten", PgErrorKind::Fatal,
       "ALTER ROLE <relay role> REPLICATION"},
      {"42501", PgOp::Decoding, "ERROR:  library \"wal2json\" may not be used as an output plugin",
       "FEHLER:  Bibliothek »wal2json« darf nicht als Ausgabe-Plugin verwendet werden", PgErrorKind::Fatal,
       "output_plugin_libraries"},
      {"42501", PgOp::Query, "ERROR:  permission denied for table dead_letters",
       "FEHLER:  keine Berechtigung für Tabelle dead_letters", PgErrorKind::Fatal, "outbox.grant_relay"},
      {"42704", PgOp::Decoding, "ERROR:  replication slot \"myslot\" does not exist",
       "FEHLER:  Replikations-Slot »myslot« existiert nicht", PgErrorKind::Fatal, "--create-slot"},
      {"58P01", PgOp::Decoding, "ERROR:  could not access file \"wal2json\": No such file or directory",
       "FEHLER:  konnte nicht auf Datei »wal2json« zugreifen: Datei oder Verzeichnis nicht gefunden",
       PgErrorKind::Fatal, "postgresql-15-wal2json"},
      {"55000", PgOp::Decoding, "ERROR:  logical decoding requires wal_level >= logical",
       "FEHLER:  logische Dekodierung erfordert wal_level >= logical", PgErrorKind::Fatal, "wal_level = logical"},
      {"55000", PgOp::Decoding,
       "ERROR:  can no longer get changes from replication slot \"myslot\"\nDETAIL:  This slot has been "
       "invalidated because it exceeded the maximum reserved size.",
       "FEHLER:  aus Replikations-Slot »myslot« können keine Änderungen mehr gelesen werden", PgErrorKind::Fatal,
       "pg_drop_replication_slot('myslot')"},
      {"53300", PgOp::Connect, "FATAL:  sorry, too many clients already", "FATAL:  tut mir leid, schon zu viele Verbindungen",
       PgErrorKind::Retryable, "max_connections"},
      {"53300", PgOp::ReplicationConnect, "FATAL:  number of requested standby connections exceeds max_wal_senders (currently 10)",
       "FATAL:  Anzahl angeforderter Standby-Verbindungen überschreitet max_wal_senders (aktuell 10)",
       PgErrorKind::Retryable, "max_wal_senders"},
      {"57P01", PgOp::Decoding, "FATAL:  terminating connection due to administrator command",
       "FATAL:  Verbindung wird abgebrochen aufgrund von Anweisung des Administrators", PgErrorKind::Retryable, ""},
      {"57P03", PgOp::Connect, "FATAL:  the database system is starting up", "FATAL:  das Datenbanksystem startet",
       PgErrorKind::Retryable, ""},
      {"3D000", PgOp::Connect, "FATAL:  database \"app\" does not exist", "FATAL:  Datenbank »app« existiert nicht",
       PgErrorKind::Fatal, "dbname"},
  };
  for (const Case& c : cases) {
    for (const char* text : {c.english, c.german}) {
      PgError e = cls(c.state, text, c.op);
      EXPECT_EQ(e.kind, c.kind) << c.state << ": " << text;
      EXPECT_EQ(e.sqlstate, c.state);
      EXPECT_TRUE(says(e, c.fix)) << e.what();
      EXPECT_TRUE(says(e, std::string("SQLSTATE ") + c.state)) << e.what();
      EXPECT_TRUE(says(e, text)) << "the server's message is kept: " << e.what();
    }
  }
}

// A logical replication connection matches pg_hba.conf's lines of its database, never those of the
// keyword replication: a fix that asked for such a line would send the operator the wrong way.
TEST(PgErrors, ReplicationConnectionRefusedAsksForADatabaseLine) {
  PgError e = cls("28000", "FATAL:  no pg_hba.conf entry for host \"10.0.0.1\", user \"relay\", database \"shop\", no encryption",
                  PgOp::ReplicationConnect);
  EXPECT_FALSE(says(e, "host replication")) << e.what();
  EXPECT_TRUE(says(e, "the database of --pg")) << e.what();
}

// English text alone decides nothing: a server message without SQLSTATE is libpq's, retried.
TEST(PgErrors, TextWithoutSqlstateIsNotClassifiedAsTheServers) {
  EXPECT_EQ(cls("", "ERROR:  replication slot \"myslot\" does not exist").kind, PgErrorKind::Retryable);
  EXPECT_EQ(cls("", "ERROR:  replication slot \"myslot\" is active for PID 1").kind, PgErrorKind::Retryable);
  EXPECT_EQ(cls("", "connection to server at \"127.0.0.1\", port 5432 failed: Connection refused").kind,
            PgErrorKind::Retryable);
  EXPECT_EQ(cls("", "server closed the connection unexpectedly").kind, PgErrorKind::Retryable);
}

// libpq's own TLS failures (English: the relay runs in the C locale).
TEST(PgErrors, TlsVerificationFailures) {
  for (const char* m : {"connection to server at \"db\" (10.0.0.1), port 5432 failed: SSL error: certificate verify failed",
                        "server certificate for \"db.example\" does not match host name \"db\"",
                        "root certificate file \"/nope.crt\" does not exist\nEither provide the file or change sslmode "
                        "to disable server certificate verification.",
                        "server does not support SSL, but SSL was required"}) {
    PgError e = cls("", m, PgOp::Connect);
    EXPECT_EQ(e.kind, PgErrorKind::Tls) << m;
    EXPECT_TRUE(says(e, "sslrootcert")) << e.what();
  }
}

// Values libpq checks only when it connects: definitive too.
TEST(PgErrors, OptionValuesLibpqRefuses) {
  for (const char* m : {"invalid sslmode value: \"bogus\"", "invalid port number: \"x\"",
                        "invalid integer value \"ten\" for connection option \"connect_timeout\"",
                        "could not match 2 port numbers to 3 hosts"}) {
    PgError e = cls("", m, PgOp::Connect);
    EXPECT_EQ(e.kind, PgErrorKind::Fatal) << m;
    EXPECT_TRUE(says(e, "correct that value in --pg")) << e.what();
  }
}

// A verbose connection error: the SQLSTATE comes out, the message stays readable.
TEST(PgErrors, SqlstateOfAConnectionError) {
  std::string m = "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  3D000: database \"x\" does not "
                  "exist\nLOCATION:  InitPostgres, postinit.c:948\n";
  EXPECT_EQ(take_sqlstate(m), "3D000");
  EXPECT_EQ(m, "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  database \"x\" does not exist\n");
  std::string de = "connection to server at \"h\", port 1 failed: FATAL:  28P01: Passwort-Authentifizierung für "
                   "Benutzer »relay« fehlgeschlagen\nLOCATION:  auth_failed, auth.c:335\n";
  EXPECT_EQ(take_sqlstate(de), "28P01");
  std::string two = "connection to server at \"a\", port 1 failed: FATAL:  57P03: the database system is starting up\n"
                    "connection to server at \"b\", port 1 failed: FATAL:  28P01: password authentication failed\n";
  EXPECT_EQ(take_sqlstate(two), "28P01") << "the last server's error ended the attempt";
  std::string none = "connection to server at \"h\", port 1 failed: Connection refused\n\tIs the server running?\n";
  EXPECT_EQ(take_sqlstate(none), "");
  EXPECT_EQ(none, "connection to server at \"h\", port 1 failed: Connection refused\n\tIs the server running?\n");
}

// wal_sender_timeout as SHOW prints it.
TEST(WalSenderTimeout, ParsedFromShow) {
  EXPECT_EQ(parse_duration_ms("1min"), 60000);
  EXPECT_EQ(parse_duration_ms("60s"), 60000);
  EXPECT_EQ(parse_duration_ms("2s"), 2000);
  EXPECT_EQ(parse_duration_ms("500ms"), 500);
  EXPECT_EQ(parse_duration_ms("1h"), 3600000);
  EXPECT_EQ(parse_duration_ms("1d"), 86400000);
  EXPECT_EQ(parse_duration_ms("0"), 0);
  EXPECT_EQ(parse_duration_ms("1500"), 1500);
  EXPECT_EQ(parse_duration_ms("abc"), -1);
  EXPECT_EQ(parse_duration_ms("5 s"), -1);
}

TEST(PluginOptions, OutboxPresetPerPlugin) {
  auto d = plugin_options("outbox_decoder");
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0], (std::pair<std::string, std::string>{"format-version", "2"}));
  EXPECT_EQ(d[1], (std::pair<std::string, std::string>{"outbox", "1"}));
  auto s = plugin_options("outbox_decoder", "2/3");
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[2], (std::pair<std::string, std::string>{"shard", "2/3"}));
  auto w = plugin_options("wal2json");
  std::map<std::string, std::string> m(w.begin(), w.end());
  EXPECT_EQ(m["format-version"], "2");
  EXPECT_EQ(m["add-tables"], "outbox.events");
  EXPECT_EQ(m["add-msg-prefixes"], "outbox");
  EXPECT_EQ(m["actions"], "insert");
  EXPECT_EQ(m["include-xids"], "1");
  EXPECT_EQ(m["include-timestamp"], "1");
  EXPECT_EQ(m["include-types"], "0");
}

TEST(DeadLetterJson, EmbedsPayloadAndHeaders) {
  Event ev;
  ev.id = "01a206d6-e9d5-7ec2-94ef-64c6fa8e6933";
  ev.aggregate_type = "order";
  ev.event_type = "created \"x\"";
  ev.payload = R"({"a": [1, 2]})";
  ev.headers.push_back(Header{"s", {HeaderValue::Kind::String, "v\n", 0, 0, false}});
  ev.headers.push_back(Header{"i", {HeaderValue::Kind::Int, "", -5, 0, false}});
  ev.headers.push_back(Header{"b", {HeaderValue::Kind::Bool, "", 0, 0, true}});
  ev.lsn = 0x1000;
  ev.xid = 7;
  EXPECT_EQ(event_to_json(ev),
            R"({"id":"01a206d6-e9d5-7ec2-94ef-64c6fa8e6933","aggregate_type":"order","aggregate_id":null,)"
            R"("event_type":"created \"x\"","payload":{"a": [1, 2]},"headers":{"s":"v\n","i":-5,"b":true},)"
            R"("exchange":null,"routing_key":null,"correlation_id":null,"causation_id":null,"created_at":"",)"
            R"("lsn":"0/1000","xid":7})");
}

TEST(Metrics, PrometheusText) {
  Metrics m;
  m.events_published = 5;
  m.ack_lsn = 100;
  m.server_wal_end = 150;
  m.observe_confirm_latency_us(700);     // 0.0007 s -> le 0.001
  m.observe_confirm_latency_us(20000);   // 0.02 s -> le 0.025
  m.observe_confirm_latency_us(60000000);  // +Inf
  std::string t = m.render_prometheus();
  EXPECT_NE(t.find("outbox_relay_events_published_total 5\n"), std::string::npos) << t;
  EXPECT_NE(t.find("outbox_relay_replication_lag_bytes 50\n"), std::string::npos) << t;
  EXPECT_NE(t.find("outbox_relay_confirm_latency_seconds_bucket{le=\"0.0005\"} 0\n"), std::string::npos) << t;
  EXPECT_NE(t.find("outbox_relay_confirm_latency_seconds_bucket{le=\"0.001\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("outbox_relay_confirm_latency_seconds_bucket{le=\"0.025\"} 2\n"), std::string::npos) << t;
  EXPECT_NE(t.find("outbox_relay_confirm_latency_seconds_bucket{le=\"10\"} 2\n"), std::string::npos) << t;
  EXPECT_NE(t.find("outbox_relay_confirm_latency_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos) << t;
  EXPECT_NE(t.find("outbox_relay_confirm_latency_seconds_count 3\n"), std::string::npos) << t;
  EXPECT_NE(t.find("# TYPE outbox_relay_in_flight gauge"), std::string::npos) << t;
}

// Dead letters and slot recovery stop for a human only when the extension, a function or a right
// is missing; anything else (a timeout, a standby answering, a serialization failure) is retried.
TEST(PgErrors, OnlyAMissingExtensionFunctionOrRightNeedsSetup) {
  for (const char* s : {"42883", "42501", "42P01", "3F000"}) EXPECT_TRUE(outbox::needs_setup(s)) << s;
  for (const char* s : {"", "57014", "55P03", "40001", "25006", "55000", "08006"}) EXPECT_FALSE(outbox::needs_setup(s)) << s;
}
