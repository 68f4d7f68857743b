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
int			outbox_max_payload_bytes = 1024 * 1024;

static const struct config_enum_entry storage_options[] = {
	{"table", OUTBOX_STORAGE_TABLE, false},
	{"wal", OUTBOX_STORAGE_WAL, false},
	{NULL, 0, false}
};

void		_PG_init(void);

void
_PG_init(void)
{
	/* Per database, role or session: an application chooses where its events live. */
	DefineCustomEnumVariable("outbox.storage",
							 "Where outbox_emit stores events: table (a row in outbox.events) or wal (a transactional logical message with prefix \"outbox\").",
							 "Both are published the same way by outbox-relay; wal leaves no table row to vacuum or purge.",
							 &outbox_storage,
							 OUTBOX_STORAGE_TABLE,
							 storage_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

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

	MarkGUCPrefixReserved("outbox");
}
