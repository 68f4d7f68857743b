/*
 * emit.c: outbox_emit(), the function applications call inside their transactions.
 *
 * It must cost no more than a plain INSERT of the same row, so it is C: the arguments are
 * validated in place and stored with a plan prepared once per backend (table mode) or written
 * straight into the WAL as a transactional logical message (wal mode), signed with the
 * database's key because anyone may write such messages (message_key.c). Either way the event
 * becomes visible to logical decoding only if, and when, the calling transaction commits.
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/supportnodes.h"
#include "replication/message.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "outbox.h"

/* The columns outbox_emit writes: those of 0.3, then those of 0.4 (trace context, priority,
 * schema version). */
#define EVENT_COLUMNS_0_3 11
#define EVENT_COLUMNS 15

/*
 * Plans prepared once per backend: [1] for 0.4's table, [0] for 0.3's, which a session that runs
 * the new module before ALTER EXTENSION UPDATE still has (its outbox_emit takes 9 arguments).
 */
static SPIPlanPtr insert_plans[2] = {NULL, NULL};

static SPIPlanPtr
get_insert_plan(bool legacy)
{
	static Oid	argtypes[EVENT_COLUMNS] = {
		UUIDOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, JSONBOID,
		TEXTOID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID,
		TEXTOID, TEXTOID, INT2OID, INT4OID
	};
	SPIPlanPtr *cached = &insert_plans[legacy ? 0 : 1];

	if (*cached == NULL)
	{
		/* Schema-qualified and typed by OID: nothing resolves through the caller's search_path. */
#define COLUMNS_0_3 "id, aggregate_type, aggregate_id, event_type, payload, headers, exchange, " \
	"routing_key, correlation_id, causation_id, created_at"
		SPIPlanPtr	plan = legacy
			? SPI_prepare("INSERT INTO outbox.events (" COLUMNS_0_3 ") "
						  "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
						  EVENT_COLUMNS_0_3, argtypes)
			: SPI_prepare("INSERT INTO outbox.events (" COLUMNS_0_3 ", traceparent, tracestate, priority, schema_version) "
						  "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
						  EVENT_COLUMNS, argtypes);
#undef COLUMNS_0_3

		if (plan == NULL)
			elog(ERROR, "outbox_emit: could not prepare the insert into outbox.events: %s",
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "outbox_emit: could not keep the insert plan");
		*cached = plan;
	}
	return *cached;
}

static Jsonb *
empty_object(void)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
}

static void
store_in_table(pg_uuid_t *id, const OutboxEvent *ev, TimestampTz created_at, bool legacy)
{
	Datum		values[EVENT_COLUMNS];
	char		nulls[EVENT_COLUMNS];
	int			i = 0;
	int			rc;

#define ARG(ptr) do { values[i] = PointerGetDatum(ptr); nulls[i] = (ptr) ? ' ' : 'n'; i++; } while (0)
	ARG(id);
	ARG(ev->aggregate_type);
	ARG(ev->aggregate_id);
	ARG(ev->event_type);
	ARG(ev->payload);
	ARG(ev->headers);
	ARG(ev->exchange);
	ARG(ev->routing_key);
	ARG(ev->correlation_id);
	ARG(ev->causation_id);
	values[i] = TimestampTzGetDatum(created_at);
	nulls[i++] = ' ';
	ARG(ev->traceparent);
	ARG(ev->tracestate);
#undef ARG
	values[i] = Int16GetDatum((int16) ev->priority);
	nulls[i++] = ev->has_priority ? ' ' : 'n';
	values[i] = Int32GetDatum(ev->schema_version);
	nulls[i++] = ev->schema_version != 0 ? ' ' : 'n';

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "outbox_emit: SPI_connect failed");
	rc = SPI_execute_plan(get_insert_plan(legacy), values, nulls, false, 1);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "outbox_emit: insert into outbox.events failed: %s", SPI_result_code_string(rc));
	SPI_finish();
}

static void
append_text_field(StringInfo buf, const char *name, text *value)
{
	appendStringInfo(buf, ",\"%s\":", name);
	if (value == NULL)
		appendStringInfoString(buf, "null");
	else
		escape_json(buf, text_to_cstring(value));
}

/*
 * Room kept in front of the body for the signature: OUTBOX_MAC_OPEN, the hex MAC, OUTBOX_MAC_KID,
 * up to 10 digits of key id and the ',' that takes the place of the body's '{'.
 */
#define MAC_PREFIX_MAX (sizeof(OUTBOX_MAC_OPEN) - 1 + OUTBOX_MAC_HEX_LEN + sizeof(OUTBOX_MAC_KID) - 1 + 11)

/*
 * Every logical message with prefix OUTBOX_MESSAGE_PREFIX, an event or a control message, is
 * authenticated as common/outbox_wire.h says. signed_message_start leaves room for the
 * signature, the caller appends the body, and signed_message_log writes the signature so that
 * its last byte replaces the body's '{' (the body is not copied) and logs the message,
 * transactionally.
 */
static void
signed_message_start(StringInfo buf)
{
	initStringInfo(buf);
	appendStringInfoSpaces(buf, MAC_PREFIX_MAX - 1);
}

/*
 * outbox_decoder passes on no `outbox` message above OUTBOX_MESSAGE_MAX_BYTES_DEFAULT (it writes
 * only its size, and the relay records it as rejected: common/outbox_wire.h). Refused here, so
 * nothing outbox_emit writes can end there.
 */
static void
check_message_size(StringInfo buf)
{
	if (buf->len > OUTBOX_MESSAGE_MAX_BYTES_DEFAULT)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("outbox message would be %d bytes, more than the %d bytes the relay's decoder passes on",
						buf->len, OUTBOX_MESSAGE_MAX_BYTES_DEFAULT),
				 errhint("Send a reference to large data instead, or use outbox.storage = table.")));
}

static void
signed_message_log(StringInfo buf)
{
	int			body = MAC_PREFIX_MAX - 1;
	OutboxSignature sig;
	char		prefix[MAC_PREFIX_MAX + 1];
	int			n;

	Assert(buf->len > body && buf->data[body] == '{');
	check_message_size(buf);
	outbox_message_sign(buf->data + body, buf->len - body, &sig);
	if (sig.legacy)
		n = snprintf(prefix, sizeof(prefix), "%s%s%s", OUTBOX_MAC_OPEN, sig.mac_hex, OUTBOX_MAC_CLOSE);
	else
		n = snprintf(prefix, sizeof(prefix), "%s%s%s%d,", OUTBOX_MAC_OPEN, sig.mac_hex, OUTBOX_MAC_KID, sig.key_id);
	if (n <= 0 || n > body + 1)
		elog(ERROR, "outbox: the signature of key %d does not fit its room", sig.key_id);
	memcpy(buf->data + body + 1 - n, prefix, n);
	LogLogicalMessage(OUTBOX_MESSAGE_PREFIX, buf->data + body + 1 - n, buf->len - (body + 1 - n), true);
	pfree(buf->data);
}

/* The wal mode's message: the event as one JSON object with the table's column names. */
static void
store_in_wal(pg_uuid_t *id, const OutboxEvent *ev, TimestampTz created_at)
{
	StringInfoData buf;
	char		ts[MAXDATELEN + 1];
	int			utc = 0;

	if (!XLogLogicalInfoActive())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("outbox.storage = wal needs wal_level = logical"),
				 errdetail("With a lower wal_level the event could never be decoded and would be lost."),
				 errhint("Set wal_level = logical and restart PostgreSQL, or use outbox.storage = table.")));

	signed_message_start(&buf);
	appendStringInfo(&buf, "{\"id\":\"%s\"",
					 DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(id))));
	append_text_field(&buf, "aggregate_type", ev->aggregate_type);
	append_text_field(&buf, "aggregate_id", ev->aggregate_id);
	append_text_field(&buf, "event_type", ev->event_type);
	appendStringInfoString(&buf, ",\"payload\":");
	JsonbToCString(&buf, &ev->payload->root, VARSIZE(ev->payload));
	appendStringInfoString(&buf, ",\"headers\":");
	JsonbToCString(&buf, &ev->headers->root, VARSIZE(ev->headers));
	append_text_field(&buf, "exchange", ev->exchange);
	append_text_field(&buf, "routing_key", ev->routing_key);
	append_text_field(&buf, "correlation_id", ev->correlation_id);
	append_text_field(&buf, "causation_id", ev->causation_id);
	/* ISO 8601 in UTC, independent of the session's DateStyle and TimeZone */
	JsonEncodeDateTime(ts, TimestampTzGetDatum(created_at), TIMESTAMPTZOID, &utc);
	appendStringInfo(&buf, ",\"created_at\":\"%s\"", ts);
	/* Only when set: most events have none, and the relay reads a missing member as null. */
	if (ev->traceparent != NULL)
		append_text_field(&buf, "traceparent", ev->traceparent);
	if (ev->tracestate != NULL)
		append_text_field(&buf, "tracestate", ev->tracestate);
	if (ev->has_priority)
		appendStringInfo(&buf, ",\"priority\":%d", ev->priority);
	if (ev->schema_version != 0)
		appendStringInfo(&buf, ",\"schema_version\":%d", ev->schema_version);
	appendStringInfoChar(&buf, '}');

	signed_message_log(&buf);
}

/*
 * In a SQL_ASCII database a byte above 0x7F has no defined character: the relay could not know
 * which characters to publish (and the MAC's UTF-8 input, above, would not exist). Such events
 * are refused here, where the application sees why, instead of being lost downstream.
 */
static void
refuse_non_ascii(const char *field, const char *s, int len)
{
	for (int i = 0; i < len; i++)
		if (IS_HIGHBIT_SET(s[i]))
			ereport(ERROR,
					(errcode(ERRCODE_OUTBOX_NON_ASCII_IN_SQL_ASCII),
					 errmsg("outbox event field \"%s\" has a byte above 0x7F, and this database's encoding is SQL_ASCII", field),
					 errdetail("In a SQL_ASCII database such bytes have no defined character, so the event could not be published as UTF-8 JSON with the same characters."),
					 errhint("Keep the event's fields, payload and headers ASCII, or use a database with a real encoding, e.g. CREATE DATABASE ... ENCODING 'UTF8'.")));
}

static void
refuse_non_ascii_text(const char *field, text *value)
{
	if (value != NULL)
		refuse_non_ascii(field, VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value));
}

/*
 * A database in another encoding accepts text its conversion to UTF-8 has no character for
 * (0x81 in WIN1252, unassigned EUC codes: PostgreSQL checks only their form on input). The relay
 * could not read such an event; PostgreSQL's conversion raises its own error (22P05, naming the
 * bytes). Text fields and headers are converted by outbox_validate_event already, and a wal
 * message's whole body by outbox_message_sign (message_key.c): this is for the payload of a table-storage event.
 */
static void
refuse_unconvertible(const char *s, int len)
{
	const char *utf8;

	for (int i = 0; i < len; i++)
		if (IS_HIGHBIT_SET(s[i]))
		{
			utf8 = pg_server_to_any(s, len, PG_UTF8);
			if (utf8 != s)
				pfree((char *) utf8);
			return;
		}
}

/* Keys and string values: the only parts of a jsonb that hold the caller's bytes. */
static void
refuse_undeliverable_jsonb(const char *field, Jsonb *value, bool sql_ascii)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;

	if (value == NULL)
		return;
	it = JsonbIteratorInit(&value->root);
	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
		if ((tok == WJB_KEY || tok == WJB_VALUE || tok == WJB_ELEM) && v.type == jbvString)
		{
			if (sql_ascii)
				refuse_non_ascii(field, v.val.string.val, v.val.string.len);
			else
				refuse_unconvertible(v.val.string.val, v.val.string.len);
		}
}

static void
refuse_non_ascii_event(const OutboxEvent *ev)
{
	refuse_non_ascii_text("event_type", ev->event_type);
	refuse_undeliverable_jsonb("payload", ev->payload, true);
	refuse_non_ascii_text("aggregate_type", ev->aggregate_type);
	refuse_non_ascii_text("aggregate_id", ev->aggregate_id);
	refuse_non_ascii_text("routing_key", ev->routing_key);
	refuse_non_ascii_text("exchange", ev->exchange);
	refuse_undeliverable_jsonb("headers", ev->headers, true);
	refuse_non_ascii_text("correlation_id", ev->correlation_id);
	refuse_non_ascii_text("causation_id", ev->causation_id);
}

/*
 * The trace context of an event: the arguments, or, when no traceparent is passed, what the
 * transaction set (SET LOCAL outbox.traceparent/tracestate, as tracing middleware does once per
 * request; capture triggers pass none, so they pick it up). The session's tracestate goes only
 * with the session's traceparent: next to a traceparent passed in, it would describe another
 * trace. An empty setting is unset.
 */
static void
resolve_trace_context(OutboxEvent *ev, text *traceparent, text *tracestate)
{
	ev->traceparent = traceparent;
	ev->tracestate = tracestate;
	if (traceparent != NULL)
		return;
	if (outbox_traceparent_setting != NULL && outbox_traceparent_setting[0] != '\0')
	{
		ev->traceparent = cstring_to_text(outbox_traceparent_setting);
		ev->traceparent_from_setting = true;
	}
	if (tracestate == NULL && outbox_tracestate_setting != NULL && outbox_tracestate_setting[0] != '\0')
	{
		ev->tracestate = cstring_to_text(outbox_tracestate_setting);
		ev->tracestate_from_setting = true;
	}
}

PG_FUNCTION_INFO_V1(outbox_emit);

Datum
outbox_emit(PG_FUNCTION_ARGS)
{
	OutboxEvent ev = {0};
	pg_uuid_t  *id;
	TimestampTz created_at = GetCurrentTransactionStartTimestamp();

	/*
	 * 9 arguments: the SQL definition of 0.3, in a database not yet updated (ALTER EXTENSION
	 * outbox UPDATE) while this module is installed. Its table has no column for what 0.4 adds,
	 * so such an event is written as 0.3 wrote it, without trace context or priority.
	 */
	bool		legacy = PG_NARGS() < 12;

#define TEXT_ARG(n) (PG_ARGISNULL(n) ? NULL : PG_GETARG_TEXT_PP(n))
#define JSONB_ARG(n) (PG_ARGISNULL(n) ? NULL : PG_GETARG_JSONB_P(n))
	ev.event_type = TEXT_ARG(0);
	ev.payload = JSONB_ARG(1);
	ev.aggregate_type = TEXT_ARG(2);
	ev.aggregate_id = TEXT_ARG(3);
	ev.routing_key = TEXT_ARG(4);
	ev.exchange = TEXT_ARG(5);
	ev.headers = JSONB_ARG(6);
	ev.correlation_id = TEXT_ARG(7);
	ev.causation_id = TEXT_ARG(8);
	if (!legacy)
	{
		resolve_trace_context(&ev, TEXT_ARG(9), TEXT_ARG(10));
		ev.has_priority = !PG_ARGISNULL(11);
		ev.priority = ev.has_priority ? PG_GETARG_INT32(11) : 0;
	}
#undef TEXT_ARG
#undef JSONB_ARG

	/* Never a guess: an event meant for one storage must not land in the other (outbox.c). */
	if (outbox_storage == OUTBOX_STORAGE_INVALID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for parameter \"outbox.storage\": \"%s\"", outbox_storage_name),
				 errdetail("It was set before the outbox module was loaded, when it could not be checked; outbox_emit stores no event under it."),
				 errhint("Set it to table or wal (SET outbox.storage = 'table'; or RESET outbox.storage;), and correct it where it was set: "
						 "SELECT source, sourcefile FROM pg_settings WHERE name = 'outbox.storage';")));

	outbox_validate_event(&ev);
	if (GetDatabaseEncoding() == PG_SQL_ASCII)
		refuse_non_ascii_event(&ev);
	else if (GetDatabaseEncoding() != PG_UTF8 && outbox_storage == OUTBOX_STORAGE_TABLE)
		refuse_undeliverable_jsonb("payload", ev.payload, false);
	/*
	 * The payload against the event type's JSON Schema, in this transaction (schemas.c). Before
	 * the header table is bounded: the version becomes a header (x-outbox-schema-version). A
	 * database not yet updated has no schemas (and no column for the version).
	 */
	if (!legacy)
		ev.schema_version = outbox_schema_enforce(ev.event_type, ev.payload);
	outbox_check_header_table(&ev);
	if (ev.headers == NULL)
		ev.headers = empty_object();

	id = palloc(UUID_LEN);
	outbox_uuidv7_generate(id->data);

	if (outbox_storage == OUTBOX_STORAGE_WAL)
		store_in_wal(id, &ev, created_at);
	else
		store_in_table(id, &ev, created_at, legacy);

	PG_RETURN_UUID_P(id);
}

PG_FUNCTION_INFO_V1(outbox_emit_release);

/*
 * outbox.emit_release(aggregate_type, aggregate_id, slot_name): the control message that tells
 * the relay (--on-dead-letter=park), in stream order, that an aggregate is released
 * (common/outbox_wire.h). Written whatever outbox.storage is: the relay reads the prefix's
 * messages in both modes. outbox.release_parked calls it; EXECUTE is the owner's only.
 */
Datum
outbox_emit_release(PG_FUNCTION_ARGS)
{
	text	   *aggregate_type = PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0);
	text	   *aggregate_id = PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1);
	text	   *slot_name = PG_ARGISNULL(2) ? NULL : PG_GETARG_TEXT_PP(2);
	StringInfoData buf;

	/* The relay's ordering key: (aggregate_type, aggregate_id), one key for every event
	 * without an aggregate_id. A type with a NULL id would name no key, or the wrong one. */
	if (aggregate_id == NULL && aggregate_type != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a release with aggregate_id NULL must have aggregate_type NULL too"),
				 errdetail("Events without an aggregate_id share one ordering key, whatever their aggregate_type."),
				 errhint("Release them with outbox.release_parked(NULL, NULL).")));
	if (!XLogLogicalInfoActive())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("releasing parked events needs wal_level = logical"),
				 errdetail("The release is a logical message, which a lower wal_level does not write for decoding; no relay could see it."),
				 errhint("Set wal_level = logical and restart PostgreSQL.")));

	signed_message_start(&buf);
	appendStringInfoString(&buf, "{\"" OUTBOX_CONTROL_FIELD "\":\"" OUTBOX_CONTROL_RELEASE "\"");
	append_text_field(&buf, "aggregate_type", aggregate_type);
	append_text_field(&buf, "aggregate_id", aggregate_id);
	append_text_field(&buf, "slot_name", slot_name);
	appendStringInfoChar(&buf, '}');

	signed_message_log(&buf);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(outbox_emit_keys_changed);

/*
 * outbox.emit_keys_changed(key_id): the control message that tells relays, in stream order, to
 * reload the message keys (common/outbox_wire.h). outbox.rotate_message_key calls it before it
 * supersedes the current key, so the message is signed with a key every relay already holds;
 * EXECUTE is the owner's only.
 */
Datum
outbox_emit_keys_changed(PG_FUNCTION_ARGS)
{
	int32		key_id = PG_GETARG_INT32(0);
	StringInfoData buf;

	if (!XLogLogicalInfoActive())
		PG_RETURN_VOID();		/* nothing is decoded: no relay to tell */
	signed_message_start(&buf);
	appendStringInfo(&buf, "{\"" OUTBOX_CONTROL_FIELD "\":\"" OUTBOX_CONTROL_KEYS "\",\"key_id\":%d}", key_id);
	signed_message_log(&buf);
	PG_RETURN_VOID();
}

/* 0.4's SQL definition (12 arguments) names this symbol, so that a session still holding the 0.3
 * module cannot run it with 9 (outbox--0.3--0.4.sql). */
PG_FUNCTION_INFO_V1(outbox_emit_v04);

Datum
outbox_emit_v04(PG_FUNCTION_ARGS)
{
	return outbox_emit(fcinfo);
}

/*
 * outbox_emit's planner support function (0.5). A role without EXECUTE on outbox_emit gets
 * PostgreSQL's bare "permission denied for function outbox_emit" from the executor, which runs
 * before this module is even loaded, so nothing of ours could add the fix to it. The planner
 * calls this function first, without any privilege check (its argument is internal: no SQL
 * caller can reach it), so it raises the same error with the fix, the one the capture trigger
 * gives. It widens nothing: it refuses where the executor would refuse a moment later (and in
 * calls the planner folds away, which no application writes), with the same SQLSTATE and message,
 * and never simplifies the call.
 */
PG_FUNCTION_INFO_V1(outbox_emit_support);

Datum
outbox_emit_support(PG_FUNCTION_ARGS)
{
	Node	   *req = (Node *) PG_GETARG_POINTER(0);

	if (IsA(req, SupportRequestSimplify))
	{
		Oid			fn = ((SupportRequestSimplify *) req)->fcall->funcid;

		if (pg_proc_aclcheck(fn, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
		{
			const char *role = quote_identifier(GetUserNameFromId(GetUserId(), false));

			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied for function %s", "outbox_emit"),
					 errdetail("Role %s lacks EXECUTE on outbox_emit; outbox.grant_app gives it, and nothing else.", role),
					 errhint("Let the role emit: SELECT outbox.grant_app(%s);", quote_literal_cstr(role))));
		}
	}
	PG_RETURN_POINTER(NULL);
}
