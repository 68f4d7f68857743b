/*
 * outbox_decoder: shared declarations.
 *
 * Every file includes this header first.  PostgreSQL headers live inside extern "C" and come
 * before any C++ header (elog.h and port.h define macros that clash with the STL).
 *
 * Rules kept by every file (see README.md, "C++ inside PostgreSQL"):
 *  - PostgreSQL reports errors with longjmp.  No frame that calls a PostgreSQL function that can
 *    elog(ERROR) holds a C++ object with a non-trivial destructor.  All memory is palloc'd in
 *    PostgreSQL memory contexts; nothing is new'd.
 *  - Every callback PostgreSQL calls goes through guarded() (plugin.cpp), which catches any C++
 *    exception and turns it into an ereport(ERROR) after the C++ scope has closed.
 */
#ifndef OUTBOX_DECODER_H
#define OUTBOX_DECODER_H

extern "C" {
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "replication/logical.h"
#include "replication/output_plugin.h"
#include "replication/reorderbuffer.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/rel.h"
}

/* The names shared with the extension and the relay (plain #defines): OUTBOX_SCHEMA, ... */
#include "outbox_wire.h"

namespace outbox_decoder {

/* ---------------- options (options.cpp) ---------------- */
struct TableSel
{
	char	   *schemaname;
	char	   *tablename;
	bool		allschemas;
	bool		alltables;
};

struct Options
{
	bool		include_transaction;
	bool		include_xids;
	bool		include_timestamp;
	bool		include_origin;
	bool		include_schemas;
	bool		include_types;
	bool		include_type_oids;
	bool		include_typmod;
	bool		include_domain_data_type;
	bool		include_column_positions;
	bool		include_not_null;
	bool		include_default;
	bool		include_pk;
	bool		include_lsn;
	bool		pretty_print;
	bool		write_in_chunks;

	bool		act_insert;
	bool		act_update;
	bool		act_delete;
	bool		act_truncate;

	List	   *filter_origins;		/* of Oid */
	List	   *filter_tables;		/* of TableSel* */
	List	   *add_tables;			/* of TableSel* */
	List	   *filter_msg_prefixes;	/* of char* */
	List	   *add_msg_prefixes;	/* of char* */

	int			format_version;

	/* outbox_decoder extensions */
	bool		outbox;				/* the preset was asked for (last value) */
	bool		skip_empty_xacts;	/* write nothing for a txn with no written change */
	bool		shard_enabled;
	uint32		shard_index;
	uint32		shard_count;
	uint32		max_outbox_message_bytes;	/* larger `outbox` messages: the oversized marker */

	/* pretty-print strings: "" or "\t", "\n", " " */
	const char *ht;
	const char *nl;
	const char *sp;
};

void		options_set_defaults(Options *o);
void		options_parse(Options *o, List *defelems);	/* may ereport(ERROR) */
bool		table_selected(const Options *o, const char *schemaname, const char *tablename);
bool		message_prefix_selected(const Options *o, const char *prefix);
/* An `outbox` message that is written as the oversized marker (common/outbox_wire.h). */
inline bool
message_oversized(const Options *o, const char *prefix, Size sz)
{
	return sz > o->max_outbox_message_bytes && strcmp(prefix, OUTBOX_MESSAGE_PREFIX) == 0;
}

/* ---------------- JSON output (jsonout.cpp) ---------------- */
/* appendBinaryStringInfo, without its out-of-line call when the bytes fit: most appends of a
 * line are a few bytes (a key, a column's head, a short value) */
inline void
append_bytes(StringInfo out, const char *s, int n)
{
	if (likely(out->len + n < out->maxlen))
	{
		memcpy(out->data + out->len, s, n);
		out->len += n;
		out->data[out->len] = '\0';
	}
	else
		appendBinaryStringInfo(out, s, n);
}

/* Same bytes as PostgreSQL's escape_json() on a NUL-terminated string. */
void		json_escape(StringInfo out, const char *s, size_t len);
inline void json_escape_cstr(StringInfo out, const char *s) { json_escape(out, s, strlen(s)); }
/* Escape message content as a JSON string: NUL as \u0000; in a UTF-8 database, bytes that are
 * not valid UTF-8 as \u00XX; in any other, bytes >= 0x80 copied (the database's text). */
void		json_escape_bytes(StringInfo out, const char *s, size_t len);
void		append_lsn(StringInfo out, XLogRecPtr lsn);
/* The value of a message's "content": its escaped bytes, or null and the oversized marker. */
void		write_message_content(StringInfo out, const Options *o, const char *prefix,
								  const char *content, Size sz);

/* How a value is written (decided by the column's type oid, like wal2json). */
enum ValueCategory : uint8
{
	CAT_NUMBER,					/* int2 int4 int8 oid float4 float8 numeric: bare, NaN/Inf -> null */
	CAT_BOOL,					/* true / false */
	CAT_BYTEA,					/* string without the \x prefix */
	CAT_STRING					/* escaped string */
};

/* How the text of a value is produced (decided by the output function). */
enum OutputKind : uint8
{
	OUT_GENERIC,				/* call the output function */
	OUT_INT2, OUT_INT4, OUT_INT8,
	OUT_BOOL,
	OUT_TEXTLIKE,				/* text, varchar, bpchar, json: the varlena bytes are the text */
	OUT_BYTEA					/* byteaout: hex fast path when bytea_output = hex */
};

ValueCategory category_for_type(Oid typid);
OutputKind	output_kind_for(Oid typoutput);
/* Write one non-null value; value may be toasted (not on-disk external). */
void		write_value(StringInfo out, Datum value, ValueCategory cat, OutputKind kind,
						FmgrInfo *outfn, bool isvarlena);

/* ---------------- relation cache (relcache.cpp) ---------------- */
struct AttrInfo
{
	bool		skip;				/* dropped or system column */
	bool		isvarlena;			/* attlen == -1 */
	bool		notnull;
	AttrNumber	attnum;
	Oid			atttypid;
	ValueCategory cat_v2;		/* by atttypid */
	ValueCategory cat_v1;		/* by atttypid, or base type with include-domain-data-type */
	OutputKind	kind;
	Oid			typeoid_v1;			/* printed by include-type-oids in format 1 */
	FmgrInfo	outfn;
	char	   *name_json;			/* escaped, quoted column name */
	char	   *type_v1_col;		/* rendered type for format 1 column lists (JSON) */
	char	   *type_v1_pk;			/* rendered type for format 1 "pk" */
	char	   *type_v2;			/* rendered type for format 2 */
	char	   *default_json;		/* "\"expr\"" or "null" (include-default only) */
	char	   *head_v2;			/* format 2: {"name":..[,"type":..][,"typeoid":..] */
	int			head_v2_len;
};

struct RelInfo
{
	Oid			relid;				/* hash key */
	bool		valid;
	MemoryContext cxt;
	bool		selected;			/* passes filter-tables/add-tables */
	char	   *schemaname;
	char	   *tablename;
	char	   *schema_json;
	char	   *table_json;
	int			natts;
	AttrInfo   *attrs;
	Bitmapset  *pk_bs;				/* INDEX_ATTR_BITMAP_PRIMARY_KEY */
	Bitmapset  *ri_bs;				/* INDEX_ATTR_BITMAP_IDENTITY_KEY */
	bool		has_pkindex;
	bool		has_replidindex;
	char		relreplident;
	bool		is_outbox_events;	/* outbox.events */
	int			aggregate_id_att;	/* index into attrs, or -1 */
};

struct DecoderState;
void		relcache_init(DecoderState *st);
/* relcache_get() (below) when the last answer does not do */
RelInfo    *relcache_lookup(DecoderState *st, Relation rel);

/* ---------------- sharding (shard.cpp) ---------------- */
uint64		fnv1a64(const char *s, size_t len);
/* shard of a text value; isnull -> 0 */
uint32		shard_of(const char *s, size_t len, bool isnull, uint32 n);
/* find top-level "aggregate_id" string in a JSON object; returns false when absent/null/not string */
bool		json_find_aggregate_id(const char *s, size_t len, StringInfo out);
bool		change_in_shard(DecoderState *st, RelInfo *ri, Relation rel, ReorderBufferChange *change);
bool		message_in_shard(DecoderState *st, const char *content, Size size);

/* ---------------- state ---------------- */
struct DecoderState
{
	Options		opt;
	MemoryContext change_cxt;		/* reset after every change */
	MemoryContext cache_cxt;		/* parent of per-relation contexts */
	HTAB	   *relcache;
	RelInfo    *last_rel;			/* the last relcache_get() answer (entries never move) */
	uint64		nr_changes;			/* format 1: changes written in this txn */
	bool		begin_written;		/* skip_empty_xacts: B line written for this txn */
	int			changes_since_progress;
	/* format 2: the transaction's metadata fields (xid, timestamp, origin), rendered once per
	 * transaction for its B, row and C lines; valid from the first line after begin */
	StringInfoData txn_meta;
	bool		txn_meta_valid;
};

/*
 * The relation's cache entry, built when missing or invalidated.  Changes come in runs on one
 * relation: the last answer saves the hash lookup.  It is checked as a hash hit is (the
 * invalidation callbacks clear valid), and dynahash never moves or frees an entry, none being
 * removed.
 */
inline RelInfo *
relcache_get(DecoderState *st, Relation rel)
{
	RelInfo    *ri = st->last_rel;

	if (likely(ri != NULL && ri->relid == RelationGetRelid(rel) && ri->valid &&
			   ri->natts == RelationGetDescr(rel)->natts))
		return ri;
	return relcache_lookup(st, rel);
}

/* format 2 (format2.cpp) */
void		v2_begin(LogicalDecodingContext *ctx, DecoderState *st, ReorderBufferTXN *txn);
void		v2_commit(LogicalDecodingContext *ctx, DecoderState *st, ReorderBufferTXN *txn, XLogRecPtr commit_lsn);
/* ri: the change's relation, selected_relation() */
void		v2_change(LogicalDecodingContext *ctx, DecoderState *st, ReorderBufferTXN *txn, Relation rel, RelInfo *ri,
					  ReorderBufferChange *change);
void		v2_message(LogicalDecodingContext *ctx, DecoderState *st, ReorderBufferTXN *txn, XLogRecPtr lsn,
					   bool transactional, const char *prefix, Size sz, const char *content);
void		v2_truncate(LogicalDecodingContext *ctx, DecoderState *st, ReorderBufferTXN *txn, int n,
						Relation rels[], ReorderBufferChange *change);

/* format 1 (format1.cpp) */
void		v1_begin(LogicalDecodingContext *ctx, DecoderState *st, ReorderBufferTXN *txn);
void		v1_commit(LogicalDecodingContext *ctx, DecoderState *st, ReorderBufferTXN *txn, XLogRecPtr commit_lsn);
void		v1_change(LogicalDecodingContext *ctx, DecoderState *st, ReorderBufferTXN *txn, Relation rel, RelInfo *ri,
					  ReorderBufferChange *change);
void		v1_message(LogicalDecodingContext *ctx, DecoderState *st, ReorderBufferTXN *txn, XLogRecPtr lsn,
					   bool transactional, const char *prefix, Size sz, const char *content);

/* helpers shared by the formats */
inline bool
action_selected(const Options *o, ReorderBufferChangeType a)
{
	switch (a)
	{
		case REORDER_BUFFER_CHANGE_INSERT: return o->act_insert;
		case REORDER_BUFFER_CHANGE_UPDATE: return o->act_update;
		case REORDER_BUFFER_CHANGE_DELETE: return o->act_delete;
		default: return true;
	}
}

/* The relation of a change the options select (its action and its table), or NULL. */
inline RelInfo *
selected_relation(DecoderState *st, Relation rel, ReorderBufferChange *change)
{
	if (!action_selected(&st->opt, change->action))
		return NULL;
	RelInfo    *ri = relcache_get(st, rel);

	return ri->selected ? ri : NULL;
}

}							/* namespace outbox_decoder */

#endif
