/*
 * shard=i/n: an outbox event belongs to shard fnv1a64(aggregate_id as UTF-8 bytes) mod n;
 * a NULL or missing aggregate_id belongs to shard 0.
 */
#include "decoder.h"

extern "C" {
#include "access/sysattr.h"
#include "catalog/namespace.h"
#include "mb/pg_wchar.h"
}

namespace outbox_decoder {

uint64
fnv1a64(const char *s, size_t len)
{
	uint64		h = UINT64CONST(14695981039346656037);

	for (size_t i = 0; i < len; i++)
	{
		h ^= (unsigned char) s[i];
		h *= UINT64CONST(1099511628211);
	}
	return h;
}

/*
 * The hash is over UTF-8, which the relay hashes too (its slot recovery reads outbox.events with
 * client_encoding UTF8). In a database in another encoding a non-ASCII aggregate_id is converted
 * first, without raising an error (an ERROR here would stop the slot): bytes that do not convert
 * can only be a forged message's, which is hashed as it is and rejected by the relay anyway.
 */
static uint64
utf8_hash(const char *s, size_t len)
{
	static bool looked_up = false;
	static Oid	proc = InvalidOid;
	int			encoding = GetDatabaseEncoding();
	size_t		i;

	if (encoding == PG_UTF8 || encoding == PG_SQL_ASCII)
		return fnv1a64(s, len);
	for (i = 0; i < len && !IS_HIGHBIT_SET(s[i]); i++)
		;
	/* genuine ids have at most OUTBOX_AGGREGATE_ID_MAX bytes: no large buffer for forged ones */
	if (i == len || len > 4 * OUTBOX_AGGREGATE_ID_MAX)
		return fnv1a64(s, len);
	if (!looked_up)
	{
		proc = FindDefaultConversionProc(encoding, PG_UTF8);
		looked_up = true;
	}
	if (!OidIsValid(proc))
		return fnv1a64(s, len);

	int			destlen = (int) len * MAX_CONVERSION_GROWTH + 1;
	unsigned char *dest = (unsigned char *) palloc(destlen);
	int			converted = pg_do_encoding_conversion_buf(proc, encoding, PG_UTF8,
														  (unsigned char *) s, (int) len,
														  dest, destlen, true);
	uint64		h = converted == (int) len ? fnv1a64((const char *) dest, strlen((const char *) dest))
		: fnv1a64(s, len);

	pfree(dest);
	return h;
}

uint32
shard_of(const char *s, size_t len, bool isnull, uint32 n)
{
	if (isnull || n <= 1)
		return 0;
	return (uint32) (utf8_hash(s, len) % n);
}

/* ---- a tiny JSON scanner: enough to find a top-level "aggregate_id" string ---- */
namespace {

struct Scanner
{
	const char *p;
	const char *end;

	void ws() { while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++; }

	static int hexval(char c)
	{
		if (c >= '0' && c <= '9') return c - '0';
		if (c >= 'a' && c <= 'f') return c - 'a' + 10;
		if (c >= 'A' && c <= 'F') return c - 'A' + 10;
		return -1;
	}

	/* parse a string at p (on the quote); decoded UTF-8 into out when out != NULL */
	bool str(StringInfo out)
	{
		if (p >= end || *p != '"') return false;
		p++;
		while (p < end)
		{
			char		c = *p++;

			if (c == '"') return true;
			if (c != '\\')
			{
				if (out) appendStringInfoCharMacro(out, c);
				continue;
			}
			if (p >= end) return false;
			c = *p++;
			switch (c)
			{
				case '"': case '\\': case '/':
					if (out) appendStringInfoCharMacro(out, c);
					break;
				case 'b': if (out) appendStringInfoCharMacro(out, '\b'); break;
				case 'f': if (out) appendStringInfoCharMacro(out, '\f'); break;
				case 'n': if (out) appendStringInfoCharMacro(out, '\n'); break;
				case 'r': if (out) appendStringInfoCharMacro(out, '\r'); break;
				case 't': if (out) appendStringInfoCharMacro(out, '\t'); break;
				case 'u':
					{
						uint32		cp = 0;

						if (!hex4(&cp)) return false;
						if (cp >= 0xD800 && cp <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u')
						{
							uint32		lo = 0;

							p += 2;
							if (!hex4(&lo)) return false;
							if (lo >= 0xDC00 && lo <= 0xDFFF)
								cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
						}
						if (out) utf8(out, cp);
						break;
					}
				default:
					return false;
			}
		}
		return false;
	}

	bool hex4(uint32 *cp)
	{
		if (end - p < 4) return false;
		for (int i = 0; i < 4; i++)
		{
			int			v = hexval(p[i]);

			if (v < 0) return false;
			*cp = (*cp << 4) | (uint32) v;
		}
		p += 4;
		return true;
	}

	static void utf8(StringInfo out, uint32 cp)
	{
		if (cp < 0x80)
			appendStringInfoCharMacro(out, (char) cp);
		else if (cp < 0x800)
		{
			appendStringInfoCharMacro(out, (char) (0xC0 | (cp >> 6)));
			appendStringInfoCharMacro(out, (char) (0x80 | (cp & 0x3F)));
		}
		else if (cp < 0x10000)
		{
			appendStringInfoCharMacro(out, (char) (0xE0 | (cp >> 12)));
			appendStringInfoCharMacro(out, (char) (0x80 | ((cp >> 6) & 0x3F)));
			appendStringInfoCharMacro(out, (char) (0x80 | (cp & 0x3F)));
		}
		else
		{
			appendStringInfoCharMacro(out, (char) (0xF0 | (cp >> 18)));
			appendStringInfoCharMacro(out, (char) (0x80 | ((cp >> 12) & 0x3F)));
			appendStringInfoCharMacro(out, (char) (0x80 | ((cp >> 6) & 0x3F)));
			appendStringInfoCharMacro(out, (char) (0x80 | (cp & 0x3F)));
		}
	}

	/* skip any value (depth-limited, iterative over containers) */
	bool skip_value()
	{
		int			depth = 0;

		ws();
		do
		{
			ws();
			if (p >= end) return false;
			char		c = *p;

			if (c == '"')
			{
				if (!str(NULL)) return false;
			}
			else if (c == '{' || c == '[')
			{
				depth++;
				p++;
				continue;
			}
			else if (c == '}' || c == ']')
			{
				depth--;
				p++;
			}
			else if (c == ',' || c == ':')
			{
				p++;
				continue;
			}
			else
			{
				while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' &&
					   *p != '\n' && *p != '\t' && *p != '\r')
					p++;
			}
		} while (depth > 0);
		return true;
	}
};

}							/* namespace */

bool
json_find_aggregate_id(const char *s, size_t len, StringInfo out)
{
	Scanner		sc{s, s + len};
	StringInfoData key;

	initStringInfo(&key);
	sc.ws();
	if (sc.p >= sc.end || *sc.p != '{')
		return false;
	sc.p++;
	for (;;)
	{
		sc.ws();
		if (sc.p >= sc.end || *sc.p == '}')
			return false;
		resetStringInfo(&key);
		if (!sc.str(&key))
			return false;
		sc.ws();
		if (sc.p >= sc.end || *sc.p != ':')
			return false;
		sc.p++;
		sc.ws();
		if (strcmp(key.data, "aggregate_id") == 0)
		{
			if (sc.p < sc.end && *sc.p == '"')
				return sc.str(out);
			return false;		/* null, number, ... : treated as absent */
		}
		if (!sc.skip_value())
			return false;
		sc.ws();
		if (sc.p < sc.end && *sc.p == ',')
			sc.p++;
	}
}

bool
message_in_shard(DecoderState *st, const char *content, Size size)
{
	static const char keys_notice[] = "\"" OUTBOX_CONTROL_FIELD "\":\"" OUTBOX_CONTROL_KEYS "\"";
	StringInfoData id;

	/* A key rotation's notice concerns every relay (it names no aggregate): every shard gets it.
	 * A forged one costs each relay a check, nothing more. */
	if (memmem(content, size, keys_notice, sizeof(keys_notice) - 1) != NULL)
		return true;

	initStringInfo(&id);
	bool		found = json_find_aggregate_id(content, size, &id);

	return shard_of(id.data, id.len, !found, st->opt.shard_count) == st->opt.shard_index;
}

bool
change_in_shard(DecoderState *st, RelInfo *ri, Relation rel, ReorderBufferChange *change)
{
	if (!ri->is_outbox_events)
		return false;			/* with shard, only outbox events are written */

	ReorderBufferTupleBuf *tb = change->action == REORDER_BUFFER_CHANGE_DELETE ?
		change->data.tp.oldtuple : change->data.tp.newtuple;
	bool		isnull = true;
	Datum		d = (Datum) 0;

	if (tb != NULL && ri->aggregate_id_att >= 0)
		d = heap_getattr(&tb->tuple, ri->aggregate_id_att + 1, RelationGetDescr(rel), &isnull);
	if (!isnull && ri->attrs[ri->aggregate_id_att].isvarlena &&
		VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(d)))
		isnull = true;			/* unchanged TOAST (an UPDATE): cannot happen for the insert path */
	if (isnull)
		return shard_of(NULL, 0, true, st->opt.shard_count) == st->opt.shard_index;

	AttrInfo   *a = &ri->attrs[ri->aggregate_id_att];

	if (a->kind == OUT_TEXTLIKE)
	{
		struct varlena *v = PG_DETOAST_DATUM_PACKED(d);

		return shard_of(VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v), false, st->opt.shard_count) == st->opt.shard_index;
	}
	char	   *txt = OutputFunctionCall(&a->outfn, a->isvarlena ? PointerGetDatum(PG_DETOAST_DATUM(d)) : d);

	return shard_of(txt, strlen(txt), false, st->opt.shard_count) == st->opt.shard_index;
}

}							/* namespace outbox_decoder */
