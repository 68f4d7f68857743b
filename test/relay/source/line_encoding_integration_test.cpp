// Databases whose encoding is not UTF-8 (issue 15, item 2). Both plugins write the database's
// encoding; the relay converts every line to UTF-8 before parsing, wal-storage MACs are over the
// UTF-8 body, and in SQL_ASCII (no defined characters) outbox_emit refuses bytes above 0x7F.
// Each case runs once per plugin (ctest prefixes wal2json/ and outbox_decoder/).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <stdexcept>
#include <string>

#include "harness.h"
#include "source/line_encoding.h"
#include "relay_it.h"

using namespace it;
using namespace std::chrono_literals;

namespace {

struct EncodingCase {
  const char* encoding;
  const char* storage;
  const char* text;    // UTF-8, every character of it exists in `encoding`
  const char* forged;  // bytea of a forged message that is no text of `encoding` ("" when every byte is)
};

std::string case_name(const ::testing::TestParamInfo<EncodingCase>& i) {
  return std::string(i.param.encoding) + "_" + i.param.storage;
}

std::string sql_literal(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

}  // namespace

class EncodingIT : public RelayIT, public ::testing::WithParamInterface<EncodingCase> {
 protected:
  void SetUp() override {
    RelayIT::SetUp();
    if (IsSkipped()) return;
    // The fixture's database again, in the case's encoding (template0: template1 is UTF-8).
    db_.reset();
    db_ = std::make_unique<Db>(base_, std::string("ENCODING '") + GetParam().encoding +
                                          "' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
    db_->exec("SET client_encoding = 'UTF8'");  // the test's literals are UTF-8
    db_->exec(std::string("SET outbox.storage = '") + GetParam().storage + "'");
  }
};

// The event's characters arrive at the consumer as UTF-8 JSON, in the body, in headers made
// from event fields and in the application's headers; a dead letter written by the relay keeps
// them; a forged message whose bytes are no character of the encoding is skipped, not a stop.
TEST_P(EncodingIT, NonAsciiEventArrivesAsUtf8WithTheSameCharacters) {
  const EncodingCase& c = GetParam();
  const std::string text = c.text;
  ASSERT_EQ(db_->scalar("SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()"),
            c.encoding);
  RelayProcess& relay = start_relay({"--max-attempts", "1", "--retry-base-ms", "50"});
  if (*c.forged)
    db_->exec(std::string("SELECT pg_logical_emit_message(true, 'outbox', '") + c.forged + "'::bytea)");
  std::string named = "aggregate_type => 'order', aggregate_id => " + sql_literal(text) +
                      ", headers => jsonb_build_object('note', " + sql_literal(text) + ")";
  std::string payload = "jsonb_build_object('text', " + sql_literal(text) + ")";
  std::string id = db_->scalar("SELECT outbox_emit('enc.test', " + payload + ", " + named + ")");
  std::string dead = db_->scalar("SELECT outbox_emit('enc.dead', " + payload + ", exchange => '" + base_ +
                                 ".nosuch')");

  auto msgs = broker_->collect(1, 15s);
  ASSERT_EQ(msgs.size(), 1u) << relay.log();
  EXPECT_EQ(msgs[0].message_id, id);
  nlohmann::json body = nlohmann::json::parse(msgs[0].body);  // throws on bytes that are not UTF-8
  EXPECT_EQ(body["text"].get<std::string>(), text) << msgs[0].body;
  EXPECT_EQ(msgs[0].headers["x-outbox-aggregate-id"], text);
  EXPECT_EQ(msgs[0].headers["note"], text);

  ASSERT_TRUE(eventually([&] { return db_->scalar("SELECT count(*) FROM outbox.dead_letters") == "1"; }, 15s))
      << relay.log();
  auto dl = db_->rows("SELECT event_id, event->'payload'->>'text' FROM outbox.dead_letters");
  EXPECT_EQ(dl[0][0], dead);
  EXPECT_EQ(dl[0][1], text) << "the relay's connection writes UTF-8 and says so";

  if (*c.forged)
    EXPECT_NE(relay.log().find(std::string("is not a ") + c.encoding + " character"), std::string::npos)
        << relay.log();
  EXPECT_EQ(relay.log().find("MAC does not verify"), std::string::npos) << relay.log();
  std::string l = current_lsn();
  EXPECT_TRUE(eventually([&] { return lsn(db_->slot_confirmed_lsn(slot_)) >= lsn(l); }, 10s));
  EXPECT_TRUE(relay.running());
  EXPECT_EQ(relay.stop(), 0);
}

INSTANTIATE_TEST_SUITE_P(
    Encodings, EncodingIT,
    ::testing::Values(EncodingCase{"LATIN1", "table", "café déjà vu ÿ", ""},
                      EncodingCase{"LATIN1", "wal", "café déjà vu ÿ", ""},
                      EncodingCase{"WIN1252", "table", "café € „quoted“", "\\x81ff"},
                      EncodingCase{"WIN1252", "wal", "café € „quoted“", "\\x81ff"},
                      EncodingCase{"EUC_JP", "table", "日本語のテキスト", "\\xc6fcff"},
                      EncodingCase{"EUC_JP", "wal", "日本語のテキスト", "\\xc6fcff"}),
    case_name);

class SqlAsciiIT : public EncodingIT {};

// SQL_ASCII gives bytes above 0x7F no character: outbox_emit refuses them (so nothing is lost
// downstream), and ASCII events are delivered.
TEST_P(SqlAsciiIT, RefusesNonAsciiAndDeliversAscii) {
  RelayProcess& relay = start_relay();
  for (const std::string& call :
       {std::string("outbox_emit('t', '{\"text\":\"café\"}')"), std::string("outbox_emit('té', '{}')"),
        std::string("outbox_emit('t', '{}', aggregate_id => '日本')"),
        std::string("outbox_emit('t', '{}', headers => '{\"n\":\"€\"}')"),
        std::string("outbox_emit('t', '{\"clé\":1}')")}) {
    try {
      db_->exec("SELECT " + call);
      ADD_FAILURE() << call << " was accepted";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("SQL_ASCII"), std::string::npos) << e.what();
    }
  }
  std::string id = db_->scalar("SELECT outbox_emit('t', '{\"text\":\"plain ASCII\"}', aggregate_id => 'a-1')");
  auto msgs = broker_->collect(1, 15s);
  ASSERT_EQ(msgs.size(), 1u) << relay.log();
  EXPECT_EQ(msgs[0].message_id, id);
  EXPECT_EQ(nlohmann::json::parse(msgs[0].body)["text"], "plain ASCII");
  EXPECT_TRUE(broker_->collect(1, 300ms).empty());
  EXPECT_EQ(relay.stop(), 0);
}

INSTANTIATE_TEST_SUITE_P(Encodings, SqlAsciiIT,
                         ::testing::Values(EncodingCase{"SQL_ASCII", "table", "", ""},
                                           EncodingCase{"SQL_ASCII", "wal", "", ""}),
                         case_name);

// MULE_INTERNAL has no iconv equivalent: the relay refuses it at start (exit 2, with the fix)
// instead of streaming lines it cannot read.
TEST_F(RelayIT, MuleInternalDatabaseIsRefusedAtStart) {
  SKIP_UNLESS_MAIN_PLUGIN();
  db_.reset();
  db_ = std::make_unique<Db>(base_, "ENCODING 'MULE_INTERNAL' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
  RelayProcess& relay = start_relay({}, false);
  auto code = relay.wait_exit(20s);
  ASSERT_TRUE(code) << relay.log();
  EXPECT_EQ(*code, 2) << relay.log();
  EXPECT_NE(relay.log().find("MULE_INTERNAL"), std::string::npos) << relay.log();
  EXPECT_NE(relay.log().find("fix:"), std::string::npos) << relay.log();
}

// A wal-storage MAC is over the body as PostgreSQL converts it to UTF-8, and the relay verifies
// what it converted itself: the two conversions must agree on every character, or genuine events
// are rejected as forged (and consumers get other characters). Every character of every server
// encoding the relay converts (each upper byte of the single-byte ones, every two- and three-byte
// EUC sequence, EUC_TW's four-byte planes 1-16, and WIN1258 letters followed by combining marks),
// converted by the server and by LineEncoding.
TEST_F(RelayIT, TheRelayConvertsEveryCharacterAsPostgreSqlDoes) {
  SKIP_UNLESS_MAIN_PLUGIN();
  db_->exec(
      "CREATE FUNCTION pg_temp.conv(b bytea, enc name) RETURNS text LANGUAGE plpgsql AS $$ BEGIN "
      "RETURN encode(convert_to(convert_from(b, enc), 'UTF8'), 'hex'); EXCEPTION WHEN OTHERS THEN RETURN NULL; END $$");
  auto rows = db_->rows(R"(
    WITH hi AS (SELECT g FROM generate_series(161, 254) g),
    single AS (SELECT e, set_byte('\x00'::bytea, 0, g) b FROM unnest(ARRAY['LATIN1','LATIN2','LATIN3','LATIN4',
        'LATIN5','LATIN6','LATIN7','LATIN8','LATIN9','LATIN10','ISO_8859_5','ISO_8859_6','ISO_8859_7','ISO_8859_8',
        'WIN1250','WIN1251','WIN1252','WIN1253','WIN1254','WIN1255','WIN1256','WIN1257','WIN1258','WIN866','WIN874',
        'KOI8R','KOI8U']) e, generate_series(128, 255) g),
    two AS (SELECT e, set_byte(set_byte('\x0000'::bytea, 0, a.g), 1, c.g) b
            FROM unnest(ARRAY['EUC_JP','EUC_CN','EUC_KR','EUC_TW','EUC_JIS_2004']) e, hi a, hi c),
    ss2 AS (SELECT e, set_byte('\x8e00'::bytea, 1, g) b FROM unnest(ARRAY['EUC_JP','EUC_JIS_2004']) e,
            generate_series(161, 223) g),
    ss3 AS (SELECT e, set_byte(set_byte('\x8f0000'::bytea, 1, a.g), 2, c.g) b
            FROM unnest(ARRAY['EUC_JP','EUC_JIS_2004']) e, hi a, hi c),
    tw AS (SELECT 'EUC_TW' e, set_byte(set_byte(set_byte('\x8e000000'::bytea, 1, p), 2, a.g), 3, c.g) b
           FROM generate_series(161, 176) p, hi a, hi c),
    comb AS (SELECT 'WIN1258' e, set_byte('\x6100'::bytea, 1, g) b FROM unnest(ARRAY[204, 210, 222, 236, 242]) g)
    SELECT e, encode(b, 'hex'), pg_temp.conv(b, e::name)
    FROM (SELECT * FROM single UNION ALL SELECT * FROM two UNION ALL SELECT * FROM ss2
          UNION ALL SELECT * FROM ss3 UNION ALL SELECT * FROM tw UNION ALL SELECT * FROM comb) x)");
  ASSERT_GT(rows.size(), 200000u);
  auto unhex = [](const std::string& h) {
    std::string s;
    for (std::size_t i = 0; i + 1 < h.size(); i += 2) s += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
    return s;
  };
  std::map<std::string, std::unique_ptr<outbox::LineEncoding>> encodings;
  std::size_t compared = 0, differ = 0;
  for (const auto& r : rows) {
    auto& e = encodings[r[0]];
    if (!e) {
      e = std::make_unique<outbox::LineEncoding>();
      ASSERT_EQ(e->use(r[0]), "") << r[0];
    }
    if (r[2].empty()) continue;  // not a character of the encoding: the server refuses it on input
    std::string in = unhex(r[1]);
    std::string_view out;
    std::string why;
    bool ok = e->to_utf8(in, out, why);
    ++compared;
    if (!ok || std::string(out) != unhex(r[2])) {
      if (++differ <= 20) ADD_FAILURE() << r[0] << " 0x" << r[1] << ": PostgreSQL gives UTF-8 0x" << r[2] << ", the relay "
                                        << (ok ? "another sequence" : why);
    }
  }
  EXPECT_EQ(differ, 0u) << "of " << compared << " characters";
  EXPECT_GT(compared, 60000u);
}
