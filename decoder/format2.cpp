/*
 * wal2json format-version 2: one JSON object per line; B and C lines around each transaction.
 */
#include "decoder.h"

extern "C" {
#include "access/sysattr.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
}

namespace outbox_decoder {

enum TupleKind
{
	TK_CHANGE, TK_IDENTITY, TK_PK
};

static inline void
app(StringInfo out, const char *s)
{
	append_bytes(out, s, (int) strlen(s));
}

/* the same for every line of a transaction: rendered once (the timestamp is the costly part) */
static void
write_meta(StringInfo out, DecoderState *st, ReorderBufferTXN *txn)
{
	const Options *o = &st->opt;
	StringInfo	m = &st->txn_meta;

	if (!st->txn_meta_valid)
	{
		resetStringInfo(m);
		if (o->include_xids)
			appendStringInfo(m, ",\"xid\":%u", txn->xid);
		if (o->include_timestamp)
			appendStringInfo(m, ",\"timestamp\":\"%s\"", timestamptz_to_str(txn->xact_time.commit_time));
		if (o->include_origin)
			appendStringInfo(m, ",\"origin\":%u", txn->origin_id);
		st->txn_meta_valid = true;
	}
	append_bytes(out, m->data, m->len);
}

/* what follows the action on every row line (I, U, D, T): metadata, LSN, schema, table */
static void
write_row_target(StringInfo out, DecoderState *st, ReorderBufferTXN *txn, XLogRecPtr lsn,
				 const RelInfo *ri)
{
	const Options *o = &st->opt;

	write_meta(out, st, txn);
	if (o->include_lsn)
	{
		app(out, ",\"lsn\":\"");
		append_lsn(out, lsn);
		appendStringInfoChar(out, '"');
	}
	if (o->include_schemas)
	{
		app(out, ",\"schema\":");
		app(out, ri->schema_json);
	}
	app(out, ",\"table\":");
	app(out, ri->table_json);
}

static void
write_begin_line(LogicalDecodingContext *ctx, DecoderState *st, ReorderBufferTXN *txn)
{
	const Options *o = &st->opt;
	StringInfo	out;

	OutputPluginPrepareWrite(ctx, true);
	out = ctx->out;
	app(out, "{\"action\":\"B\"");
	write_meta(out, st, txn);
	if (o->include_lsn)
	{
		app(out, ",\"lsn\":\"");
		append_lsn(out, txn->final_lsn);
		app(out, "\",\"nextlsn\":\"");
		append_lsn(out, txn->end_lsn);
		appendStringInfoChar(out, '"');
	}
	appendStringInfoChar(out, '}');
	OutputPluginWrite(ctx, true);
	st->begin_written = true;
}

/* skip-empty mode: write the B line just before the first line of the transaction */
static void
ensure_begin(LogicalDecodingContext *ctx, DecoderState *st, ReorderBufferTXN *txn)
{
	if (!st->opt.skip_empty_xacts || st->begin_written)
		return;
	if (!st->opt.include_transaction)
	{
		st->begin_written = true;	/* no B line to write, but the transaction has output */
		return;
	}
	XLogRecPtr	saved = ctx->write_location;

	ctx->write_location = txn->first_lsn;	/* the position wal2json's B line carries */
	write_begin_line(ctx, st, txn);
	ctx->write_location = saved;
}

void
v2_begin(LogicalDecodingContext *ctx, DecoderState *st, ReorderBufferTXN *txn)
{
	st->begin_written = false;
	st->txn_meta_valid = false;
	if (!st->opt.include_transaction || st->opt.skip_empty_xacts)
		return;
	write_begin_line(ctx, st, txn);
}

void
v2_commit(LogicalDecodingContext *ctx, DecoderState *st, ReorderBufferTXN *txn, XLogRecPtr commit_lsn)
{
	const Options *o = &st->opt;

	if (!o->include_transaction)
		return;
	if (o->skip_empty_xacts && !st->begin_written)
		return;					/* nothing was written for this transaction */

	OutputPluginPrepareWrite(ctx, true);
	StringInfo	out = ctx->out;

	app(out, "{\"action\":\"C\"");
	write_meta(out, st, txn);
	if (o->include_lsn)
	{
		app(out, ",\"lsn\":\"");
		append_lsn(out, commit_lsn);
		app(out, "\",\"nextlsn\":\"");
		append_lsn(out, txn->end_lsn);
		appendStringInfoChar(out, '"');
	}
	appendStringInfoChar(out, '}');
	OutputPluginWrite(ctx, true);
}

static void
write_tuple(StringInfo out, DecoderState *st, RelInfo *ri, Relation rel, HeapTuple tuple, TupleKind kind)
{
	const Options *o = &st->opt;
	TupleDesc	desc = RelationGetDescr(rel);
	Datum	   *values = (Datum *) palloc(desc->natts * sizeof(Datum));
	bool	   *nulls = (bool *) palloc(desc->natts * sizeof(bool));
	Bitmapset  *bs = kind == TK_IDENTITY ? ri->ri_bs : kind == TK_PK ? ri->pk_bs : NULL;
	bool		need_sep = false;

	heap_deform_tuple(tuple, desc, values, nulls);

	for (int i = 0; i < desc->natts; i++)
	{
		AttrInfo   *a = &ri->attrs[i];

		if (a->skip)
			continue;
		if (bs != NULL && !bms_is_member(a->attnum - FirstLowInvalidHeapAttributeNumber, bs))
			continue;
		if (!nulls[i] && a->isvarlena && VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(values[i])))
			continue;			/* unchanged TOAST value: left out, like wal2json */

		if (need_sep)
			appendStringInfoCharMacro(out, ',');
		need_sep = true;
		append_bytes(out, a->head_v2, a->head_v2_len);
		if (kind != TK_PK)
		{
			app(out, ",\"value\":");
			if (nulls[i])
				append_bytes(out, "null", 4);
			else
				write_value(out, values[i], a->cat_v2, a->kind, &a->outfn, a->isvarlena);
		}
		if (kind == TK_CHANGE)
		{
			if (o->include_not_null)
				app(out, a->notnull ? ",\"optional\":false" : ",\"optional\":true");
			if (o->include_column_positions)
				appendStringInfo(out, ",\"position\":%d", (int) a->attnum);
			if (o->include_default)
			{
				app(out, ",\"default\":");
				app(out, a->default_json);
			}
		}
		appendStringInfoCharMacro(out, '}');
	}
}

void
v2_change(LogicalDecodingContext *ctx, DecoderState *st, ReorderBufferTXN *txn, Relation rel, RelInfo *ri,
		  ReorderBufferChange *change)
{
	const Options *o = &st->opt;

	if (o->shard_enabled && !change_in_shard(st, ri, rel, change))
		return;

	ReorderBufferTupleBuf *newtuple = change->data.tp.newtuple;
	ReorderBufferTupleBuf *oldtuple = change->data.tp.oldtuple;

	switch (change->action)
	{
		case REORDER_BUFFER_CHANGE_INSERT:
			if (newtuple == NULL)
			{
				elog(WARNING, "no tuple data for INSERT in table \"%s\".\"%s\"", ri->schemaname, ri->tablename);
				return;
			}
			break;
		case REORDER_BUFFER_CHANGE_UPDATE:
			if (newtuple == NULL)
			{
				elog(WARNING, "no tuple data for UPDATE in table \"%s\".\"%s\"", ri->schemaname, ri->tablename);
				return;
			}
			if (oldtuple == NULL && !ri->has_replidindex && ri->relreplident != REPLICA_IDENTITY_FULL)
			{
				elog(WARNING, "no tuple identifier for UPDATE in table \"%s\".\"%s\"", ri->schemaname, ri->tablename);
				return;
			}
			break;
		case REORDER_BUFFER_CHANGE_DELETE:
			if (oldtuple == NULL && !ri->has_replidindex && ri->relreplident != REPLICA_IDENTITY_FULL)
			{
				elog(WARNING, "no tuple identifier for DELETE in table \"%s\".\"%s\"", ri->schemaname, ri->tablename);
				return;
			}
			break;
		default:
			return;
	}

	ensure_begin(ctx, st, txn);
	OutputPluginPrepareWrite(ctx, true);
	StringInfo	out = ctx->out;

	switch (change->action)
	{
		case REORDER_BUFFER_CHANGE_INSERT: app(out, "{\"action\":\"I\""); break;
		case REORDER_BUFFER_CHANGE_UPDATE: app(out, "{\"action\":\"U\""); break;
		default: app(out, "{\"action\":\"D\""); break;
	}
	write_row_target(out, st, txn, change->lsn, ri);

	if (newtuple != NULL)
	{
		app(out, ",\"columns\":[");
		write_tuple(out, st, ri, rel, &newtuple->tuple, TK_CHANGE);
		appendStringInfoChar(out, ']');
	}
	if (oldtuple != NULL)
	{
		app(out, ",\"identity\":[");
		write_tuple(out, st, ri, rel, &oldtuple->tuple, TK_IDENTITY);
		appendStringInfoChar(out, ']');
	}
	else
	{
		if (change->action == REORDER_BUFFER_CHANGE_UPDATE)
		{
			if (ri->has_pkindex || ri->has_replidindex)
			{
				app(out, ",\"identity\":[");
				write_tuple(out, st, ri, rel, &newtuple->tuple, TK_IDENTITY);
				appendStringInfoChar(out, ']');
			}
			else
				elog(WARNING, "no old tuple data for UPDATE in table \"%s\".\"%s\"", ri->schemaname, ri->tablename);
		}
		if (change->action == REORDER_BUFFER_CHANGE_DELETE)
			elog(WARNING, "no old tuple data for DELETE in table \"%s\".\"%s\"", ri->schemaname, ri->tablename);
	}
	if (o->include_pk)
	{
		app(out, ",\"pk\":[");
		ReorderBufferTupleBuf *keytuple = oldtuple != NULL ? oldtuple : newtuple;

		/* (wal2json would dereference a NULL tuple here if a DELETE carried no old key) */
		if (ri->has_pkindex && keytuple != NULL)
			write_tuple(out, st, ri, rel, &keytuple->tuple, TK_PK);
		appendStringInfoChar(out, ']');
	}
	appendStringInfoChar(out, '}');
	OutputPluginWrite(ctx, true);
}

void
v2_message(LogicalDecodingContext *ctx, DecoderState *st, ReorderBufferTXN *txn, XLogRecPtr lsn,
		   bool transactional, const char *prefix, Size sz, const char *content)
{
	const Options *o = &st->opt;

	/* an oversized message's aggregate is not read: its marker goes to shard 0 */
	if (o->shard_enabled &&
		(strcmp(prefix, OUTBOX_MESSAGE_PREFIX) != 0 ||
		 (message_oversized(o, prefix, sz) ? o->shard_index != 0 : !message_in_shard(st, content, sz))))
		return;
	if (transactional)
		ensure_begin(ctx, st, txn);

	OutputPluginPrepareWrite(ctx, true);
	StringInfo	out = ctx->out;

	app(out, "{\"action\":\"M\"");
	if (transactional)
		write_meta(out, st, txn);
	else
	{
		if (o->include_xids)
			app(out, ",\"xid\":null");
		if (o->include_timestamp)
			app(out, ",\"timestamp\":null");
		if (o->include_origin)
			app(out, ",\"origin\":null");
	}
	if (o->include_lsn)
	{
		app(out, ",\"lsn\":\"");
		append_lsn(out, lsn);
		appendStringInfoChar(out, '"');
	}
	app(out, transactional ? ",\"transactional\":true" : ",\"transactional\":false");
	app(out, ",\"prefix\":");
	json_escape_cstr(out, prefix);
	app(out, ",\"content\":");
	/* wal2json stops at the first NUL and, in a UTF-8 database, passes invalid UTF-8 through; we keep
	 * it all (README) */
	write_message_content(out, o, prefix, content, sz);
	appendStringInfoChar(out, '}');
	OutputPluginWrite(ctx, true);
}

void
v2_truncate(LogicalDecodingContext *ctx, DecoderState *st, ReorderBufferTXN *txn, int n,
			Relation rels[], ReorderBufferChange *change)
{
	const Options *o = &st->opt;

	if (!o->act_truncate || o->shard_enabled)
		return;
	for (int i = 0; i < n; i++)
	{
		RelInfo    *ri = relcache_get(st, rels[i]);

		if (!ri->selected)
			continue;
		ensure_begin(ctx, st, txn);
		OutputPluginPrepareWrite(ctx, true);
		StringInfo	out = ctx->out;

		app(out, "{\"action\":\"T\"");
		write_row_target(out, st, txn, change->lsn, ri);
		appendStringInfoChar(out, '}');
		OutputPluginWrite(ctx, true);
	}
}

}							/* namespace outbox_decoder */
