/*
 * schema_api.h: the C face of the JSON Schema validator (schema.cpp, schema_regex.cpp: valijson,
 * nlohmann_json and PCRE2 in C++).
 *
 * Plain C, no PostgreSQL types: the C++ side never calls PostgreSQL and never lets an exception
 * out. Every function catches what it throws and says what went wrong through its status and
 * OutboxSchemaText strings (malloc'd, UTF-8), which the caller copies and frees with
 * outbox_schema_text_free before it raises anything: an ereport may longjmp, and nothing
 * allocated by C++ may be left behind by one.
 */
#ifndef OUTBOX_SCHEMA_API_H
#define OUTBOX_SCHEMA_API_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C"
{
#endif

typedef struct OutboxSchema OutboxSchema;	/* a compiled schema, on the C++ heap */

typedef enum OutboxSchemaStatus
{
	OUTBOX_SCHEMA_VALID = 0,	/* the payload is valid, or the schema compiled */
	OUTBOX_SCHEMA_FAILS,		/* the payload fails: pointer, reason and detail say where and why */
	OUTBOX_SCHEMA_BAD_SCHEMA,	/* not a JSON Schema the validator can use: reason says why */
	OUTBOX_SCHEMA_BAD_INPUT,	/* the payload cannot be read or checked within the limits: reason */
	OUTBOX_SCHEMA_INTERRUPTED,	/* *interrupt_pending became true: let PostgreSQL act, then retry */
	OUTBOX_SCHEMA_NO_MEMORY
} OutboxSchemaStatus;

/* What a call says beyond its status; NULL members are empty. */
typedef struct OutboxSchemaText
{
	char	   *pointer;		/* JSON pointer (RFC 6901) of the failing value, "" for the root */
	char	   *reason;			/* the keyword that failed and its expected value: "minimum 1" */
	char	   *detail;			/* the validator's own words */
} OutboxSchemaText;

/* The bounds a check runs within, from the backend that calls it. */
typedef struct OutboxSchemaLimits
{
	size_t		stack_bytes;	/* stack the validator's recursion may use below the caller */
	volatile sig_atomic_t *interrupt_pending;	/* PostgreSQL's InterruptPending */
} OutboxSchemaLimits;

/*
 * A JSON value as the validator reads it, built by the caller (schema_jsonb.c walks a jsonb into
 * one) and only read here: one flat array of values and one of object members, no copy of a
 * string. Numbers are already what the validator compares: integers that fit 64 bits, doubles
 * otherwise. Object members are sorted by their keys' bytes (shorter first on a common prefix),
 * the order in which an error names the first member that fails.
 */
typedef enum OutboxJsonKind
{
	OUTBOX_JSON_NULL,
	OUTBOX_JSON_FALSE,
	OUTBOX_JSON_TRUE,
	OUTBOX_JSON_INTEGER,
	OUTBOX_JSON_DOUBLE,
	OUTBOX_JSON_STRING,
	OUTBOX_JSON_ARRAY,
	OUTBOX_JSON_OBJECT
} OutboxJsonKind;

typedef struct OutboxJsonValue
{
	uint32_t	kind;			/* OutboxJsonKind */
	uint32_t	size;			/* bytes of a string, items of an array, members of an object */
	union
	{
		int64_t		integer;
		double		number;
		const char *string;		/* UTF-8, not NUL-terminated */
		size_t		first;		/* array: index of its first item in values; object: of its
								 * first member in members */
	}			u;
} OutboxJsonValue;

typedef struct OutboxJsonMember
{
	const char *key;			/* UTF-8, not NUL-terminated */
	uint32_t	key_len;
	uint32_t	value;			/* index in values */
} OutboxJsonMember;

typedef struct OutboxJsonDocument
{
	const OutboxJsonValue *values;	/* values[0] is the root */
	const OutboxJsonMember *members;
} OutboxJsonDocument;

/* Compiles a schema given as JSON text (UTF-8); on success *out owns it. */
extern OutboxSchemaStatus outbox_schema_compile(const char *json, size_t len,
												const OutboxSchemaLimits *limits,
												OutboxSchema **out, OutboxSchemaText *text);

/* Checks a payload against a compiled schema. */
extern OutboxSchemaStatus outbox_schema_check(OutboxSchema *schema, const OutboxJsonDocument *payload,
											  const OutboxSchemaLimits *limits,
											  OutboxSchemaText *text);

extern void outbox_schema_free(OutboxSchema *schema);
extern void outbox_schema_text_free(OutboxSchemaText *text);

#ifdef __cplusplus
}
#endif

#endif
