/*
 * schema_jsonb.h: a jsonb payload as the JSON Schema validator reads it (schema_jsonb.c).
 */
#ifndef OUTBOX_SCHEMA_JSONB_H
#define OUTBOX_SCHEMA_JSONB_H

#include "postgres.h"
#include "utils/jsonb.h"

#include "schema_api.h"

typedef struct SchemaPayload
{
	OutboxJsonDocument doc;
	/* Set when a value cannot be compared (a number beyond a double); doc is empty then. */
	char	   *unreadable_pointer;	/* JSON pointer, "(root)" for the root, server encoding */
	char	   *unreadable_reason;
} SchemaPayload;

/* Walks the payload; may raise (memory, a string the server encoding cannot convert). */
extern SchemaPayload outbox_schema_payload(Jsonb *payload);
extern void outbox_schema_payload_free(SchemaPayload *payload);

#endif
