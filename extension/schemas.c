/*
 * schemas.c: the JSON Schema of each event type, enforced by outbox_emit.
 *
 * The schemas are rows of outbox.event_schemas (the SQL of 0.4, section "Schemas"); the newest
 * version of an event type is enforced unless it was dropped. Each backend compiles a schema once
 * (schema.cpp, through schema_api.h) and keeps it, and remembers the types without one, until
 * the table changes: a statement trigger on it sends a relcache invalidation, which every backend
 * receives when the writing transaction commits (and this one at once), and the next emit
 * compiles again. Validation runs in the emitting transaction, before the event is stored.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/sinval.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "outbox.h"
#include "schema_api.h"
#include "schema_jsonb.h"

#define EVENT_SCHEMAS_TABLE "event_schemas"

/*
 * The validator's recursion may use this much stack below its caller: half of the margin
 * PostgreSQL keeps between max_stack_depth and the kernel's limit (STACK_DEPTH_SLOP), so it never
 * overflows wherever outbox_emit is called from. About 500 levels of nesting.
 */
#define SCHEMA_STACK_BYTES (256 * 1024)

/* Event types remembered per backend, with or without a schema; past this the cache starts over. */
#define SCHEMA_CACHE_MAX 4096

typedef struct SchemaEntry
{
	char		event_type[OUTBOX_SHORTSTR_MAX + 1];	/* the hash key, in the server encoding */
	int32		version;		/* 0: the type has no schema enforced */
	OutboxSchema *compiled;
} SchemaEntry;

/* The schema of one event type, from the cache or loaded for one use (see schema_for). */
typedef struct SchemaRef
{
	int32		version;
	OutboxSchema *compiled;
	bool		cached;
} SchemaRef;

static HTAB *schema_cache = NULL;
static bool schema_cache_stale = false;
static uint64 schema_invalidations = 0;
static Oid	schemas_relid = InvalidOid;

/*
 * Only flags: an invalidation callback must not do more than forget. While the table is not
 * known (before the first load, or in a database whose extension is older than 0.4) every
 * relcache invalidation counts, so the table's creation is noticed too.
 */
static void
schemas_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == schemas_relid || !OidIsValid(schemas_relid))
	{
		schema_cache_stale = true;
		schema_invalidations++;
	}
}

static void
flush_schema_cache(void)
{
	HASH_SEQ_STATUS seq;
	SchemaEntry *entry;

	if (schema_cache != NULL)
	{
		hash_seq_init(&seq, schema_cache);
		while ((entry = hash_seq_search(&seq)) != NULL)
			outbox_schema_free(entry->compiled);
		hash_destroy(schema_cache);
		schema_cache = NULL;
	}
	schema_cache_stale = false;
}

static HTAB *
get_schema_cache(void)
{
	static bool callback_registered = false;
	HASHCTL		ctl;

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(schemas_relcache_callback, (Datum) 0);
		callback_registered = true;
	}
	if (schema_cache_stale || (schema_cache != NULL && hash_get_num_entries(schema_cache) >= SCHEMA_CACHE_MAX))
		flush_schema_cache();
	if (schema_cache == NULL)
	{
		ctl.keysize = OUTBOX_SHORTSTR_MAX + 1;
		ctl.entrysize = sizeof(SchemaEntry);
		schema_cache = hash_create("outbox event schemas", 64, &ctl, HASH_ELEM | HASH_STRINGS);
	}
	return schema_cache;
}

static OutboxSchemaLimits
schema_limits(void)
{
	OutboxSchemaLimits limits = {SCHEMA_STACK_BYTES, &InterruptPending};

	return limits;
}

typedef struct SchemaWords
{
	char	   *pointer;		/* "(root)" for the root */
	char	   *reason;
	char	   *detail;
} SchemaWords;

static SchemaWords
take_words(OutboxSchemaText *text)
{
	SchemaWords w;
	char	   *raw[3];

	/* Copied out of the malloc'd text, which is freed whatever happens; converted after. */
	PG_TRY();
	{
		raw[0] = pstrdup(text->pointer ? text->pointer : "");
		raw[1] = pstrdup(text->reason ? text->reason : "");
		raw[2] = pstrdup(text->detail ? text->detail : "");
	}
	PG_FINALLY();
	{
		outbox_schema_text_free(text);
	}
	PG_END_TRY();
	w.pointer = raw[0][0] ? pg_any_to_server(raw[0], strlen(raw[0]), PG_UTF8) : "(root)";
	w.reason = pg_any_to_server(raw[1], strlen(raw[1]), PG_UTF8);
	w.detail = pg_any_to_server(raw[2], strlen(raw[2]), PG_UTF8);
	return w;
}

/* JSON text in UTF-8, which is what the validator reads. */
static char *
jsonb_utf8(Jsonb *value, size_t *len)
{
	char	   *s = JsonbToCString(NULL, &value->root, VARSIZE(value));
	char	   *utf8 = pg_server_to_any(s, strlen(s), PG_UTF8);

	*len = strlen(utf8);
	return utf8;
}

/*
 * The newest row of the event type. Read with the latest snapshot, not the transaction's: a
 * REPEATABLE READ transaction that began before a registration would otherwise cache the version
 * it replaced for the transactions after it (the invalidation that says so has been consumed).
 * outbox_emit and outbox.check_payload are SECURITY DEFINER: this runs as the extension's owner.
 */
static int32
load_schema(const char *event_type, char **schema_json, size_t *len)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			nsp = get_namespace_oid(OUTBOX_SCHEMA, true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid(EVENT_SCHEMAS_TABLE, nsp) : InvalidOid;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	int32		version = 0;
	int			rc;

	schemas_relid = relid;
	if (!OidIsValid(relid))
		return 0;				/* objects older than 0.4: no schemas */
	args[0] = CStringGetTextDatum(event_type);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "outbox: SPI_connect failed");
	PushActiveSnapshot(GetLatestSnapshot());
	/*
	 * outbox_emit is SECURITY DEFINER without a pinned search_path (a SET clause costs every emit):
	 * every type and operator here is schema-qualified, or the caller's pg_temp.text domain or own
	 * "=" would run as the extension's owner.
	 */
	rc = SPI_execute_with_args("SELECT version, CASE WHEN dropped_at IS NULL THEN schema::pg_catalog.text END FROM " OUTBOX_SCHEMA "." EVENT_SCHEMAS_TABLE
							   " WHERE event_type OPERATOR(pg_catalog.=) $1 ORDER BY version DESC LIMIT 1",
							   1, argtypes, args, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "outbox: reading outbox.event_schemas failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
	{
		HeapTuple	row = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		bool		dropped;
		Datum		schema = SPI_getbinval(row, desc, 2, &dropped);

		version = DatumGetInt32(SPI_getbinval(row, desc, 1, &isnull));
		if (dropped)
			version = 0;		/* outbox.drop_schema: no schema enforced */
		else
		{
			MemoryContext spi = MemoryContextSwitchTo(caller);
			char	   *schema_text = TextDatumGetCString(schema);

			*schema_json = pg_server_to_any(schema_text, strlen(schema_text), PG_UTF8);
			*len = strlen(*schema_json);
			MemoryContextSwitchTo(spi);
		}
	}
	PopActiveSnapshot();
	SPI_finish();
	return version;
}

static void
raise_unusable_schema(const char *event_type, int32 version, OutboxSchemaStatus status, OutboxSchemaText *text)
{
	SchemaWords w;

	if (status == OUTBOX_SCHEMA_NO_MEMORY)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	w = take_words(text);
	ereport(ERROR,
			(errcode(ERRCODE_OUTBOX_INVALID_SCHEMA),
			 errmsg("schema v%d of \"%s\" in outbox.event_schemas is not a valid JSON Schema: at %s: %s",
					version, event_type, w.pointer, w.reason),
			 errdetail("It was not written by outbox.register_schema, which refuses such a schema; no event of the type can be validated with it."),
			 errhint("Register a valid version: SELECT outbox.register_schema('%s', '<schema>');", event_type)));
}

static OutboxSchema *
compile_schema(const char *event_type, int32 version, const char *json, size_t len)
{
	OutboxSchemaLimits limits = schema_limits();
	OutboxSchemaText text;
	OutboxSchema *compiled;
	OutboxSchemaStatus status;

	while ((status = outbox_schema_compile(json, len, &limits, &compiled, &text)) == OUTBOX_SCHEMA_INTERRUPTED)
		CHECK_FOR_INTERRUPTS();
	if (status != OUTBOX_SCHEMA_VALID)
		raise_unusable_schema(event_type, version, status, &text);
	return compiled;
}

/*
 * The enforced schema of the event type. Invalidations are read first, so an emit validates with
 * the newest version committed before it began. A registration that commits while the schema is
 * being read may or may not be in what was read: then it is used once and not kept.
 */
static SchemaRef
schema_for(text *event_type)
{
	int			len = VARSIZE_ANY_EXHDR(event_type);
	char		key[OUTBOX_SHORTSTR_MAX + 1];
	char	   *json = NULL;
	size_t		json_len = 0;
	uint64		invalidations;
	SchemaRef	ref = {0, NULL, false};
	SchemaEntry *entry;
	bool		cacheable = len <= OUTBOX_SHORTSTR_MAX;

	AcceptInvalidationMessages();
	if (cacheable)
	{
		memcpy(key, VARDATA_ANY(event_type), len);
		key[len] = '\0';
		entry = hash_search(get_schema_cache(), key, HASH_FIND, NULL);
		if (entry != NULL)
			return (SchemaRef) {entry->version, entry->compiled, true};
	}
	invalidations = schema_invalidations;
	ref.version = load_schema(text_to_cstring(event_type), &json, &json_len);
	if (ref.version > 0)
		ref.compiled = compile_schema(text_to_cstring(event_type), ref.version, json, json_len);
	if (cacheable && schema_invalidations == invalidations)
	{
		entry = hash_search(get_schema_cache(), key, HASH_ENTER, NULL);
		entry->version = ref.version;
		entry->compiled = ref.compiled;
		ref.cached = true;
	}
	return ref;
}

static void
release_schema(SchemaRef *ref)
{
	if (!ref->cached)
		outbox_schema_free(ref->compiled);
	ref->compiled = NULL;
}

/* What outbox_emit would say of the payload: NULL when it may be emitted. */
typedef struct SchemaVerdict
{
	int32		version;		/* 0: no schema */
	int			sqlstate;
	char	   *message;		/* NULL: valid */
	char	   *detail;
} SchemaVerdict;

static SchemaVerdict
verdict_of(const char *event_type, int32 version, OutboxSchemaStatus status, OutboxSchemaText *text)
{
	SchemaVerdict v = {version, 0, NULL, NULL};
	SchemaWords w;

	if (status == OUTBOX_SCHEMA_NO_MEMORY)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	w = take_words(text);
	v.detail = w.detail;
	if (status == OUTBOX_SCHEMA_FAILS)
	{
		v.sqlstate = ERRCODE_OUTBOX_PAYLOAD_FAILS_SCHEMA;
		v.message = psprintf("payload of \"%s\" (schema v%d) fails at %s: %s", event_type, version, w.pointer, w.reason);
	}
	else if (status == OUTBOX_SCHEMA_BAD_SCHEMA)
	{
		v.sqlstate = ERRCODE_OUTBOX_INVALID_SCHEMA;
		v.message = psprintf("schema v%d of \"%s\" cannot be used at %s: %s", version, event_type, w.pointer, w.reason);
	}
	else
	{
		v.sqlstate = ERRCODE_OUTBOX_PAYLOAD_NOT_CHECKABLE;
		v.message = psprintf("payload of \"%s\" (schema v%d) cannot be validated at %s: %s", event_type, version, w.pointer, w.reason);
	}
	return v;
}

/* The payload as the validator reads it; a schema loaded for this use alone is freed if it raises. */
static SchemaPayload
payload_document(Jsonb *payload, SchemaRef *ref)
{
	SchemaPayload doc;

	if (ref->cached)
		return outbox_schema_payload(payload);
	PG_TRY();
	{
		doc = outbox_schema_payload(payload);
	}
	PG_CATCH();
	{
		release_schema(ref);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return doc;
}

static SchemaVerdict
check_payload(text *event_type, Jsonb *payload)
{
	SchemaPayload doc = {{NULL, NULL}, NULL, NULL};
	OutboxSchemaLimits limits = schema_limits();
	OutboxSchemaText text;
	OutboxSchemaStatus status;
	SchemaRef	ref;

	for (;;)
	{
		ref = schema_for(event_type);
		if (ref.version == 0)
			return (SchemaVerdict) {0, 0, NULL, NULL};	/* no schema: the payload is not even read */
		if (doc.doc.values == NULL && doc.unreadable_reason == NULL)
			doc = payload_document(payload, &ref);
		if (doc.unreadable_reason != NULL)
		{
			release_schema(&ref);
			return (SchemaVerdict) {ref.version, ERRCODE_OUTBOX_PAYLOAD_NOT_CHECKABLE,
				psprintf("payload of \"%s\" (schema v%d) cannot be validated at %s: %s", text_to_cstring(event_type),
						 ref.version, doc.unreadable_pointer, doc.unreadable_reason), ""};
		}
		status = outbox_schema_check(ref.compiled, &doc.doc, &limits, &text);
		release_schema(&ref);
		if (status != OUTBOX_SCHEMA_INTERRUPTED)
			break;
		CHECK_FOR_INTERRUPTS();	/* a cancel raises here; anything else is served, and the check runs again */
	}
	outbox_schema_payload_free(&doc);
	if (status == OUTBOX_SCHEMA_VALID)
		return (SchemaVerdict) {ref.version, 0, NULL, NULL};
	return verdict_of(text_to_cstring(event_type), ref.version, status, &text);
}

/*
 * outbox_emit's check (emit.c): raises what check_payload returns as its own error, and returns
 * the version the payload was validated against (0: the type has no schema).
 */
int32
outbox_schema_enforce(text *event_type, Jsonb *payload)
{
	SchemaVerdict v = check_payload(event_type, payload);

	if (v.message != NULL)
		ereport(ERROR,
				(errcode(v.sqlstate),
				 errmsg_internal("%s", v.message),
				 v.detail[0] ? errdetail_internal("%s", v.detail) : 0,
				 errhint("Check a payload without emitting it: SELECT outbox.check_payload(event_type, payload); "
						 "the schema: SELECT schema FROM outbox.event_schemas WHERE event_type = '%s' AND version = %d;",
						 text_to_cstring(event_type), v.version)));
	return v.version;
}

PG_FUNCTION_INFO_V1(outbox_check_payload);

/* outbox.check_payload(event_type, payload): NULL, or the message outbox_emit would raise. */
Datum
outbox_check_payload(PG_FUNCTION_ARGS)
{
	SchemaVerdict v;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("outbox.check_payload: %s is NULL", PG_ARGISNULL(0) ? "event_type" : "payload"),
				 errhint("outbox_emit refuses a NULL event_type or payload before any schema is looked at.")));
	v = check_payload(PG_GETARG_TEXT_PP(0), PG_GETARG_JSONB_P(1));
	if (v.message == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(v.message));
}

PG_FUNCTION_INFO_V1(outbox_check_schema);

/* outbox.check_schema(event_type, schema): raises, naming where and why, unless the schema is valid. */
Datum
outbox_check_schema(PG_FUNCTION_ARGS)
{
	char	   *event_type = text_to_cstring(PG_GETARG_TEXT_PP(0));
	size_t		len;
	char	   *json = jsonb_utf8(PG_GETARG_JSONB_P(1), &len);
	OutboxSchemaLimits limits = schema_limits();
	OutboxSchemaText text;
	OutboxSchema *compiled;
	OutboxSchemaStatus status;
	SchemaWords w;

	while ((status = outbox_schema_compile(json, len, &limits, &compiled, &text)) == OUTBOX_SCHEMA_INTERRUPTED)
		CHECK_FOR_INTERRUPTS();
	if (status == OUTBOX_SCHEMA_VALID)
	{
		outbox_schema_free(compiled);
		PG_RETURN_VOID();
	}
	if (status == OUTBOX_SCHEMA_NO_MEMORY)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	w = take_words(&text);
	ereport(ERROR,
			(errcode(ERRCODE_OUTBOX_INVALID_SCHEMA),
			 errmsg("the schema for \"%s\" is not a valid JSON Schema: at %s: %s", event_type, w.pointer, w.reason),
			 errhint("outbox.register_schema takes JSON Schema draft 7 (http://json-schema.org/draft-07/schema#); "
					 "see the README, section \"Schemas\", for what the validator supports.")));
	PG_RETURN_VOID();
}
