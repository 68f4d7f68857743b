/*
 * wal2json format-version 1: one JSON object per transaction ({"change":[...]}), optionally
 * pretty-printed (tabs) and optionally written in chunks (one row per change).
 */
#include "decoder.h"

extern "C" {
#include "access/sysattr.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
}

namespace outbox_decoder {

static inline void
app(StringInfo out, const char *s)
{
	append_bytes(out, s, (int) strlen(s));
}

template <typename... T>
static inline void
cat(StringInfo out, T... parts)
{
	(app(out, parts), ...);
}

static inline void
append_uint(StringInfo out, uint32 v)
{
	char		buf[12];
	int			n = pg_ultoa_n(v, buf);

	append_bytes(out, buf, n);
}

/* n tabs (pretty-print) or nothing */
static inline void
tabs(StringInfo out, const Options *o, int n)
{
	if (o->pretty_print)
		for (int i = 0; i < n; i++)
			appendStringInfoCharMacro(out, '\t');
}

void
v1_begin(LogicalDecodingContext *ctx, DecoderState *st, ReorderBufferTXN *txn)
{
	const Options *o = &st->opt;

	st->nr_changes = 0;
	OutputPluginPrepareWrite(ctx, true);
	StringInfo	out = ctx->out;

	cat(out, "{", o->nl);
	if (o->include_xids)
		appendStringInfo(out, "%s\"xid\":%s%u,%s", o->ht, o->sp, txn->xid, o->nl);
	if (o->include_lsn)
	{
		appendStringInfo(out, "%s\"nextlsn\":%s\"", o->ht, o->sp);
		append_lsn(out, txn->end_lsn);
		appendStringInfo(out, "\",%s", o->nl);
	}
	if (o->include_timestamp)
		appendStringInfo(out, "%s\"timestamp\":%s\"%s\",%s", o->ht, o->sp,
						 timestamptz_to_str(txn->xact_time.commit_time), o->nl);
	if (o->include_origin)
		appendStringInfo(out, "%s\"origin\":%s%u,%s", o->ht, o->sp, txn->origin_id, o->nl);
	cat(out, o->ht, "\"change\":", o->sp, "[");
	if (o->write_in_chunks)
		OutputPluginWrite(ctx, true);
}

void
v1_commit(LogicalDecodingContext *ctx, DecoderState *st, ReorderBufferTXN *txn, XLogRecPtr commit_lsn)
{
	const Options *o = &st->opt;

	if (o->write_in_chunks)
		OutputPluginPrepareWrite(ctx, true);
	else
		app(ctx->out, o->nl);
	cat(ctx->out, o->ht, "]", o->nl, "}");
	OutputPluginWrite(ctx, true);
}

/* one of the column lists of a tuple: header, then entries separated by "," + sp */
static void
list_open(StringInfo out, const Options *o, int ntabs, const char *name)
{
	tabs(out, o, ntabs);
	cat(out, "\"", name, "\":", o->sp, "[");
}

static inline void
sep(StringInfo out, const Options *o, int k)
{
	if (k > 0)
	{
		appendStringInfoCharMacro(out, ',');
		app(out, o->sp);
	}
}

/* What a per-column array of a format-1 change lists, one element per emitted column. */
enum ColumnField
{
	COL_NAME, COL_TYPE, COL_TYPE_OID, COL_POSITION, COL_OPTIONAL, COL_DEFAULT
};

static void
column_list(StringInfo out, const Options *o, int depth, const char *name, const RelInfo *ri,
			const int *emit, int n, ColumnField field)
{
	list_open(out, o, depth, name);
	for (int k = 0; k < n; k++)
	{
		const AttrInfo *a = &ri->attrs[emit[k]];

		sep(out, o, k);
		switch (field)
		{
			case COL_NAME:
				app(out, a->name_json);
				break;
			case COL_TYPE:
				app(out, a->type_v1_col);
				break;
			case COL_TYPE_OID:
				append_uint(out, a->typeoid_v1);
				break;
			case COL_POSITION:
				append_uint(out, (uint32) a->attnum);
				break;
			case COL_OPTIONAL:
				app(out, a->notnull ? "false" : "true");
				break;
			case COL_DEFAULT:
				app(out, a->default_json);
				break;
		}
	}
	cat(out, "],", o->nl);
}

static void
write_tuple(StringInfo out, DecoderState *st, RelInfo *ri, Relation rel, HeapTuple tuple,
			Bitmapset *bs, bool replident, bool addcomma)
{
	const Options *o = &st->opt;
	TupleDesc	desc = RelationGetDescr(rel);
	Datum	   *values = (Datum *) palloc(desc->natts * sizeof(Datum));
	bool	   *nulls = (bool *) palloc(desc->natts * sizeof(bool));
	int		   *emit = (int *) palloc(desc->natts * sizeof(int));
	int			n = 0;

	heap_deform_tuple(tuple, desc, values, nulls);
	for (int i = 0; i < desc->natts; i++)
	{
		AttrInfo   *a = &ri->attrs[i];

		if (a->skip)
			continue;
		if (bs != NULL && !bms_is_member(a->attnum - FirstLowInvalidHeapAttributeNumber, bs))
			continue;
		if (nulls[i] && replident)
			continue;
		if (!nulls[i] && a->isvarlena && VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(values[i])))
			continue;			/* unchanged TOAST value */
		emit[n++] = i;
	}

	/* names */
	if (replident)
	{
		tabs(out, o, 3);
		cat(out, "\"oldkeys\":", o->sp, "{", o->nl);
	}
	int			depth = replident ? 4 : 3;

	column_list(out, o, depth, replident ? "keynames" : "columnnames", ri, emit, n, COL_NAME);
	if (o->include_types)
		column_list(out, o, depth, replident ? "keytypes" : "columntypes", ri, emit, n, COL_TYPE);
	if (o->include_type_oids)
		column_list(out, o, depth, replident ? "keytypeoids" : "columntypeoids", ri, emit, n, COL_TYPE_OID);
	if (!replident && o->include_column_positions)
		column_list(out, o, 3, "columnpositions", ri, emit, n, COL_POSITION);
	/* wal2json fills this list only when types are included */
	if (!replident && o->include_not_null)
		column_list(out, o, 3, "columnoptionals", ri, emit, o->include_types ? n : 0, COL_OPTIONAL);
	if (!replident && o->include_default)
		column_list(out, o, 3, "columndefaults", ri, emit, n, COL_DEFAULT);

	list_open(out, o, replident ? 4 : 3, replident ? "keyvalues" : "columnvalues");
	for (int k = 0; k < n; k++)
	{
		int			i = emit[k];
		AttrInfo   *a = &ri->attrs[i];

		sep(out, o, k);
		if (nulls[i])
			append_bytes(out, "null", 4);
		else
			write_value(out, values[i], a->cat_v1, a->kind, &a->outfn, a->isvarlena);
	}
	if (replident)
	{
		cat(out, "]", o->nl);
		tabs(out, o, 3);
		cat(out, "}", o->nl);
	}
	else
		cat(out, addcomma ? "]," : "]", o->nl);
}

/* One array of the "pk" object: a field of each key column (bs: the key's columns, NULL: all). */
static void
pk_list(StringInfo out, const Options *o, const char *name, const RelInfo *ri, Bitmapset *bs,
		char *AttrInfo::*field, bool filled)
{
	int			k = 0;

	list_open(out, o, 4, name);
	for (int i = 0; filled && i < ri->natts; i++)
	{
		const AttrInfo *a = &ri->attrs[i];

		if (a->skip || (bs != NULL && !bms_is_member(a->attnum - FirstLowInvalidHeapAttributeNumber, bs)))
			continue;
		sep(out, o, k++);
		app(out, a->*field);
	}
}

static void
write_pk(StringInfo out, DecoderState *st, RelInfo *ri, Bitmapset *bs, bool addcomma)
{
	const Options *o = &st->opt;

	tabs(out, o, 3);
	cat(out, "\"pk\":", o->sp, "{", o->nl);
	pk_list(out, o, "pknames", ri, bs, &AttrInfo::name_json, true);
	cat(out, "],", o->nl);
	/* wal2json writes the types' array even without types, empty */
	pk_list(out, o, "pktypes", ri, bs, &AttrInfo::type_v1_pk, o->include_types);
	cat(out, "]", o->nl);
	tabs(out, o, 3);
	cat(out, addcomma ? "}," : "}", o->nl);
}

void
v1_change(LogicalDecodingContext *ctx, DecoderState *st, ReorderBufferTXN *txn, Relation rel, RelInfo *ri,
		  ReorderBufferChange *change)
{
	const Options *o = &st->opt;


	ReorderBufferTupleBuf *newtuple = change->data.tp.newtuple;
	ReorderBufferTupleBuf *oldtuple = change->data.tp.oldtuple;

	switch (change->action)
	{
		case REORDER_BUFFER_CHANGE_INSERT:
			if (newtuple == NULL)
			{
				elog(WARNING, "no tuple data for INSERT in table \"%s\"", ri->tablename);
				return;
			}
			break;
		case REORDER_BUFFER_CHANGE_UPDATE:
		case REORDER_BUFFER_CHANGE_DELETE:
			if (!ri->has_replidindex && ri->relreplident != REPLICA_IDENTITY_FULL)
			{
				elog(WARNING, "table \"%s\" without primary key or replica identity is nothing", ri->tablename);
				return;
			}
			if (change->action == REORDER_BUFFER_CHANGE_UPDATE && newtuple == NULL)
			{
				elog(WARNING, "no tuple data for UPDATE in table \"%s\"", ri->tablename);
				return;
			}
			if (change->action == REORDER_BUFFER_CHANGE_DELETE && oldtuple == NULL)
			{
				elog(WARNING, "no tuple data for DELETE in table \"%s\"", ri->tablename);
				return;
			}
			break;
		default:
			return;
	}

	st->nr_changes++;
	if (o->write_in_chunks)
		OutputPluginPrepareWrite(ctx, true);
	StringInfo	out = ctx->out;

	if (!o->write_in_chunks)
		app(out, o->nl);
	tabs(out, o, 2);
	if (st->nr_changes > 1)
		appendStringInfoCharMacro(out, ',');
	cat(out, "{", o->nl);
	tabs(out, o, 3);
	switch (change->action)
	{
		case REORDER_BUFFER_CHANGE_INSERT: cat(out, "\"kind\":", o->sp, "\"insert\",", o->nl); break;
		case REORDER_BUFFER_CHANGE_UPDATE: cat(out, "\"kind\":", o->sp, "\"update\",", o->nl); break;
		default: cat(out, "\"kind\":", o->sp, "\"delete\",", o->nl); break;
	}
	if (o->include_schemas)
	{
		tabs(out, o, 3);
		cat(out, "\"schema\":", o->sp);
		app(out, ri->schema_json);
		cat(out, ",", o->nl);
	}
	tabs(out, o, 3);
	cat(out, "\"table\":", o->sp);
	app(out, ri->table_json);
	cat(out, ",", o->nl);

	/* wal2json 2.5 format 1 writes "pk" only under REPLICA IDENTITY DEFAULT with a key */
	bool		with_pk = o->include_pk && ri->has_replidindex &&
		ri->relreplident == REPLICA_IDENTITY_DEFAULT;

	switch (change->action)
	{
		case REORDER_BUFFER_CHANGE_INSERT:
			write_tuple(out, st, ri, rel, &newtuple->tuple, NULL, false, with_pk);
			if (with_pk)
				write_pk(out, st, ri, ri->pk_bs, false);
			break;
		case REORDER_BUFFER_CHANGE_UPDATE:
			write_tuple(out, st, ri, rel, &newtuple->tuple, NULL, false, true);
			if (with_pk)
				write_pk(out, st, ri, ri->pk_bs, true);
			if (oldtuple == NULL)
				write_tuple(out, st, ri, rel, &newtuple->tuple, ri->ri_bs, true, false);
			else
				write_tuple(out, st, ri, rel, &oldtuple->tuple, NULL, true, false);
			break;
		default:
			if (with_pk)
				write_pk(out, st, ri, ri->pk_bs, true);
			write_tuple(out, st, ri, rel, &oldtuple->tuple, ri->ri_bs, true, false);
			break;
	}
	tabs(out, o, 2);
	appendStringInfoChar(out, '}');
	if (o->write_in_chunks)
		OutputPluginWrite(ctx, true);
}

void
v1_message(LogicalDecodingContext *ctx, DecoderState *st, ReorderBufferTXN *txn, XLogRecPtr lsn,
		   bool transactional, const char *prefix, Size sz, const char *content)
{
	const Options *o = &st->opt;

	if (o->write_in_chunks || !transactional)
		OutputPluginPrepareWrite(ctx, true);
	if (transactional)
		st->nr_changes++;
	StringInfo	out = ctx->out;

	if (!o->write_in_chunks && transactional)
		app(out, o->nl);
	if (!transactional)
		appendStringInfo(out, "{%s%s\"change\":%s[%s", o->nl, o->ht, o->sp, o->nl);
	tabs(out, o, 2);
	/*
	 * wal2json 2.5 also writes this comma for a non-transactional message that follows a
	 * transaction with changes ({"change":[,{...), which is invalid JSON; we do not (README).
	 */
	if (transactional && st->nr_changes > 1)
		appendStringInfoCharMacro(out, ',');
	cat(out, "{", o->nl);
	tabs(out, o, 3);
	appendStringInfo(out, "\"kind\":%s\"message\",%s", o->sp, o->nl);
	tabs(out, o, 3);
	appendStringInfo(out, "\"transactional\":%s%s,%s", o->sp, transactional ? "true" : "false", o->nl);
	tabs(out, o, 3);
	appendStringInfo(out, "\"prefix\":%s", o->sp);
	json_escape_cstr(out, prefix);
	cat(out, ",", o->nl);
	tabs(out, o, 3);
	appendStringInfo(out, "\"content\":%s", o->sp);
	write_message_content(out, o, prefix, content, sz);
	app(out, o->nl);
	tabs(out, o, 2);
	appendStringInfoChar(out, '}');
	if (!transactional)
	{
		app(out, o->nl);
		tabs(out, o, 1);
		appendStringInfo(out, "]%s}", o->nl);
	}
	if (o->write_in_chunks || !transactional)
		OutputPluginWrite(ctx, true);
}

}							/* namespace outbox_decoder */
