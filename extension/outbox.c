/*
 * outbox.c: module entry and the extension's settings.
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "utils/guc.h"

#include "outbox.h"

PG_MODULE_MAGIC;

int			outbox_storage = OUTBOX_STORAGE_TABLE;
char	   *outbox_storage_name = NULL;
int			outbox_max_payload_bytes = 1024 * 1024;
char	   *outbox_traceparent_setting = NULL;
char	   *outbox_tracestate_setting = NULL;

/*
 * outbox.storage is a string setting checked by hand rather than an enum setting. A value SET
 * (or set by ALTER ROLE/DATABASE, postgresql.conf) before the module is loaded is a placeholder
 * that nobody checked; when the module then defines an enum setting, PostgreSQL only warns about
 * an invalid placeholder value and uses the default, so events meant for one storage would
 * silently go to the other. Instead the value is kept while the setting is defined and
 * outbox_emit refuses to store anything under it (emit.c). Once the module is loaded, SET of an
 * invalid value fails at once, as for an enum.
 */
static bool defining_storage = false;

static int
storage_from_name(const char *name)
{
	if (pg_strcasecmp(name, "table") == 0)
		return OUTBOX_STORAGE_TABLE;
	if (pg_strcasecmp(name, "wal") == 0)
		return OUTBOX_STORAGE_WAL;
	return OUTBOX_STORAGE_INVALID;
}

static bool
check_storage(char **newval, void **extra, GucSource source)
{
	char	   *p;

	if (storage_from_name(*newval) == OUTBOX_STORAGE_INVALID)
	{
		if (defining_storage)
			return true;		/* an unchecked placeholder value: outbox_emit refuses it */
		GUC_check_errhint("Available values: table, wal.");
		return false;
	}
	/* Shown as written in lower case, like an enum value (the same length: in place). */
	for (p = *newval; *p; p++)
		*p = pg_tolower((unsigned char) *p);
	return true;
}

static void
assign_storage(const char *newval, void *extra)
{
	outbox_storage = storage_from_name(newval);
}

void		_PG_init(void);

void
_PG_init(void)
{
	/* Per database, role or session: an application chooses where its events live. */
	defining_storage = true;
	DefineCustomStringVariable("outbox.storage",
							   "Where outbox_emit stores events: table (a row in outbox.events) or wal (a transactional logical message with prefix \"outbox\").",
							   "Both are published the same way by outbox-relay; wal leaves no table row to vacuum or purge.",
							   &outbox_storage_name,
							   "table",
							   PGC_USERSET,
							   0,
							   check_storage, assign_storage, NULL);
	defining_storage = false;

	/* A safety limit, so only a superuser (per database or role) may raise it. */
	DefineCustomIntVariable("outbox.max_payload_bytes",
							"Largest event payload outbox_emit accepts, in bytes of its jsonb representation.",
							"Keep it below the broker's max_message_size (RabbitMQ: 128MB by default).",
							&outbox_max_payload_bytes,
							1024 * 1024,
							1,
							INT_MAX,
							PGC_SUSET,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	/*
	 * Defined, not left as placeholders: the prefix is reserved below, which would refuse SET of
	 * an undefined outbox.* name. Not checked here but by outbox_emit, which names the setting:
	 * a value SET before the module loaded would otherwise be dropped with a warning when it
	 * loads, and the events would go out without their trace; and a request whose incoming
	 * header is malformed fails only if it emits.
	 */
	DefineCustomStringVariable("outbox.traceparent",
							   "W3C traceparent that outbox_emit gives events emitted without one (tracing middleware sets it with SET LOCAL).",
							   "Empty: none. Capture triggers pick it up too.",
							   &outbox_traceparent_setting,
							   "",
							   PGC_USERSET,
							   GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("outbox.tracestate",
							   "W3C tracestate that goes with outbox.traceparent.",
							   "Empty: none. Used only when the traceparent comes from outbox.traceparent too.",
							   &outbox_tracestate_setting,
							   "",
							   PGC_USERSET,
							   GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);

	MarkGUCPrefixReserved("outbox");
}
