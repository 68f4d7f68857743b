/*
 * Per-relation cache: column names, rendered type names, output functions, defaults, key
 * bitmaps and the table filter decision, computed once per relation and option set, and
 * invalidated by relcache (and type/namespace syscache) callbacks, so DDL decoded in the stream
 * (ALTER TABLE ...) is seen by the next change.
 */
#include "decoder.h"

extern "C" {
#include "access/tupdesc.h"
#include "catalog/pg_attrdef.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/relcache.h"
#include "utils/syscache.h"
}

namespace outbox_decoder {

/* The state of the decoding context that is alive in this backend, or NULL. */
static DecoderState *live_state = NULL;
static bool callbacks_registered = false;

static void
invalidate_all()
{
	HASH_SEQ_STATUS seq;
	RelInfo    *ri;

	if (live_state == NULL || live_state->relcache == NULL)
		return;
	hash_seq_init(&seq, live_state->relcache);
	while ((ri = (RelInfo *) hash_seq_search(&seq)) != NULL)
		ri->valid = false;
}

static void
relcache_cb(Datum arg, Oid relid)
{
	if (live_state == NULL || live_state->relcache == NULL)
		return;
	if (relid == InvalidOid)
	{
		invalidate_all();
		return;
	}
	RelInfo    *ri = (RelInfo *) hash_search(live_state->relcache, &relid, HASH_FIND, NULL);

	if (ri != NULL)
		ri->valid = false;
}

static void
syscache_cb(Datum arg, int cacheid, uint32 hashvalue)
{
	invalidate_all();
}

/* the decoding context's memory is going away: forget the state */
static void
state_gone(void *arg)
{
	if (live_state == (DecoderState *) arg)
		live_state = NULL;
}

void
relcache_init(DecoderState *st)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(RelInfo);
	ctl.hcxt = st->cache_cxt;
	st->relcache = hash_create("outbox_decoder relation cache", 128, &ctl,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	MemoryContextCallback *cb = (MemoryContextCallback *)
		MemoryContextAllocZero(st->cache_cxt, sizeof(MemoryContextCallback));

	cb->func = state_gone;
	cb->arg = st;
	MemoryContextRegisterResetCallback(st->cache_cxt, cb);
	live_state = st;

	if (!callbacks_registered)
	{
		CacheRegisterRelcacheCallback(relcache_cb, (Datum) 0);
		CacheRegisterSyscacheCallback(TYPEOID, syscache_cb, (Datum) 0);
		CacheRegisterSyscacheCallback(NAMESPACEOID, syscache_cb, (Datum) 0);
		callbacks_registered = true;
	}
}

static char *
json_of(const char *s)
{
	StringInfoData b;

	initStringInfo(&b);
	json_escape_cstr(&b, s);
	return b.data;
}

/* wal2json's rule: a quoted identifier from format_type is written as is (unless an array) */
static char *
render_type(const char *type_str, bool array_rule)
{
	size_t		len = strlen(type_str);

	if (type_str[0] == '"' && (!array_rule || type_str[len - 1] != ']'))
		return pstrdup(type_str);
	return json_of(type_str);
}

static char *
typname_of(Oid typid)
{
	HeapTuple	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for type %u", typid);
	char	   *r = pstrdup(NameStr(((Form_pg_type) GETSTRUCT(tup))->typname));

	ReleaseSysCache(tup);
	return r;
}

static void
build_attr(DecoderState *st, Relation rel, Form_pg_attribute att, AttrInfo *a)
{
	const Options *o = &st->opt;
	Oid			typoutput;
	bool		typisvarlena;

	a->skip = att->attisdropped || att->attnum < 0;
	if (a->skip)
		return;
	a->attnum = att->attnum;
	a->atttypid = att->atttypid;
	a->isvarlena = (att->attlen == -1);
	a->notnull = att->attnotnull;
	a->name_json = json_of(NameStr(att->attname));

	getTypeOutputInfo(att->atttypid, &typoutput, &typisvarlena);
	fmgr_info_cxt(typoutput, &a->outfn, CurrentMemoryContext);
	a->kind = output_kind_for(typoutput);
	a->cat_v2 = category_for_type(att->atttypid);
	a->cat_v1 = a->cat_v2;
	a->typeoid_v1 = att->atttypid;

	HeapTuple	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(att->atttypid));

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for type %u", att->atttypid);
	Form_pg_type tf = (Form_pg_type) GETSTRUCT(tup);
	bool		is_domain = (tf->typtype == TYPTYPE_DOMAIN);
	Oid			basetype = tf->typbasetype;
	int32		basetypmod = tf->typtypmod;
	char	   *own_typname = pstrdup(NameStr(tf->typname));

	ReleaseSysCache(tup);

	if (o->include_types)
	{
		/* format 1 */
		char	   *t1;

		if (is_domain && o->include_domain_data_type)
		{
			a->typeoid_v1 = basetype;
			a->cat_v1 = category_for_type(basetype);
			if (o->include_typmod)
				t1 = format_type_with_typemod(basetype, basetypmod);
			else
				t1 = typname_of(basetype);
		}
		else if (o->include_typmod)
			t1 = TextDatumGetCString(DirectFunctionCall2(format_type,
														 ObjectIdGetDatum(att->atttypid),
														 Int32GetDatum(att->atttypmod)));
		else
			t1 = own_typname;
		a->type_v1_col = render_type(t1, true);
		a->type_v1_pk = render_type(t1, false);

		/* format 2 */
		char	   *t2;

		if (is_domain && o->include_domain_data_type)
			t2 = format_type_with_typemod(basetype, basetypmod);
		else
			t2 = format_type_with_typemod(att->atttypid, att->atttypmod);
		a->type_v2 = render_type(t2, true);
	}

	/* format 2 writes this for the column on every row: one copy, with its length known */
	StringInfoData head;

	initStringInfo(&head);
	appendStringInfo(&head, "{\"name\":%s", a->name_json);
	if (o->include_types)
		appendStringInfo(&head, ",\"type\":%s", a->type_v2);
	if (o->include_type_oids)
		appendStringInfo(&head, ",\"typeoid\":%d", (int) a->atttypid);
	a->head_v2 = head.data;
	a->head_v2_len = head.len;

	if (o->include_default)
	{
		a->default_json = pstrdup("null");
		if (att->atthasdef && att->attgenerated == '\0')
		{
			TupleConstr *c = RelationGetDescr(rel)->constr;

			if (c != NULL)
			{
				for (int i = 0; i < c->num_defval; i++)
				{
					if (c->defval[i].adnum == att->attnum && c->defval[i].adbin != NULL)
					{
						char	   *expr = TextDatumGetCString(
							DirectFunctionCall2(pg_get_expr,
												CStringGetTextDatum(c->defval[i].adbin),
												ObjectIdGetDatum(RelationGetRelid(rel))));

						/* wal2json writes the expression unescaped; we escape it (README) */
						a->default_json = json_of(expr);
						break;
					}
				}
			}
		}
	}
}

static void
build_relinfo(DecoderState *st, Relation rel, RelInfo *ri)
{
	TupleDesc	desc = RelationGetDescr(rel);
	MemoryContext old;

	ri->cxt = AllocSetContextCreate(st->cache_cxt, "outbox_decoder relation",
									ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(ri->cxt);

	ri->schemaname = get_namespace_name(RelationGetNamespace(rel));
	ri->tablename = pstrdup(RelationGetRelationName(rel));
	ri->schema_json = json_of(ri->schemaname);
	ri->table_json = json_of(ri->tablename);
	ri->selected = table_selected(&st->opt, ri->schemaname, ri->tablename);
	ri->is_outbox_events = strcmp(ri->schemaname, OUTBOX_SCHEMA) == 0 &&
		strcmp(ri->tablename, OUTBOX_EVENTS_TABLE) == 0;
	ri->aggregate_id_att = -1;

	/* sets rd_pkindex and rd_replidindex */
	list_free(RelationGetIndexList(rel));
	ri->has_pkindex = OidIsValid(rel->rd_pkindex);
	ri->has_replidindex = OidIsValid(rel->rd_replidindex);
	ri->relreplident = rel->rd_rel->relreplident;
	ri->pk_bs = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_PRIMARY_KEY);
	ri->ri_bs = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_IDENTITY_KEY);

	ri->natts = desc->natts;
	ri->attrs = (AttrInfo *) palloc0(sizeof(AttrInfo) * Max(desc->natts, 1));
	if (ri->selected || ri->is_outbox_events)
	{
		for (int i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			build_attr(st, rel, att, &ri->attrs[i]);
			if (!ri->attrs[i].skip && strcmp(NameStr(att->attname), "aggregate_id") == 0)
				ri->aggregate_id_att = i;
		}
	}
	MemoryContextSwitchTo(old);
	ri->valid = true;
}

RelInfo *
relcache_lookup(DecoderState *st, Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	bool		found;
	RelInfo    *ri = (RelInfo *) hash_search(st->relcache, &relid, HASH_ENTER, &found);

	st->last_rel = ri;		/* relcache_get() tries it first next time */
	if (found && ri->valid && ri->natts == RelationGetDescr(rel)->natts)
		return ri;
	if (found && ri->cxt != NULL)
		MemoryContextDelete(ri->cxt);
	ri->cxt = NULL;
	ri->valid = false;
	build_relinfo(st, rel, ri);
	return ri;
}

}							/* namespace outbox_decoder */
