/*
 * JSON escaping and value output, written straight into the output StringInfo.
 */
#include "decoder.h"

extern "C" {
#include "utils/builtins.h"
#include "utils/bytea.h"
#include "utils/fmgroids.h"
#include "mb/pg_wchar.h"
}

namespace outbox_decoder {

/* 0: copy as is; 1: needs an escape */
static const uint8 needs_escape[256] = {
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,	/* '"' */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,	/* '\\' */
};

static const char hexdig[] = "0123456789abcdef";

static inline void
append_escape(StringInfo out, unsigned char c)
{
	switch (c)
	{
		case '\b': append_bytes(out, "\\b", 2); break;
		case '\f': append_bytes(out, "\\f", 2); break;
		case '\n': append_bytes(out, "\\n", 2); break;
		case '\r': append_bytes(out, "\\r", 2); break;
		case '\t': append_bytes(out, "\\t", 2); break;
		case '"': append_bytes(out, "\\\"", 2); break;
		case '\\': append_bytes(out, "\\\\", 2); break;
		default:
			{
				char		b[6] = {'\\', 'u', '0', '0', hexdig[c >> 4], hexdig[c & 15]};

				append_bytes(out, b, 6);
			}
	}
}

void
json_escape(StringInfo out, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *) s;
	const unsigned char *end = p + len;

	enlargeStringInfo(out, (int) len + 2);
	out->data[out->len++] = '"';
	while (p < end)
	{
		const unsigned char *run = p;

		while (p < end && !needs_escape[*p])
			p++;
		if (p > run)
			append_bytes(out, (const char *) run, (int) (p - run));
		if (p < end)
		{
			if (*p == '\0')			/* escape_json stops at a NUL */
				break;
			append_escape(out, *p);
			p++;
		}
	}
	appendStringInfoCharMacro(out, '"');
}

/*
 * In a UTF-8 database, bytes that are not UTF-8 cannot be the database's text: they are escaped
 * so that the line stays valid JSON. In any other database the content is the database's text
 * in its own encoding, as column values are, and is copied as wal2json copies it; the reader
 * converts the whole line (the relay does). Nothing here can raise an error, whatever the bytes:
 * an ERROR in the walsender would stop the slot at this message for good.
 */
void
json_escape_bytes(StringInfo out, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *) s;
	const unsigned char *end = p + len;
	const bool	utf8_database = GetDatabaseEncoding() == PG_UTF8;

	enlargeStringInfo(out, (int) len + 2);
	out->data[out->len++] = '"';
	while (p < end)
	{
		const unsigned char *run = p;

		while (p < end && (*p < 0x80 ? !needs_escape[*p] : !utf8_database))
			p++;
		if (p > run)
			append_bytes(out, (const char *) run, (int) (p - run));
		if (p >= end)
			break;
		if (*p < 0x80)
		{
			append_escape(out, *p);
			p++;
			continue;
		}
		/* a multi-byte sequence: copy it if it is valid UTF-8, else escape its first byte */
		int			l = pg_utf_mblen(p);

		if (l > 1 && p + l <= end && pg_utf8_islegal(p, l))
		{
			append_bytes(out, (const char *) p, l);
			p += l;
		}
		else
		{
			append_escape(out, *p);
			p++;
		}
	}
	appendStringInfoCharMacro(out, '"');
}

void
write_message_content(StringInfo out, const Options *o, const char *prefix, const char *content, Size sz)
{
	/*
	 * Only the size of an oversized `outbox` message, never its bytes: escaped, ~180 MB passes
	 * PostgreSQL's 1 GB string limit, and the walsender would fail on it after every reconnect.
	 */
	if (message_oversized(o, prefix, sz))
		appendStringInfo(out, "null,\"" OUTBOX_OVERSIZED_FIELD "\":{\"bytes\":" UINT64_FORMAT ",\"limit\":%u}",
						 (uint64) sz, o->max_outbox_message_bytes);
	else
		json_escape_bytes(out, content, sz);
}

void
append_lsn(StringInfo out, XLogRecPtr lsn)
{
	appendStringInfo(out, "%X/%X", (uint32) (lsn >> 32), (uint32) lsn);
}

ValueCategory
category_for_type(Oid typid)
{
	switch (typid)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case OIDOID:
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
			return CAT_NUMBER;
		case BOOLOID:
			return CAT_BOOL;
		case BYTEAOID:
			return CAT_BYTEA;
		default:
			return CAT_STRING;
	}
}

OutputKind
output_kind_for(Oid typoutput)
{
	switch (typoutput)
	{
		case F_INT2OUT: return OUT_INT2;
		case F_INT4OUT: return OUT_INT4;
		case F_INT8OUT: return OUT_INT8;
		case F_BOOLOUT: return OUT_BOOL;
		case F_TEXTOUT:
		case F_VARCHAROUT:
		case F_BPCHAROUT:
		case F_JSON_OUT:
			return OUT_TEXTLIKE;
		case F_BYTEAOUT: return OUT_BYTEA;
		default: return OUT_GENERIC;
	}
}

/* write a number the way wal2json does: NaN/Infinity -> null, digits bare, else an error */
static void
write_number(StringInfo out, const char *s, size_t len)
{
	if (pg_strncasecmp(s, "NaN", 3) == 0 ||
		pg_strncasecmp(s, "Infinity", 8) == 0 ||
		pg_strncasecmp(s, "-Infinity", 9) == 0)
	{
		append_bytes(out, "null", 4);
		return;
	}
	if (strspn(s, "0123456789+-eE.") == len)
		append_bytes(out, s, (int) len);
	else
		elog(ERROR, "%s is not a number", s);
}

static void
write_text(StringInfo out, ValueCategory cat, const char *s, size_t len)
{
	switch (cat)
	{
		case CAT_NUMBER:
			write_number(out, s, len);
			break;
		case CAT_BOOL:
			if (len == 1 && s[0] == 't')
				append_bytes(out, "true", 4);
			else
				append_bytes(out, "false", 5);
			break;
		case CAT_BYTEA:
			/*
			 * wal2json cuts two characters, assuming the "\x" of bytea_output = hex.  With
			 * bytea_output = escape that loses data, so only a real "\x" prefix is cut.
			 */
			if (len >= 2 && s[0] == '\\' && s[1] == 'x')
				json_escape(out, s + 2, len - 2);
			else
				json_escape(out, s, len);
			break;
		case CAT_STRING:
			json_escape(out, s, len);
			break;
	}
}

void
write_value(StringInfo out, Datum value, ValueCategory cat, OutputKind kind,
			FmgrInfo *outfn, bool isvarlena)
{
	char		buf[32];

	switch (kind)
	{
		case OUT_INT2:
			pg_itoa(DatumGetInt16(value), buf);
			write_text(out, cat, buf, strlen(buf));
			return;
		case OUT_INT4:
			pg_ltoa(DatumGetInt32(value), buf);
			write_text(out, cat, buf, strlen(buf));
			return;
		case OUT_INT8:
			pg_lltoa(DatumGetInt64(value), buf);
			write_text(out, cat, buf, strlen(buf));
			return;
		case OUT_BOOL:
			write_text(out, cat, DatumGetBool(value) ? "t" : "f", 1);
			return;
		case OUT_TEXTLIKE:
			{
				struct varlena *v = PG_DETOAST_DATUM_PACKED(value);

				write_text(out, cat, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
				return;
			}
		case OUT_BYTEA:
			if (bytea_output == BYTEA_OUTPUT_HEX)
			{
				struct varlena *v = PG_DETOAST_DATUM_PACKED(value);
				const unsigned char *p = (const unsigned char *) VARDATA_ANY(v);
				size_t		n = VARSIZE_ANY_EXHDR(v);

				/* hex digits never need escaping; as a string category the \x stays, escaped */
				if (cat == CAT_NUMBER || cat == CAT_BOOL)
					break;		/* cannot happen for bytea; take the generic path */
				enlargeStringInfo(out, (int) (2 * n + 5));
				char	   *w = out->data + out->len;

				*w++ = '"';
				if (cat == CAT_STRING)
				{
					*w++ = '\\';
					*w++ = '\\';
					*w++ = 'x';
				}
				for (size_t i = 0; i < n; i++)
				{
					*w++ = hexdig[p[i] >> 4];
					*w++ = hexdig[p[i] & 15];
				}
				*w++ = '"';
				out->len = (int) (w - out->data);
				out->data[out->len] = '\0';
				return;
			}
			break;
		case OUT_GENERIC:
			break;
	}

	Datum		v = isvarlena ? PointerGetDatum(PG_DETOAST_DATUM(value)) : value;
	char	   *s = OutputFunctionCall(outfn, v);

	write_text(out, cat, s, strlen(s));
}

}							/* namespace outbox_decoder */
