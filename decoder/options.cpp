/*
 * Option parsing: the same option names, defaults, value syntax and error texts as wal2json 2.5,
 * plus `outbox` (preset) and `shard` (i/n).
 */
#include "decoder.h"

extern "C" {
#include <ctype.h>
#include "utils/builtins.h"
#include "utils/guc.h"
}

namespace outbox_decoder {

static TableSel *
all_tables_sel()
{
	TableSel   *t = (TableSel *) palloc0(sizeof(TableSel));

	t->allschemas = true;
	t->alltables = true;
	return t;
}

void
options_set_defaults(Options *o)
{
	memset(o, 0, sizeof(*o));
	o->include_transaction = true;
	o->include_schemas = true;
	o->include_types = true;
	o->include_typmod = true;
	o->act_insert = o->act_update = o->act_delete = o->act_truncate = true;
	o->add_tables = lappend(NIL, all_tables_sel());
	o->format_version = 1;
	o->max_outbox_message_bytes = OUTBOX_MESSAGE_MAX_BYTES_DEFAULT;
	o->ht = o->nl = o->sp = "";
}

/*
 * Split a comma-separated list like wal2json: whitespace around elements is skipped, a
 * backslash makes the next character part of the element (the backslash is kept), a space
 * inside an element is a syntax error, and so is an empty element unless allow_empty (wal2json
 * reads origin lists with atoi, which takes "" as 0); an empty string is an empty list.
 * Modifies raw.
 */
static bool
split_list(char *raw, List **out, bool allow_empty = false)
{
	char	   *p = raw;

	while (isspace((unsigned char) *p))
		p++;
	if (*p == '\0')
		return true;
	for (;;)
	{
		char	   *start = p;
		char	   *end;

		while (*p && *p != ',' && !isspace((unsigned char) *p))
		{
			if (*p == '\\')
				p++;
			p++;
		}
		end = p;
		if (start == end && !allow_empty)
			return false;
		while (isspace((unsigned char) *p))
			p++;
		bool		last;

		if (*p == ',')
		{
			p++;
			while (isspace((unsigned char) *p))
				p++;
			last = false;
		}
		else if (*p == '\0')
			last = true;
		else
			return false;
		*end = '\0';
		*out = lappend(*out, pstrdup(start));
		if (last)
			return true;
	}
}

/* remove backslashes in place (each escapes the following character) */
static void
unescape_in_place(char *s)
{
	char	   *w = s;

	for (char *r = s; *r; r++)
	{
		if (*r == '\\')
		{
			r++;
			if (*r == '\0')
				break;
		}
		*w++ = *r;
	}
	*w = '\0';
}

/* "schema.table" elements -> TableSel list; false on an element without an unescaped dot */
static bool
parse_tables(char *raw, List **out)
{
	List	   *elems = NIL;
	ListCell   *lc;

	if (!split_list(raw, &elems))
		return false;
	foreach(lc, elems)
	{
		char	   *s = (char *) lfirst(lc);
		TableSel   *t = (TableSel *) palloc0(sizeof(TableSel));
		char	   *p = s;

		t->allschemas = (s[0] == '*' && s[1] == '.');
		/* find the first dot that is not escaped */
		while (*p && *p != '.')
		{
			if (*p == '\\' && p[1])
				p++;
			p++;
		}
		if (*p == '\0')
			return false;
		*p = '\0';
		char	   *tab = p + 1;

		t->alltables = (tab[0] == '*' && tab[1] == '\0');
		unescape_in_place(s);
		unescape_in_place(tab);
		t->schemaname = pstrdup(s);
		t->tablename = pstrdup(tab);
		*out = lappend(*out, t);
	}
	return true;
}

static bool
parse_oids(char *raw, List **out)
{
	List	   *elems = NIL;
	ListCell   *lc;

	if (!split_list(raw, &elems, true))
		return false;
	foreach(lc, elems)
		*out = lappend_oid(*out, (Oid) atoi((const char *) lfirst(lc)));
	return true;
}

static void
bad_value(DefElem *e, int code)
{
	ereport(ERROR,
			(errcode(code),
			 errmsg("could not parse value \"%s\" for parameter \"%s\"",
					strVal(e->arg), e->defname)));
}

static void
parse_bool_opt(DefElem *e, bool *target)
{
	if (e->arg == NULL)
		*target = true;
	else if (!parse_bool(strVal(e->arg), target))
		bad_value(e, ERRCODE_INVALID_PARAMETER_VALUE);
}

static void
apply_outbox_preset(Options *o)
{
	TableSel   *t = (TableSel *) palloc0(sizeof(TableSel));

	t->schemaname = pstrdup(OUTBOX_SCHEMA);
	t->tablename = pstrdup(OUTBOX_EVENTS_TABLE);
	o->format_version = 2;
	o->add_tables = lappend(NIL, t);
	o->add_msg_prefixes = lappend(NIL, pstrdup(OUTBOX_MESSAGE_PREFIX));
	o->act_insert = true;
	o->act_update = o->act_delete = o->act_truncate = false;
	o->include_xids = true;
	o->include_timestamp = true;
	o->include_types = false;
}

/* The boolean options: "name" alone means true, as in wal2json. */
static const struct
{
	const char *name;
	bool		Options::*field;
}			bool_options[] = {
	{"include-transaction", &Options::include_transaction},
	{"include-xids", &Options::include_xids},
	{"include-timestamp", &Options::include_timestamp},
	{"include-pk", &Options::include_pk},
	{"include-origin", &Options::include_origin},
	{"include-schemas", &Options::include_schemas},
	{"include-types", &Options::include_types},
	{"include-type-oids", &Options::include_type_oids},
	{"include-typmod", &Options::include_typmod},
	{"include-domain-data-type", &Options::include_domain_data_type},
	{"include-column-positions", &Options::include_column_positions},
	{"include-not-null", &Options::include_not_null},
	{"include-default", &Options::include_default},
	{"pretty-print", &Options::pretty_print},
	{"write-in-chunks", &Options::write_in_chunks},
	{"include-lsn", &Options::include_lsn},
};

static bool
parse_bool_option(Options *o, DefElem *e)
{
	for (const auto &b : bool_options)
	{
		if (strcmp(e->defname, b.name) != 0)
			continue;
		parse_bool_opt(e, &(o->*b.field));
		if (b.field == &Options::pretty_print && o->pretty_print)
		{
			o->ht = "\t";
			o->nl = "\n";
			o->sp = " ";
		}
		return true;
	}
	return false;
}

static void
parse_actions(Options *o, DefElem *e)
{
	List	   *acts = NIL;
	ListCell   *al;

	if (e->arg == NULL)
		return;
	if (!split_list(pstrdup(strVal(e->arg)), &acts))
		bad_value(e, ERRCODE_INVALID_NAME);
	o->act_insert = o->act_update = o->act_delete = o->act_truncate = false;
	foreach(al, acts)
	{
		const char *p = (const char *) lfirst(al);

		if (strcmp(p, "insert") == 0)
			o->act_insert = true;
		else if (strcmp(p, "update") == 0)
			o->act_update = true;
		else if (strcmp(p, "delete") == 0)
			o->act_delete = true;
		else if (strcmp(p, "truncate") == 0)
			o->act_truncate = true;
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("could not parse value \"%s\" for parameter \"%s\"",
							p, e->defname)));
	}
}

/* The list options: no value empties the list (add-tables: always starts from empty). */
static bool
parse_list_option(Options *o, DefElem *e)
{
	const char *n = e->defname;
	List	  **target;
	bool		(*parse) (char *, List **) = NULL;

	if (strcmp(n, "filter-origins") == 0)
		target = &o->filter_origins, parse = parse_oids;
	else if (strcmp(n, "filter-tables") == 0)
		target = &o->filter_tables, parse = parse_tables;
	else if (strcmp(n, "add-tables") == 0)
		target = &o->add_tables, parse = parse_tables;
	else if (strcmp(n, "filter-msg-prefixes") == 0)
		target = &o->filter_msg_prefixes;
	else if (strcmp(n, "add-msg-prefixes") == 0)
		target = &o->add_msg_prefixes;
	else
		return false;
	if (e->arg == NULL || strcmp(n, "add-tables") == 0)
		*target = NIL;
	if (e->arg != NULL &&
		!(parse ? parse(pstrdup(strVal(e->arg)), target) : split_list(pstrdup(strVal(e->arg)), target)))
		bad_value(e, ERRCODE_INVALID_NAME);
	return true;
}

static void
parse_format_version(Options *o, DefElem *e)
{
	if (e->arg == NULL)
		o->format_version = 2;
	else if (!parse_int(strVal(e->arg), &o->format_version, 0, NULL))
		bad_value(e, ERRCODE_INVALID_PARAMETER_VALUE);
	if (o->format_version > 2)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("client sent format_version=%d but we only support format %d or lower",
						o->format_version, 2)));
	if (o->format_version < 1)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("client sent format_version=%d but we only support format %d or higher",
						o->format_version, 1)));
}

static void
parse_max_message_bytes(Options *o, DefElem *e)
{
	int			v;

	/* above the ceiling, escaping (six bytes per byte at worst) could pass 1 GB again */
	if (e->arg == NULL || !parse_int(strVal(e->arg), &v, 0, NULL) ||
		v < 1 || v > OUTBOX_MESSAGE_MAX_BYTES_CEILING)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("could not parse value \"%s\" for parameter \"%s\"",
						e->arg ? strVal(e->arg) : "", e->defname),
				 errhint("Give a number of bytes from 1 to %d (default %d).",
						 OUTBOX_MESSAGE_MAX_BYTES_CEILING, OUTBOX_MESSAGE_MAX_BYTES_DEFAULT)));
	o->max_outbox_message_bytes = (uint32) v;
}

static void
parse_shard(Options *o, DefElem *e)
{
	const char *v = e->arg ? strVal(e->arg) : "";
	unsigned long i,
				c;
	char		extra;

	if (sscanf(v, "%lu/%lu%c", &i, &c, &extra) != 2 || c == 0 || c > 65536 || i >= c)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("could not parse value \"%s\" for parameter \"%s\"", v, e->defname),
				 errhint("Use shard=i/n with 0 <= i < n, for example shard=0/4.")));
	o->shard_enabled = true;
	o->shard_index = (uint32) i;
	o->shard_count = (uint32) c;
	o->skip_empty_xacts = true;
}

/* The options with a syntax or an effect of their own. */
static bool
parse_other_option(Options *o, DefElem *e)
{
	const char *n = e->defname;

	if (strcmp(n, "include-unchanged-toast") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("parameter \"%s\" was deprecated", n)));
	else if (strcmp(n, "actions") == 0)
		parse_actions(o, e);
	else if (strcmp(n, "format-version") == 0)
		parse_format_version(o, e);
	else if (strcmp(n, OUTBOX_DECODER_PRESET_OPTION) == 0)
	{
		parse_bool_opt(e, &o->outbox);
		if (o->outbox)
			apply_outbox_preset(o);
		o->skip_empty_xacts = o->outbox || o->shard_enabled;
	}
	else if (strcmp(n, OUTBOX_MESSAGE_MAX_BYTES_OPTION) == 0)
		parse_max_message_bytes(o, e);
	else if (strcmp(n, "shard") == 0)
		parse_shard(o, e);
	else
		return false;
	return true;
}

void
options_parse(Options *o, List *defelems)
{
	ListCell   *lc;

	foreach(lc, defelems)
	{
		DefElem    *e = (DefElem *) lfirst(lc);

		if (!parse_bool_option(o, e) && !parse_list_option(o, e) && !parse_other_option(o, e))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"%s\" = \"%s\" is unknown",
							e->defname, e->arg ? strVal(e->arg) : "(null)")));
	}

	if (o->outbox && o->format_version != 2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"" OUTBOX_DECODER_PRESET_OPTION "\" needs format-version 2"),
				 errhint("Leave out format-version: the outbox preset sets format-version 2.")));
	if (o->shard_enabled && o->format_version != 2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"shard\" needs format-version 2"),
				 errhint("Add format-version 2, or use the outbox preset (outbox 1).")));
}

static bool
sel_matches(List *l, const char *schemaname, const char *tablename)
{
	ListCell   *lc;

	foreach(lc, l)
	{
		TableSel   *t = (TableSel *) lfirst(lc);

		if ((t->allschemas || strcmp(t->schemaname, schemaname) == 0) &&
			(t->alltables || strcmp(t->tablename, tablename) == 0))
			return true;
	}
	return false;
}

bool
table_selected(const Options *o, const char *schemaname, const char *tablename)
{
	if (sel_matches(o->filter_tables, schemaname, tablename))
		return false;
	return sel_matches(o->add_tables, schemaname, tablename);
}

bool
message_prefix_selected(const Options *o, const char *prefix)
{
	ListCell   *lc;

	foreach(lc, o->filter_msg_prefixes)
		if (strcmp((const char *) lfirst(lc), prefix) == 0)
			return false;
	if (o->add_msg_prefixes != NIL)
	{
		foreach(lc, o->add_msg_prefixes)
			if (strcmp((const char *) lfirst(lc), prefix) == 0)
				return true;
		return false;
	}
	return true;
}

}							/* namespace outbox_decoder */
