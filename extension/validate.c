/*
 * validate.c: the one place that decides whether an event can be published.
 *
 * Everything the relay maps onto AMQP is checked here, inside the application's transaction,
 * so that bad input fails where the caller can see and fix it instead of becoming a dead letter
 * later. Every error names the field, carries its own SQLSTATE (outbox.h) and a hint.
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "outbox.h"

static void
check_name(const char *field, text *value, bool required)
{
	int			len;

	if (value == NULL)
	{
		if (required)
			ereport(ERROR,
					(errcode(ERRCODE_OUTBOX_MISSING_FIELD),
					 errmsg("outbox event field \"%s\" must not be NULL", field),
					 errhint("Pass a non-empty %s, e.g. outbox_emit('order.created', '{}').", field)));
		return;
	}
	len = VARSIZE_ANY_EXHDR(value);
	if (len == 0)
		ereport(ERROR,
				(errcode(required ? ERRCODE_OUTBOX_MISSING_FIELD : ERRCODE_OUTBOX_EMPTY_NAME),
				 errmsg("outbox event field \"%s\" must not be empty", field),
				 required
				 ? errhint("Pass a non-empty %s, e.g. outbox_emit('order.created', '{}').", field)
				 : errhint("Pass NULL to use the relay's default %s.", field)));
	if (len > OUTBOX_SHORTSTR_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_OUTBOX_NAME_TOO_LONG),
				 errmsg("outbox event field \"%s\" is %d bytes long, more than the %d bytes AMQP allows",
						field, len, OUTBOX_SHORTSTR_MAX),
				 errhint("Shorten the %s; AMQP short strings hold at most %d bytes.",
						 field, OUTBOX_SHORTSTR_MAX)));
}

static void
check_headers(Jsonb *headers)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			depth = 0;

	if (headers == NULL)
		return;
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
				if (v.val.string.len == 0 || v.val.string.len > OUTBOX_SHORTSTR_MAX)
					ereport(ERROR,
							(errcode(ERRCODE_OUTBOX_BAD_HEADERS),
							 errmsg("outbox event field \"headers\" has a key of %d bytes", v.val.string.len),
							 errhint("Header names must hold 1 to %d bytes.", OUTBOX_SHORTSTR_MAX)));
				if (v.val.string.len >= (int) strlen(OUTBOX_RESERVED_HEADER_PREFIX) &&
					pg_strncasecmp(v.val.string.val, OUTBOX_RESERVED_HEADER_PREFIX,
								   strlen(OUTBOX_RESERVED_HEADER_PREFIX)) == 0)
					ereport(ERROR,
							(errcode(ERRCODE_OUTBOX_RESERVED_HEADER),
							 errmsg("outbox event header \"%.*s\" uses the reserved prefix \"%s\"",
									v.val.string.len, v.val.string.val, OUTBOX_RESERVED_HEADER_PREFIX),
							 errhint("outbox-relay sets the x-outbox-* headers itself; rename the header.")));
				break;
			default:
				break;
		}
	}
}

void
outbox_validate_event(const OutboxEvent *ev)
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
	if (ev->routing_key == NULL && ev->aggregate_type != NULL &&
		VARSIZE_ANY_EXHDR(ev->aggregate_type) + 1 + VARSIZE_ANY_EXHDR(ev->event_type) > OUTBOX_SHORTSTR_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_OUTBOX_NAME_TOO_LONG),
				 errmsg("the default routing key \"<aggregate_type>.<event_type>\" would be longer than %d bytes",
						OUTBOX_SHORTSTR_MAX),
				 errhint("Pass a shorter routing_key explicitly, or shorten aggregate_type or event_type.")));
	check_headers(ev->headers);
}
