/*
 * validate.c: the one place that decides whether an event can be published.
 *
 * Everything the relay maps onto AMQP is checked here, inside the application's transaction,
 * so that bad input fails where the caller can see and fix it instead of becoming a dead letter
 * later (or, worse, a frame the broker answers by closing the channel). Every error names the
 * field, carries its own SQLSTATE (outbox.h) and a hint. The limits are those the relay and the
 * decoder use too (common/outbox_wire.h).
 */
#include "postgres.h"

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "outbox.h"

/* The headers the relay derives from event fields; they count towards the application's share. */
#define HEADER_AGGREGATE_TYPE OUTBOX_RESERVED_HEADER_PREFIX "aggregate-type"
#define HEADER_AGGREGATE_ID OUTBOX_RESERVED_HEADER_PREFIX "aggregate-id"
#define HEADER_CAUSATION_ID OUTBOX_RESERVED_HEADER_PREFIX "causation-id"

/* Encoded size of an AMQP field-table entry and of its values (the formula of outbox_wire.h). */
#define TABLE_ENTRY_SIZE(name_len, value_size) (1 + (int64) (name_len) + 1 + (int64) (value_size))
#define STRING_VALUE_SIZE(len) (4 + (int64) (len))
#define NUMBER_VALUE_SIZE 8
#define BOOLEAN_VALUE_SIZE 1
#define NULL_VALUE_SIZE 0

/*
 * Bytes on the wire, where strings are UTF-8. Only a database in another encoding holding
 * non-ASCII text pays for a conversion.
 */
static int64
utf8_length(const char *s, int len)
{
	int			encoding = GetDatabaseEncoding();
	char	   *converted;
	int64		n;
	int			i;

	if (encoding == PG_UTF8 || encoding == PG_SQL_ASCII)
		return len;
	for (i = 0; i < len && !IS_HIGHBIT_SET(s[i]); i++)
		;
	if (i == len)
		return len;
	converted = (char *) pg_do_encoding_conversion((unsigned char *) s, len, encoding, PG_UTF8);
	if (converted == s)
		return len;
	n = strlen(converted);
	pfree(converted);
	return n;
}

static int64
text_utf8_length(text *value)
{
	return utf8_length(VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value));
}

static void
check_name(const char *field, text *value, bool required)
{
	int64		len;

	if (value == NULL)
	{
		if (required)
			ereport(ERROR,
					(errcode(ERRCODE_OUTBOX_MISSING_FIELD),
					 errmsg("outbox event field \"%s\" must not be NULL", field),
					 errhint("Pass a non-empty %s, e.g. outbox_emit('order.created', '{}').", field)));
		return;
	}
	len = text_utf8_length(value);
	if (len == 0)
		ereport(ERROR,
				(errcode(required ? ERRCODE_OUTBOX_MISSING_FIELD : ERRCODE_OUTBOX_EMPTY_NAME),
				 errmsg("outbox event field \"%s\" must not be empty", field),
				 required
				 ? errhint("Pass a non-empty %s, e.g. outbox_emit('order.created', '{}').", field)
				 : strcmp(field, "correlation_id") == 0
				 ? errhint("Pass NULL for no correlation_id (the message then has none).")
				 : errhint("Pass NULL to use the relay's default %s.", field)));
	if (len > OUTBOX_SHORTSTR_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_OUTBOX_NAME_TOO_LONG),
				 errmsg("outbox event field \"%s\" is %lld bytes long, more than the %d bytes AMQP allows",
						field, (long long) len, OUTBOX_SHORTSTR_MAX),
				 errhint("Shorten the %s; AMQP short strings hold at most %d bytes.",
						 field, OUTBOX_SHORTSTR_MAX)));
}

/* A field the relay sends as a header value: bounded so that the header table fits in a frame. */
static void
check_header_field(const char *field, text *value, int max, const char *header)
{
	int64		len;

	if (value == NULL)
		return;
	len = text_utf8_length(value);
	if (len > max)
		ereport(ERROR,
				(errcode(ERRCODE_OUTBOX_HEADER_VALUE_TOO_LONG),
				 errmsg("outbox event field \"%s\" is %lld bytes long, more than the %d bytes allowed",
						field, (long long) len, max),
				 errdetail("It is sent as the AMQP header %s, and the whole header table must fit in one frame.",
						   header),
				 errhint("Shorten the %s (at most %d bytes); put longer data in the payload.", field, max)));
}

/* The header entry the relay adds for a field, or nothing when the field is NULL. */
static int64
field_entry_size(text *value, const char *header)
{
	if (value == NULL)
		return 0;
	return TABLE_ENTRY_SIZE(strlen(header), STRING_VALUE_SIZE(text_utf8_length(value)));
}

/*
 * The relay sends integers that fit in int64 as AMQP int64 and other numbers as float64; it
 * refuses magnitudes of 2^63 and more (integers there would silently lose digits). Compared as
 * numerics, so that no digit is lost on the way.
 */
static bool
header_number_in_range(Numeric n)
{
	static Numeric limit = NULL;	/* 2^63 */
	Datum		magnitude;

	if (limit == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		limit = DatumGetNumeric(DirectFunctionCall3(numeric_in,
													CStringGetDatum("9223372036854775808"),
													ObjectIdGetDatum(InvalidOid),
													Int32GetDatum(-1)));
		MemoryContextSwitchTo(old);
	}
	magnitude = DirectFunctionCall1(numeric_abs, NumericGetDatum(n));
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, magnitude, NumericGetDatum(limit))) < 0;
}

static bool
is_exact_name(const JsonbValue *key, const char *name)
{
	return key->val.string.len == (int) strlen(name) &&
		memcmp(key->val.string.val, name, key->val.string.len) == 0;
}

/* The encoded size of the header table the event controls (bounded by outbox_check_header_table). */
static int64
check_headers(const OutboxEvent *ev)
{
	Jsonb	   *headers = ev->headers;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbValue	key = {0};
	JsonbIteratorToken tok;
	int			depth = 0;
	int64		table_size = 0;
	int64		key_len;

	if (headers != NULL)
	{
		if (!JB_ROOT_IS_OBJECT(headers) || JB_ROOT_IS_SCALAR(headers))
			ereport(ERROR,
					(errcode(ERRCODE_OUTBOX_BAD_HEADERS),
					 errmsg("outbox event field \"headers\" must be a JSON object"),
					 errhint("Pass headers as a flat object of scalars, e.g. '{\"tenant\": \"acme\", \"priority\": 5}'.")));

		it = JsonbIteratorInit(&headers->root);
		while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
		{
			switch (tok)
			{
				case WJB_BEGIN_OBJECT:
				case WJB_BEGIN_ARRAY:
					if (++depth > 1)
						ereport(ERROR,
								(errcode(ERRCODE_OUTBOX_BAD_HEADERS),
								 errmsg("outbox event field \"headers\" must be a flat object of scalars"),
								 errdetail("A header value is an object or an array."),
								 errhint("AMQP headers here are scalars: encode nested values as a string, or put them in the payload.")));
					break;
				case WJB_END_OBJECT:
				case WJB_END_ARRAY:
					depth--;
					break;
				case WJB_KEY:
					key = v;
					key_len = utf8_length(v.val.string.val, v.val.string.len);
					if (key_len == 0 || key_len > OUTBOX_SHORTSTR_MAX)
						ereport(ERROR,
								(errcode(ERRCODE_OUTBOX_BAD_HEADERS),
								 errmsg("outbox event field \"headers\" has a key of %lld bytes", (long long) key_len),
								 errhint("Header names must hold 1 to %d bytes.", OUTBOX_SHORTSTR_MAX)));
					if (v.val.string.len >= (int) strlen(OUTBOX_RESERVED_HEADER_PREFIX) &&
						pg_strncasecmp(v.val.string.val, OUTBOX_RESERVED_HEADER_PREFIX,
									   strlen(OUTBOX_RESERVED_HEADER_PREFIX)) == 0)
						ereport(ERROR,
								(errcode(ERRCODE_OUTBOX_RESERVED_HEADER),
								 errmsg("outbox event header \"%.*s\" uses the reserved prefix \"%s\"",
										v.val.string.len, v.val.string.val, OUTBOX_RESERVED_HEADER_PREFIX),
								 errhint("outbox-relay sets the x-outbox-* headers itself; rename the header.")));
					/* RabbitMQ matches these names exactly: "cc" is an ordinary header. */
					if (is_exact_name(&v, OUTBOX_RESERVED_HEADER_CC) ||
						is_exact_name(&v, OUTBOX_RESERVED_HEADER_BCC))
						ereport(ERROR,
								(errcode(ERRCODE_OUTBOX_RESERVED_HEADER),
								 errmsg("outbox event header \"%.*s\" is reserved by RabbitMQ",
										v.val.string.len, v.val.string.val),
								 errdetail("RabbitMQ reads the headers CC and BCC as extra routing keys (sender-selected distribution) and closes the channel when they are not arrays of strings."),
								 errhint("Rename the header; to reach more queues, bind them to the routing key or emit one event per destination.")));
					table_size += TABLE_ENTRY_SIZE(key_len, 0);
					break;
				case WJB_VALUE:
					switch (v.type)
					{
						case jbvString:
							table_size += STRING_VALUE_SIZE(utf8_length(v.val.string.val, v.val.string.len));
							break;
						case jbvNumeric:
							if (!header_number_in_range(v.val.numeric))
								ereport(ERROR,
										(errcode(ERRCODE_OUTBOX_HEADER_NUMBER_RANGE),
										 errmsg("outbox event header \"%.*s\" is a number of magnitude 2^63 or more",
												key.val.string.len, key.val.string.val),
										 errdetail("AMQP header numbers are 64-bit integers or floats; this one would lose digits or be refused by the relay."),
										 errhint("Send the number as a string, e.g. '{\"%.*s\": \"18446744073709551616\"}'.",
												 key.val.string.len, key.val.string.val)));
							table_size += NUMBER_VALUE_SIZE;
							break;
						case jbvBool:
							table_size += BOOLEAN_VALUE_SIZE;
							break;
						default:
							table_size += NULL_VALUE_SIZE;
							break;
					}
					break;
				default:
					break;
			}
		}
	}

	table_size += field_entry_size(ev->aggregate_type, HEADER_AGGREGATE_TYPE);
	table_size += field_entry_size(ev->aggregate_id, HEADER_AGGREGATE_ID);
	table_size += field_entry_size(ev->causation_id, HEADER_CAUSATION_ID);
	table_size += field_entry_size(ev->traceparent, OUTBOX_TRACEPARENT_HEADER);
	table_size += field_entry_size(ev->tracestate, OUTBOX_TRACESTATE_HEADER);
	return table_size;
}

/*
 * The schema version is known only once the payload was checked against its schema, after
 * outbox_validate_event: its header is counted here, as the larger of its two encodings
 * (integer, or a string of up to 10 digits), so the relay may send either.
 */
void
outbox_check_header_table(const OutboxEvent *ev)
{
	int64		table_size = ev->header_table_size;

	if (ev->schema_version != 0)
		table_size += TABLE_ENTRY_SIZE(strlen(OUTBOX_SCHEMA_VERSION_HEADER),
									   Max(NUMBER_VALUE_SIZE, STRING_VALUE_SIZE(10)));
	if (table_size > OUTBOX_EVENT_HEADERS_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_OUTBOX_HEADERS_TOO_LARGE),
				 errmsg("outbox event headers take %lld bytes of the AMQP header table, more than the %d allowed",
						(long long) table_size, OUTBOX_EVENT_HEADERS_MAX),
				 errdetail("Counted: each header (name and value), plus %s, %s, %s, %s, %s and %s when those fields are set.",
						   HEADER_AGGREGATE_TYPE, HEADER_AGGREGATE_ID, HEADER_CAUSATION_ID,
						   OUTBOX_TRACEPARENT_HEADER, OUTBOX_TRACESTATE_HEADER, OUTBOX_SCHEMA_VERSION_HEADER),
				 errhint("Keep headers to small routing metadata and put large values in the payload.")));
}

/* The relay's default routing key is <aggregate_type>.<event_type>: it has to fit as well. */
static void
check_default_routing_key(const char *field, text *aggregate_type, text *event_type)
{
	if (text_utf8_length(aggregate_type) + 1 + text_utf8_length(event_type) > OUTBOX_SHORTSTR_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_OUTBOX_NAME_TOO_LONG),
				 errmsg("the default routing key \"<aggregate_type>.<%s>\" would be longer than %d bytes",
						field, OUTBOX_SHORTSTR_MAX),
				 errhint("Pass a shorter routing_key explicitly, or shorten aggregate_type or %s.", field)));
}

void
outbox_validate_event(OutboxEvent *ev)
{
	check_name("event_type", ev->event_type, true);
	if (ev->payload == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUTBOX_MISSING_FIELD),
				 errmsg("outbox event field \"payload\" must not be NULL"),
				 errhint("Pass a JSON value, e.g. '{}' for an event without data.")));
	if (VARSIZE(ev->payload) - VARHDRSZ > (Size) outbox_max_payload_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_OUTBOX_PAYLOAD_TOO_LARGE),
				 errmsg("outbox event field \"payload\" is %zu bytes, more than outbox.max_payload_bytes (%d)",
						(Size) (VARSIZE(ev->payload) - VARHDRSZ), outbox_max_payload_bytes),
				 errhint("Send a reference to large data instead, or have a superuser raise outbox.max_payload_bytes.")));
	check_name("routing_key", ev->routing_key, false);
	check_name("exchange", ev->exchange, false);
	check_name("correlation_id", ev->correlation_id, false);
	check_header_field("aggregate_type", ev->aggregate_type, OUTBOX_AGGREGATE_TYPE_MAX, HEADER_AGGREGATE_TYPE);
	check_header_field("aggregate_id", ev->aggregate_id, OUTBOX_AGGREGATE_ID_MAX, HEADER_AGGREGATE_ID);
	check_header_field("causation_id", ev->causation_id, OUTBOX_CAUSATION_ID_MAX, HEADER_CAUSATION_ID);
	if (ev->routing_key == NULL && ev->aggregate_type != NULL)
		check_default_routing_key("event_type", ev->aggregate_type, ev->event_type);
	outbox_validate_trace_context(ev);
	if (ev->has_priority && (ev->priority < 0 || ev->priority > OUTBOX_PRIORITY_MAX))
		ereport(ERROR,
				(errcode(ERRCODE_OUTBOX_PRIORITY_RANGE),
				 errmsg("outbox event field \"priority\" is %d, outside 0 to %d", ev->priority, OUTBOX_PRIORITY_MAX),
				 errhint("Pass a priority from 0 (lowest) to %d, or NULL for none; it becomes the AMQP priority, "
						 "which queues declared with x-max-priority honour.", OUTBOX_PRIORITY_MAX)));
	ev->header_table_size = check_headers(ev);
}

/*
 * outbox.capture() stores its arguments in the trigger, where a value outbox_emit refuses would
 * make every later write of the table fail: such values are refused at capture time instead,
 * naming capture's parameter, with the SQLSTATE outbox_emit would have used.
 */
static void
check_capture_event_type(const char *param, text *aggregate_type, text *type)
{
	int64		len = text_utf8_length(type);
	int64		key_len;

	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OUTBOX_MISSING_FIELD),
				 errmsg("outbox.capture: %s must not be empty", param),
				 errhint("Leave %s out (or pass NULL) for the default, or pass a non-empty event type.", param)));
	if (len > OUTBOX_SHORTSTR_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_OUTBOX_NAME_TOO_LONG),
				 errmsg("outbox.capture: %s is %lld bytes long, more than the %d bytes AMQP allows",
						param, (long long) len, OUTBOX_SHORTSTR_MAX),
				 errhint("Shorten the %s: it becomes the AMQP type of every event.", param)));
	key_len = text_utf8_length(aggregate_type) + 1 + len;
	if (key_len > OUTBOX_SHORTSTR_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_OUTBOX_NAME_TOO_LONG),
				 errmsg("outbox.capture: the routing key \"<aggregate_type>.<%s>\" would be %lld bytes long, more than the %d bytes AMQP allows",
						param, (long long) key_len, OUTBOX_SHORTSTR_MAX),
				 errhint("Pass a shorter aggregate_type (the default is the table name) or %s.", param)));
}

PG_FUNCTION_INFO_V1(outbox_check_capture);

Datum
outbox_check_capture(PG_FUNCTION_ARGS)
{
#define TEXT_ARG(n) (PG_ARGISNULL(n) ? NULL : PG_GETARG_TEXT_PP(n))
	text	   *aggregate_type = TEXT_ARG(0);
	text	   *exchange = TEXT_ARG(4);
	static const char *const type_params[] = {"created_type", "updated_type", "deleted_type"};
	int64		len;
	int			i;

	if (aggregate_type == NULL)
		elog(ERROR, "outbox.check_capture: aggregate_type is NULL");
	len = text_utf8_length(aggregate_type);
	if (len > OUTBOX_AGGREGATE_TYPE_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_OUTBOX_HEADER_VALUE_TOO_LONG),
				 errmsg("outbox.capture: aggregate_type is %lld bytes long, more than the %d bytes allowed",
						(long long) len, OUTBOX_AGGREGATE_TYPE_MAX),
				 errhint("Pass a shorter aggregate_type (the default is the table name).")));
	for (i = 0; i < lengthof(type_params); i++)
	{
		if (PG_ARGISNULL(i + 1))
			elog(ERROR, "outbox.check_capture: %s is NULL", type_params[i]);
		check_capture_event_type(type_params[i], aggregate_type, PG_GETARG_TEXT_PP(i + 1));
	}
	if (exchange != NULL)
	{
		len = text_utf8_length(exchange);
		if (len == 0)
			ereport(ERROR,
					(errcode(ERRCODE_OUTBOX_EMPTY_NAME),
					 errmsg("outbox.capture: exchange must not be empty"),
					 errhint("Leave exchange out (or pass NULL) to use the relay's default exchange.")));
		if (len > OUTBOX_SHORTSTR_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_OUTBOX_NAME_TOO_LONG),
					 errmsg("outbox.capture: exchange is %lld bytes long, more than the %d bytes AMQP allows",
							(long long) len, OUTBOX_SHORTSTR_MAX),
					 errhint("Shorten the exchange name; AMQP short strings hold at most %d bytes.",
							 OUTBOX_SHORTSTR_MAX)));
	}
#undef TEXT_ARG
	PG_RETURN_VOID();
}
