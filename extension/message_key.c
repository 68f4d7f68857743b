/*
 * message_key.c: the per-database key that authenticates wal-storage events.
 *
 * pg_logical_emit_message() is executable by PUBLIC, so any role that can connect can write a
 * logical message with the prefix "outbox". outbox_emit therefore signs the messages it writes
 * with HMAC-SHA256 under a key only the extension's owner can read (outbox.message_key_store;
 * the relay gets it through outbox.message_key()), and the relay publishes only messages whose
 * MAC verifies. The wire format is in common/outbox_wire.h.
 *
 * The key actually used is derived per database from the stored one:
 *   K_db = HMAC-SHA256(K, "outbox-db:" <system identifier> ":" <database oid>)  (both decimal)
 * CREATE DATABASE ... TEMPLATE copies outbox.message_key_store, so a relay role of the copy would
 * otherwise hold the key of the original and could forge events that its relay publishes.
 * outbox.message_key() returns K_db, never K.
 *
 * The key is read once per backend: the signature must not add a query to every emit.
 */
#include "postgres.h"

#include "access/xlog.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "outbox.h"

#define MESSAGE_KEY_TABLE "message_key_store"

StaticAssertDecl(OUTBOX_MAC_HEX_LEN == 2 * PG_SHA256_DIGEST_LENGTH,
				 "the MAC is HMAC-SHA256 in hex");

static uint8 *message_key = NULL;	/* K_db, OUTBOX_MAC_KEY_BYTES, in TopMemoryContext */
static int32 message_key_id = 0;	/* its id in outbox.message_key_store */
static bool message_key_legacy = false;	/* objects of 0.2: one key, no id, unbound MACs */
static bool message_key_valid = false;
static uint64 message_key_invalidations = 0;	/* counts the callback's calls */
static Oid	message_key_relid = InvalidOid;

/*
 * A changed key (a rotation, outbox.message_key_changed below), or DROP and CREATE EXTENSION in
 * a live session, must reach every backend: a backend that kept signing with a retired key would
 * write events no relay can verify.
 */
static void
message_key_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == message_key_relid)
	{
		message_key_valid = false;
		message_key_invalidations++;
	}
}

static void
hmac_fail(pg_hmac_ctx *ctx)
{
	char	   *why = pstrdup(pg_hmac_error(ctx));

	pg_hmac_free(ctx);
	elog(ERROR, "outbox: could not compute an HMAC: %s", why);
}

static pg_hmac_ctx *
hmac_begin(const uint8 *key, size_t keylen)
{
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);

	if (ctx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	if (pg_hmac_init(ctx, key, keylen) < 0)
		hmac_fail(ctx);
	return ctx;
}

static void
hmac_add(pg_hmac_ctx *ctx, const uint8 *msg, size_t len)
{
	if (pg_hmac_update(ctx, msg, len) < 0)
		hmac_fail(ctx);
}

static void
hmac_end(pg_hmac_ctx *ctx, uint8 *mac)
{
	if (pg_hmac_final(ctx, mac, PG_SHA256_DIGEST_LENGTH) < 0)
		hmac_fail(ctx);
	pg_hmac_free(ctx);
}

/*
 * K_db = HMAC-SHA256(K, "outbox-db:" <system identifier> ":" <database oid>): a database made
 * from this one as a template gets keys of its own.
 */
static void
derive_database_key(const uint8 *stored, uint8 *derived)
{
	char		label[64];
	int			n = snprintf(label, sizeof(label), "outbox-db:" UINT64_FORMAT ":%u",
							 GetSystemIdentifier(), MyDatabaseId);
	pg_hmac_ctx *ctx = hmac_begin(stored, OUTBOX_MAC_KEY_BYTES);

	hmac_add(ctx, (const uint8 *) label, n);
	hmac_end(ctx, derived);
}

static void
load_message_key(void)
{
	static bool callback_registered = false;
	Oid			nsp = get_namespace_oid(OUTBOX_SCHEMA, true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid(MESSAGE_KEY_TABLE, nsp) : InvalidOid;
	bool		legacy;
	bool		isnull;
	Datum		d;
	bytea	   *key;
	int32		key_id = OUTBOX_LEGACY_KEY_ID;
	uint64		invalidations;
	int			rc;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OUTBOX_NO_MESSAGE_KEY),
				 errmsg("outbox.storage = wal needs the message key in %s.%s, which does not exist",
						OUTBOX_SCHEMA, MESSAGE_KEY_TABLE),
				 errdetail("The installed outbox module signs wal-storage events; this database still has the objects of extension version 0.1."),
				 errhint("Run ALTER EXTENSION outbox UPDATE, or use outbox.storage = 'table' until then.")));

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(message_key_relcache_callback, (Datum) 0);
		callback_registered = true;
	}
	message_key_relid = relid;
	/* The objects of 0.2 (module updated, ALTER EXTENSION not yet run): one key, signed as 0.2 did. */
	legacy = get_attnum(relid, "key_id") == InvalidAttrNumber;

	/*
	 * An invalidation that arrives while the key is read (a rotation committing) leaves the key
	 * invalid (below), so the next event reads it again. Read with the latest snapshot, not the
	 * transaction's: a REPEATABLE READ transaction that began before a rotation would otherwise
	 * cache the old key and keep signing with it in later transactions, after it may be retired.
	 */
	invalidations = message_key_invalidations;
	/*
	 * outbox_emit is SECURITY DEFINER, so this runs as the extension's owner, the only role that
	 * may read the table. Schema-qualified: the caller's search_path plays no part.
	 */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "outbox_emit: SPI_connect failed");
	PushActiveSnapshot(GetLatestSnapshot());
	rc = SPI_execute(legacy ? "SELECT key FROM " OUTBOX_SCHEMA "." MESSAGE_KEY_TABLE
					 : "SELECT key, key_id FROM " OUTBOX_SCHEMA "." MESSAGE_KEY_TABLE
					 " WHERE superseded_at IS NULL",
					 true, 2);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "outbox_emit: reading the message key failed: %s", SPI_result_code_string(rc));
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OUTBOX_NO_MESSAGE_KEY),
				 errmsg("%s.%s holds %llu current message keys instead of one",
						OUTBOX_SCHEMA, MESSAGE_KEY_TABLE, (unsigned long long) SPI_processed),
				 errhint("Make a new current key: SELECT %s.rotate_message_key();", OUTBOX_SCHEMA)));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	key = isnull ? NULL : DatumGetByteaPP(d);
	if (key == NULL || VARSIZE_ANY_EXHDR(key) != OUTBOX_MAC_KEY_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_OUTBOX_NO_MESSAGE_KEY),
				 errmsg("the message key in %s.%s is not %d bytes long",
						OUTBOX_SCHEMA, MESSAGE_KEY_TABLE, OUTBOX_MAC_KEY_BYTES),
				 errhint("Make a new key: SELECT %s.rotate_message_key();", OUTBOX_SCHEMA)));
	if (!legacy)
	{
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		key_id = isnull ? 0 : DatumGetInt32(d);
	}
	if (message_key == NULL)
		message_key = MemoryContextAlloc(TopMemoryContext, OUTBOX_MAC_KEY_BYTES);
	derive_database_key((const uint8 *) VARDATA_ANY(key), message_key);
	PopActiveSnapshot();
	SPI_finish();
	message_key_id = key_id;
	message_key_legacy = legacy;
	message_key_valid = message_key_invalidations == invalidations;
}

/*
 * The MAC of a wal-storage message (common/outbox_wire.h): over "<xid>:" and the body in UTF-8,
 * so that a copy written in another transaction does not verify, and the relay, which reads every
 * database's text as UTF-8, checks the bytes it has. Objects of 0.2 sign the body alone.
 */
void
outbox_message_sign(const char *body, size_t len, OutboxSignature *sig)
{
	uint8		mac[PG_SHA256_DIGEST_LENGTH];
	pg_hmac_ctx *ctx;
	char		xid[16];
	int			n = 0;
	char	   *utf8 = (char *) body;

	if (!message_key_valid)
		load_message_key();
	sig->legacy = message_key_legacy;
	sig->key_id = message_key_id;
	if (!message_key_legacy)
	{
		/* Both may ERROR: before the HMAC context exists, which is not palloc'd memory. */
		n = snprintf(xid, sizeof(xid), "%u" OUTBOX_MAC_XID_SEPARATOR, GetTopTransactionId());
		utf8 = pg_server_to_any(body, (int) len, PG_UTF8);
		if (utf8 != body)
			len = strlen(utf8);
	}
	ctx = hmac_begin(message_key, OUTBOX_MAC_KEY_BYTES);
	if (n > 0)
		hmac_add(ctx, (const uint8 *) xid, n);
	hmac_add(ctx, (const uint8 *) utf8, len);
	hmac_end(ctx, mac);
	if (utf8 != body)
		pfree(utf8);
	hex_encode((const char *) mac, sizeof(mac), sig->mac_hex);
	sig->mac_hex[OUTBOX_MAC_HEX_LEN] = '\0';
}

PG_FUNCTION_INFO_V1(outbox_derive_message_key);

/*
 * outbox.derive_message_key(key): K_db of a stored key, for outbox.message_keys(). Only the
 * owner may call it: it is a function of a secret (the derivation itself is public).
 */
Datum
outbox_derive_message_key(PG_FUNCTION_ARGS)
{
	bytea	   *key = PG_GETARG_BYTEA_PP(0);
	bytea	   *result;

	if (VARSIZE_ANY_EXHDR(key) != OUTBOX_MAC_KEY_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_OUTBOX_NO_MESSAGE_KEY),
				 errmsg("a message key is %d bytes long, not %d",
						OUTBOX_MAC_KEY_BYTES, (int) VARSIZE_ANY_EXHDR(key))));
	result = palloc(VARHDRSZ + OUTBOX_MAC_KEY_BYTES);
	SET_VARSIZE(result, VARHDRSZ + OUTBOX_MAC_KEY_BYTES);
	derive_database_key((const uint8 *) VARDATA_ANY(key), (uint8 *) VARDATA(result));
	PG_RETURN_BYTEA_P(result);
}

PG_FUNCTION_INFO_V1(outbox_message_key);

/*
 * outbox.message_key(): K_db, the key the MACs are made with, for the relay. SECURITY DEFINER,
 * so load_message_key runs as the extension's owner, as it does under outbox_emit.
 */
Datum
outbox_message_key(PG_FUNCTION_ARGS)
{
	bytea	   *result = palloc(VARHDRSZ + OUTBOX_MAC_KEY_BYTES);

	if (!message_key_valid)
		load_message_key();
	SET_VARSIZE(result, VARHDRSZ + OUTBOX_MAC_KEY_BYTES);
	memcpy(VARDATA(result), message_key, OUTBOX_MAC_KEY_BYTES);
	PG_RETURN_BYTEA_P(result);
}

PG_FUNCTION_INFO_V1(outbox_new_message_key);

/* A fresh random key, for the default of outbox.message_key_store.key. */
Datum
outbox_new_message_key(PG_FUNCTION_ARGS)
{
	bytea	   *key = palloc(VARHDRSZ + OUTBOX_MAC_KEY_BYTES);

	SET_VARSIZE(key, VARHDRSZ + OUTBOX_MAC_KEY_BYTES);
	if (!pg_strong_random(VARDATA(key), OUTBOX_MAC_KEY_BYTES))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random message key")));
	PG_RETURN_BYTEA_P(key);
}

PG_FUNCTION_INFO_V1(outbox_message_key_changed);

/*
 * Statement trigger on outbox.message_key_store: every backend reloads the key at its next
 * wal-storage event after this transaction commits (the invalidation is transactional).
 */
Datum
outbox_message_key_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "outbox.message_key_changed: not called as a trigger");
	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}
