/*
 * outbox.h: what the parts of the outbox extension share.
 */
#ifndef OUTBOX_H
#define OUTBOX_H

#include "postgres.h"
#include "fmgr.h"
#include "utils/jsonb.h"

/* The names and limits shared with the decoder and the relay (common/outbox_wire.h). */
#include "outbox_wire.h"

/* Settings (outbox.c). */
typedef enum OutboxStorage
{
	OUTBOX_STORAGE_TABLE,		/* a row in outbox.events */
	OUTBOX_STORAGE_WAL,			/* a transactional logical message, prefix "outbox" */
	OUTBOX_STORAGE_INVALID		/* a value set before the module was loaded, unchecked then */
} OutboxStorage;

extern int	outbox_storage;
extern char *outbox_storage_name;	/* the setting as written */
extern int	outbox_max_payload_bytes;
/* outbox.traceparent and outbox.tracestate: what tracing middleware sets with SET LOCAL once per
 * transaction; outbox_emit falls back to them (an empty value is unset). */
extern char *outbox_traceparent_setting;
extern char *outbox_tracestate_setting;

/*
 * SQLSTATEs of the outbox's own errors: class "OB" (classes starting with a letter past H are
 * free for extensions), one code for each kind of bad input so that callers can tell them apart.
 */
#define ERRCODE_OUTBOX_MISSING_FIELD	MAKE_SQLSTATE('O','B','0','0','1')
#define ERRCODE_OUTBOX_NAME_TOO_LONG	MAKE_SQLSTATE('O','B','0','0','2')
#define ERRCODE_OUTBOX_PAYLOAD_TOO_LARGE MAKE_SQLSTATE('O','B','0','0','3')
#define ERRCODE_OUTBOX_BAD_HEADERS		MAKE_SQLSTATE('O','B','0','0','4')
#define ERRCODE_OUTBOX_RESERVED_HEADER	MAKE_SQLSTATE('O','B','0','0','5')
#define ERRCODE_OUTBOX_EMPTY_NAME		MAKE_SQLSTATE('O','B','0','0','6')
#define ERRCODE_OUTBOX_HEADER_VALUE_TOO_LONG MAKE_SQLSTATE('O','B','0','0','7')
#define ERRCODE_OUTBOX_HEADERS_TOO_LARGE MAKE_SQLSTATE('O','B','0','0','8')
#define ERRCODE_OUTBOX_HEADER_NUMBER_RANGE MAKE_SQLSTATE('O','B','0','0','9')
#define ERRCODE_OUTBOX_NO_MESSAGE_KEY	MAKE_SQLSTATE('O','B','0','1','0')
/* Raised by the SQL of outbox.capture (OB011) and of its trigger (OB012); listed here so that
 * every code is in one place. */
#define ERRCODE_OUTBOX_CAPTURE_OWN_TABLE MAKE_SQLSTATE('O','B','0','1','1')
#define ERRCODE_OUTBOX_KEY_COLUMN_MISSING MAKE_SQLSTATE('O','B','0','1','2')
/* An event with a byte above 0x7F in a SQL_ASCII database (no defined character). */
#define ERRCODE_OUTBOX_NON_ASCII_IN_SQL_ASCII MAKE_SQLSTATE('O','B','0','1','3')
/* Trace context and priority, OB02x. */
#define ERRCODE_OUTBOX_INVALID_TRACEPARENT MAKE_SQLSTATE('O','B','0','2','0')
#define ERRCODE_OUTBOX_INVALID_TRACESTATE MAKE_SQLSTATE('O','B','0','2','1')
#define ERRCODE_OUTBOX_TRACESTATE_WITHOUT_TRACEPARENT MAKE_SQLSTATE('O','B','0','2','2')
#define ERRCODE_OUTBOX_PRIORITY_RANGE	MAKE_SQLSTATE('O','B','0','2','3')

/*
 * JSON Schema (schemas.c), OB03x: a payload the enforced schema refuses (OB030), a schema that
 * is not valid JSON Schema (OB031), a payload the validator cannot decide on within its limits
 * (OB032: nesting, a pattern too costly to match, a number out of range).
 */
#define ERRCODE_OUTBOX_PAYLOAD_FAILS_SCHEMA MAKE_SQLSTATE('O','B','0','3','0')
#define ERRCODE_OUTBOX_INVALID_SCHEMA	MAKE_SQLSTATE('O','B','0','3','1')
#define ERRCODE_OUTBOX_PAYLOAD_NOT_CHECKABLE MAKE_SQLSTATE('O','B','0','3','2')

/* One event as outbox_emit received it; NULL pointers are SQL NULLs. */
typedef struct OutboxEvent
{
	text	   *event_type;
	Jsonb	   *payload;
	text	   *aggregate_type;
	text	   *aggregate_id;
	text	   *routing_key;
	text	   *exchange;
	Jsonb	   *headers;
	text	   *correlation_id;
	text	   *causation_id;
	text	   *traceparent;
	text	   *tracestate;
	bool		traceparent_from_setting;	/* from outbox.traceparent, not the argument */
	bool		tracestate_from_setting;	/* from outbox.tracestate, not the argument */
	int32		priority;		/* when has_priority */
	bool		has_priority;
	int32		schema_version; /* 0: none */
	int64		header_table_size;	/* set by outbox_validate_event */
} OutboxEvent;

/*
 * validate.c: raise an ERROR naming the field for anything the relay could not publish.
 * outbox_validate_event checks every field and counts the header table the event controls;
 * outbox_check_header_table then bounds it, with x-outbox-schema-version when one is set.
 */
extern void outbox_validate_event(OutboxEvent *ev);
extern void outbox_check_header_table(const OutboxEvent *ev);

/* trace_context.c: refuses a traceparent or tracestate that is not W3C Trace Context, and one
 * without the other's traceparent; a tracestate with no list member becomes NULL. */
extern void outbox_validate_trace_context(OutboxEvent *ev);

/* message_key.c: HMAC-SHA256 of a wal-storage body under the database's key, as
 * OUTBOX_MAC_HEX_LEN lower-case hex digits (not NUL-terminated). */
/* The signature of a wal-storage message (message_key.c, common/outbox_wire.h). */
typedef struct OutboxSignature
{
	char		mac_hex[OUTBOX_MAC_HEX_LEN + 1];
	int32		key_id;
	bool		legacy;			/* 0.2's form: no key id, the body alone */
} OutboxSignature;

extern void outbox_message_sign(const char *body, size_t len, OutboxSignature *sig);

/* schemas.c: validates the payload against the event type's enforced schema, raising OB030-OB032;
 * returns the schema's version, 0 when the type has none. */
extern int32 outbox_schema_enforce(text *event_type, Jsonb *payload);

/* uuidv7.c */
extern void outbox_uuidv7_generate(unsigned char out[16]);

#endif
