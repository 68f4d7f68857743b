/*
 * schema_jsonb.c: a jsonb payload as the JSON Schema validator reads it (schema_api.h).
 *
 * The validator used to read the payload as JSON text, which outbox_emit printed from the jsonb
 * and the C++ side parsed again into a tree of its own: about half of what validating an event
 * cost. The jsonb is already parsed, so it is walked once here into flat arrays that the
 * validator's adapter (schema_document.hpp) reads in place; strings are not copied in a UTF-8
 * database. The walk reads the containers' JEntry arrays as JsonbIteratorNext does, without its
 * allocation per container and copy per value. Everything that may raise (memory, encoding
 * conversion, numeric_out) runs here, before any C++ object exists.
 */
#include "postgres.h"

#include <math.h>

#include "mb/pg_wchar.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "schema_jsonb.h"

/*
 * A container being read, through its JEntry array (utils/jsonb.h describes the format): an
 * array's items, or an object's keys and then its values, each with its data at a running offset
 * from where the container's data begins.
 */
typedef struct Frame
{
	const JsonbContainer *jc;
	const char *data;
	uint32		count;			/* items, or members */
	uint32		pos;			/* the item or member being read is pos - 1 */
	uint32		offset;			/* of the next item's data, or the next key's */
	uint32		value_offset;	/* an object's: of the next member's value */
	size_t		container;		/* index of its value */
	size_t		values;			/* an object's: index of its members' values */
} Frame;

typedef struct Walk
{
	OutboxJsonValue *values;
	size_t		nvalues;
	size_t		values_max;
	OutboxJsonMember *members;
	size_t		nmembers;
	size_t		members_max;
	Frame	   *frames;			/* local, or palloc'd past its size */
	int			depth;
	int			frames_max;
	bool		convert;		/* the server encoding is not UTF-8 */
	Frame		local[32];
} Walk;

/* Room for n more elements of size bytes in *array; returns the index of the first. */
static size_t
reserve(void **array, size_t *used, size_t *max, size_t n, size_t size)
{
	size_t		first = *used;

	if (*used + n > *max)
	{
		size_t		want = Max(*max * 2, *used + n);

		*array = repalloc_huge(*array, want * size);
		*max = want;
	}
	*used += n;
	return first;
}

static Frame *
push_frame(Walk *w)
{
	if (w->depth == w->frames_max)
	{
		Frame	   *more = palloc(w->frames_max * 2 * sizeof(Frame));

		memcpy(more, w->frames, w->frames_max * sizeof(Frame));
		if (w->frames != w->local)
			pfree(w->frames);
		w->frames = more;
		w->frames_max *= 2;
	}
	return &w->frames[w->depth++];
}

static const char *
utf8(Walk *w, const char *s, int len, uint32 *out_len)
{
	char	   *converted;

	*out_len = len;
	if (!w->convert)
		return s;
	converted = pg_server_to_any(s, len, PG_UTF8);
	if (converted != s)
		*out_len = strlen(converted);
	return converted;
}

/* 10^0 .. 10^22: exact doubles. */
static const double exact_powers[] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
	1e17, 1e18, 1e19, 1e20, 1e21, 1e22
};

/*
 * numeric_out's text ([-]digits[.digits]) read without strtoll/strtod where the result is exact
 * anyway: an integer of at most 18 digits, or a decimal of at most 15 significant digits and 22
 * after the point, whose value m / 10^k is what strtod returns (both exact doubles, and IEEE
 * division rounds correctly). False for anything else.
 */
static bool
read_simple_number(const char *s, bool *integral, int64 *m, double *d)
{
	const char *p = s + (*s == '-');
	int			digits = 0;
	int			fraction = -1;	/* digits after the point; -1: no point */
	uint64		v = 0;

	for (; *p; p++)
	{
		if (*p == '.' && fraction < 0)
			fraction = 0;
		else if (*p >= '0' && *p <= '9')
		{
			if (++digits > 18)
				return false;
			v = v * 10 + (*p - '0');
			if (fraction >= 0)
				fraction++;
		}
		else
			return false;
	}
	if (digits == 0)
		return false;
	*integral = fraction < 0;
	if (*integral)
	{
		*m = *s == '-' ? -(int64) v : (int64) v;
		return true;
	}
	if (digits > 15 || fraction > 22)
		return false;
	*d = (double) v / exact_powers[fraction];
	if (*s == '-')
		*d = -*d;
	return true;
}

/*
 * A number as the validator compares it, as it did when it parsed the JSON text: an integer that
 * fits 64 bits is one; any other number is a double, and one with a zero fraction within 64 bits
 * an integer again (draft 7: 1.0 is an integer). False when it is beyond a double.
 */
static bool
read_number(Numeric num, OutboxJsonValue *out, char **text)
{
	char	   *s;
	char	   *end;
	bool		integral;
	int64		i;
	double		d;

	/* An integer that fits 32 bits (the usual ids, counts, amounts in cents): no text at all.
	 * jsonb holds no NaN or infinity, which numeric_scale would return as NULL. */
	if (!numeric_is_nan(num) && !numeric_is_inf(num) &&
		DatumGetInt32(DirectFunctionCall1(numeric_scale, NumericGetDatum(num))) == 0)
	{
		bool		error = false;
		int32		small = numeric_int4_opt_error(num, &error);

		if (!error)
		{
			out->kind = OUTBOX_JSON_INTEGER;
			out->u.integer = small;
			return true;
		}
	}
	s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(num)));
	*text = s;
	if (!read_simple_number(s, &integral, &i, &d))
	{
		/* more digits: an integer if it fits 64 bits, a double otherwise */
		integral = false;
		if (strpbrk(s, ".eE") == NULL)
		{
			errno = 0;
			i = strtoll(s, &end, 10);
			integral = errno == 0 && *end == '\0';
		}
		if (!integral)
			d = strtod(s, &end);
	}
	if (integral)
	{
		out->kind = OUTBOX_JSON_INTEGER;
		out->u.integer = i;
		pfree(s);
		return true;
	}
	if (!isfinite(d))
		return false;
	if (d == floor(d) && fabs(d) < 9.2e18)
	{
		out->kind = OUTBOX_JSON_INTEGER;
		out->u.integer = (int64) d;
	}
	else
	{
		out->kind = OUTBOX_JSON_DOUBLE;
		out->u.number = d;
	}
	pfree(s);
	return true;
}

/* At most max bytes and whole UTF-8 characters, "..." after a cut: as the C++ side shortens. */
static char *
shortened(char *s, size_t max)
{
	size_t		len = strlen(s);
	size_t		cut = max;

	if (len <= max)
		return s;
	while (cut > 0 && ((unsigned char) s[cut] & 0xC0) == 0x80)
		cut--;
	return psprintf("%.*s...", (int) cut, s);
}

/* Where the walk is, as a JSON pointer in the server encoding. */
static char *
pointer_here(Walk *w)
{
	StringInfoData buf;
	char	   *pointer;

	initStringInfo(&buf);
	for (int i = 0; i < w->depth; i++)
	{
		Frame	   *f = &w->frames[i];
		OutboxJsonValue *c = &w->values[f->container];

		appendStringInfoChar(&buf, '/');
		if (c->kind == OUTBOX_JSON_ARRAY)
			appendStringInfo(&buf, "%u", f->pos - 1);
		else
		{
			OutboxJsonMember *m = &w->members[c->u.first + f->pos - 1];

			for (uint32 k = 0; k < m->key_len; k++)
			{
				if (m->key[k] == '~' || m->key[k] == '/')
					appendStringInfo(&buf, "~%c", m->key[k] == '~' ? '0' : '1');
				else
					appendStringInfoChar(&buf, m->key[k]);
			}
		}
	}
	if (buf.len == 0)
		return "(root)";
	pointer = shortened(buf.data, 400);
	return pg_any_to_server(pointer, strlen(pointer), PG_UTF8);
}

/* std::string's order (schema_document.hpp compares the same way): keys are short and differ
 * early, a loop beats a call to memcmp. */
static inline int
member_cmp(const OutboxJsonMember *x, const OutboxJsonMember *y)
{
	uint32		n = Min(x->key_len, y->key_len);

	for (uint32 i = 0; i < n; i++)
		if (x->key[i] != y->key[i])
			return (unsigned char) x->key[i] < (unsigned char) y->key[i] ? -1 : 1;
	return (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

/* The end of the run of members in order that starts at i. */
static uint32
run_end(const OutboxJsonMember *m, uint32 i, uint32 n)
{
	for (i++; i < n && member_cmp(&m[i - 1], &m[i]) < 0; i++)
		;
	return i;
}

/* Two adjacent runs, a[0..na) and b[0..nb), merged into out. */
static void
merge_runs(const OutboxJsonMember *a, uint32 na, const OutboxJsonMember *b, uint32 nb, OutboxJsonMember *out)
{
	uint32		i = 0;
	uint32		j = 0;

	while (i < na && j < nb)
		*out++ = member_cmp(&a[i], &b[j]) < 0 ? a[i++] : b[j++];
	memcpy(out, a + i, (na - i) * sizeof(OutboxJsonMember));
	memcpy(out + (na - i), b + j, (nb - j) * sizeof(OutboxJsonMember));
}

/*
 * Into std::string's order (schema_api.h). jsonb stores keys by length, then bytes: each length
 * is a run already in order, so runs are merged pairwise until one is left (a natural merge
 * sort: n log(runs) comparisons, where qsort took n log n calls through a pointer and a 100-key
 * object cost 5 us). An insertion sort for the few members most objects have.
 */
static void
sort_members(OutboxJsonMember *m, uint32 n)
{
	OutboxJsonMember *from = m;
	OutboxJsonMember *to;

	if (n <= 16)
	{
		for (uint32 i = 1; i < n; i++)
		{
			OutboxJsonMember x = m[i];
			uint32		j = i;

			for (; j > 0 && member_cmp(&m[j - 1], &x) > 0; j--)
				m[j] = m[j - 1];
			m[j] = x;
		}
		return;
	}
	to = palloc(n * sizeof(OutboxJsonMember));
	for (;;)
	{
		uint32		runs = 0;
		OutboxJsonMember *swap;

		for (uint32 i = 0; i < n; runs++)
		{
			uint32		mid = run_end(from, i, n);
			uint32		end = mid < n ? run_end(from, mid, n) : n;

			merge_runs(from + i, mid - i, from + mid, end - mid, to + i);
			i = end;
		}
		swap = from;
		from = to;
		to = swap;
		if (runs == 1)
			break;
	}
	if (from != m)
		memcpy(m, from, n * sizeof(OutboxJsonMember));
	pfree(from == m ? to : from);
}

/* A container: its value goes to the slot, its children's slots are reserved, and it is read next. */
static void
begin_container(Walk *w, const JsonbContainer *jc, size_t slot)
{
	bool		object = JsonContainerIsObject(jc);
	uint32		n = JsonContainerSize(jc);
	size_t		first;
	size_t		values = 0;
	Frame	   *f;

	if (!object)
		first = reserve((void **) &w->values, &w->nvalues, &w->values_max, n, sizeof(OutboxJsonValue));
	else
	{
		first = reserve((void **) &w->members, &w->nmembers, &w->members_max, n, sizeof(OutboxJsonMember));
		values = reserve((void **) &w->values, &w->nvalues, &w->values_max, n, sizeof(OutboxJsonValue));
	}
	w->values[slot].kind = object ? OUTBOX_JSON_OBJECT : OUTBOX_JSON_ARRAY;
	w->values[slot].size = n;
	w->values[slot].u.first = first;
	f = push_frame(w);
	f->jc = jc;
	f->data = (const char *) &jc->children[object ? 2 * n : n];
	f->count = n;
	f->pos = 0;
	f->offset = 0;
	f->value_offset = object ? getJsonbOffset(jc, n) : 0;
	f->container = slot;
	f->values = values;
}

/*
 * Child i of the container into the slot, its data at *offset, which moves past it; false (and
 * *number set) for a number beyond a double.
 */
static bool
read_child(Walk *w, const Frame *f, uint32 i, uint32 *offset, size_t slot, char **number)
{
	JEntry		je = f->jc->children[i];
	uint32		start = *offset;
	OutboxJsonValue *out = &w->values[slot];

	JBE_ADVANCE_OFFSET(*offset, je);
	if (JBE_ISNULL(je))
		out->kind = OUTBOX_JSON_NULL;
	else if (JBE_ISBOOL_TRUE(je) || JBE_ISBOOL_FALSE(je))
		out->kind = JBE_ISBOOL_TRUE(je) ? OUTBOX_JSON_TRUE : OUTBOX_JSON_FALSE;
	else if (JBE_ISSTRING(je))
	{
		out->kind = OUTBOX_JSON_STRING;
		out->u.string = utf8(w, f->data + start, *offset - start, &out->size);
	}
	else if (JBE_ISNUMERIC(je))
		return read_number((Numeric) (f->data + INTALIGN(start)), out, number);
	else
		begin_container(w, (const JsonbContainer *) (f->data + INTALIGN(start)), slot);
	return true;
}

/* The next child of the innermost container (an object's: its next key and value); false as above. */
static bool
read_next(Walk *w, char **number)
{
	Frame	   *f = &w->frames[w->depth - 1];
	uint32		i = f->pos++;
	uint32		start;
	OutboxJsonMember *m;

	if (w->values[f->container].kind == OUTBOX_JSON_ARRAY)
		return read_child(w, f, i, &f->offset, w->values[f->container].u.first + i, number);
	m = &w->members[w->values[f->container].u.first + i];
	start = f->offset;
	JBE_ADVANCE_OFFSET(f->offset, f->jc->children[i]);
	m->key = utf8(w, f->data + start, f->offset - start, &m->key_len);
	m->value = f->values + i;
	return read_child(w, f, f->count + i, &f->value_offset, f->values + i, number);
}

SchemaPayload
outbox_schema_payload(Jsonb *payload)
{
	SchemaPayload result = {{NULL, NULL}, NULL, NULL};
	Walk		w;
	char	   *number;
	bool		readable = true;

	w.convert = GetDatabaseEncoding() != PG_UTF8;
	w.frames = w.local;
	w.frames_max = lengthof(w.local);
	w.depth = 0;
	/* a guess that leaves the usual payload no growing to do (a small one takes ~16 bytes of
	 * jsonb per value) */
	w.values_max = w.members_max = Min(16 + VARSIZE(payload) / 16, 4096);
	w.values = palloc(w.values_max * sizeof(OutboxJsonValue));
	w.members = palloc(w.members_max * sizeof(OutboxJsonMember));
	w.nvalues = 1;				/* the root */
	w.nmembers = 0;

	/* A scalar payload is stored as an array of one, which is not the payload's value. */
	if (JsonContainerIsScalar(&payload->root))
	{
		Frame		root = {&payload->root, (const char *) &payload->root.children[1], 1, 1, 0, 0, 0, 0};

		readable = read_child(&w, &root, 0, &root.offset, 0, &number);
	}
	else
		begin_container(&w, &payload->root, 0);
	while (readable && w.depth > 0)
	{
		Frame	   *f = &w.frames[w.depth - 1];

		if (f->pos < f->count)
			readable = read_next(&w, &number);
		else
		{
			if (w.values[f->container].kind == OUTBOX_JSON_OBJECT)
				sort_members(w.members + w.values[f->container].u.first, f->count);
			w.depth--;
		}
	}
	if (!readable)
	{
		result.unreadable_pointer = pointer_here(&w);
		result.unreadable_reason = shortened(psprintf("number overflow parsing '%s'", number), 600);
		pfree(w.values);
		pfree(w.members);
	}
	else
	{
		result.doc.values = w.values;
		result.doc.members = w.members;
	}
	if (w.frames != w.local)
		pfree(w.frames);
	return result;
}

void
outbox_schema_payload_free(SchemaPayload *payload)
{
	if (payload->doc.values)
		pfree((void *) payload->doc.values);
	if (payload->doc.members)
		pfree((void *) payload->doc.members);
	payload->doc.values = NULL;
	payload->doc.members = NULL;
}
