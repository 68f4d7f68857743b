/*
 * trace_context.c: the W3C Trace Context an event carries (traceparent, tracestate).
 *
 * Checked at outbox_emit, in the transaction that writes the event: a consumer's tracing library
 * ignores a malformed traceparent (the spec tells it to, and to start a new trace), so a bad
 * value would otherwise surface only as a trace that silently breaks at the broker. The rules
 * are those the spec states (https://www.w3.org/TR/trace-context/): Level 1's traceparent, and
 * for tracestate keys the grammar of the current draft, which holds every Level 1 key (a key
 * that Level 2 vendors send must not fail the application's transaction).
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "outbox.h"

#define TRACEPARENT_V00_LEN 55
#define TRACESTATE_KEY_MAX 256
#define TRACESTATE_VALUE_MAX 256

static const char *const traceparent_hint =
"A traceparent is version-traceid-parentid-flags in lower-case hex, 2-32-16-2 digits, "
"e.g. 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 (W3C Trace Context); "
"version ff and all-zero ids are invalid, and version 00 has exactly 55 characters.";

static const char *const tracestate_hint =
"A tracestate is up to 32 comma-separated key=value list members, at most 512 characters, "
"e.g. rojo=00f067aa0ba902b7,congo=t61rcWkgMzE (W3C Trace Context): a key is a lower-case letter "
"or a digit followed by up to 255 of a-z 0-9 _ - * / @, a value 1 to 256 printable ASCII "
"characters other than ',' and '=' that does not end in a space.";

/* Part of a value as messages show it: at most 64 bytes, anything but printable ASCII as \xNN. */
static char *
shown(const char *s, int len)
{
	StringInfoData buf;
	int			n = Min(len, 64);

	initStringInfo(&buf);
	for (int i = 0; i < n; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c >= 0x20 && c < 0x7F)
			appendStringInfoChar(&buf, (char) c);
		else
			appendStringInfo(&buf, "\\x%02x", c);
	}
	if (len > n)
		appendStringInfo(&buf, "... (%d bytes)", len);
	return buf.data;
}

static char *
char_shown(char c)
{
	unsigned char u = (unsigned char) c;

	return (u > 0x20 && u < 0x7F) ? psprintf("'%c'", c) : psprintf("byte 0x%02x", u);
}

/* Raises the error for a malformed traceparent (or tracestate): problem says what is wrong. */
static void
pg_attribute_noreturn()
refuse(const OutboxEvent *ev, bool tracestate, const char *problem)
{
	const char *field = tracestate ? "tracestate" : "traceparent";
	text	   *value = tracestate ? ev->tracestate : ev->traceparent;
	bool		from_setting = tracestate ? ev->tracestate_from_setting : ev->traceparent_from_setting;

	ereport(ERROR,
			(errcode(tracestate ? ERRCODE_OUTBOX_INVALID_TRACESTATE : ERRCODE_OUTBOX_INVALID_TRACEPARENT),
			 from_setting
			 ? errmsg("setting outbox.%s is not a valid W3C %s: %s", field, field, problem)
			 : errmsg("outbox event field \"%s\" is not a valid W3C %s: %s", field, field, problem),
			 errdetail("The %s is \"%s\".", from_setting ? "setting" : "value",
					   shown(VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value))),
			 errhint("%s%s", tracestate ? tracestate_hint : traceparent_hint,
					 from_setting
					 ? psprintf(" Correct what sets outbox.%s (e.g. SET LOCAL outbox.%s = '...'), or RESET it.", field, field)
					 : "")));
	pg_unreachable();
}

static bool
is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static bool
all_zeros(const char *s, int len)
{
	for (int i = 0; i < len; i++)
		if (s[i] != '0')
			return false;
	return true;
}

static void
check_traceparent(const OutboxEvent *ev)
{
	static const struct
	{
		const char *name;
		int			start;
		int			len;
	}			parts[] = {{"version", 0, 2}, {"trace-id", 3, 32}, {"parent-id", 36, 16}, {"trace-flags", 53, 2}};
	const char *s = VARDATA_ANY(ev->traceparent);
	int			len = VARSIZE_ANY_EXHDR(ev->traceparent);

	if (len == 0)
		refuse(ev, false, "it is empty");
	for (int p = 0; p < lengthof(parts); p++)
	{
		int			end = parts[p].start + parts[p].len;

		for (int i = parts[p].start; i < end; i++)
		{
			if (i >= len)
				refuse(ev, false, psprintf("it ends inside the %s, after %d characters", parts[p].name, len));
			if (!is_lower_hex(s[i]))
				refuse(ev, false, (s[i] >= 'A' && s[i] <= 'F')
					   ? psprintf("character %d (%s) of the %s is upper-case hex", i + 1, char_shown(s[i]), parts[p].name)
					   : psprintf("character %d (%s) of the %s is not a hex digit", i + 1, char_shown(s[i]), parts[p].name));
		}
		if (p + 1 < lengthof(parts))
		{
			if (end >= len)
				refuse(ev, false, psprintf("it ends after the %s, after %d characters", parts[p].name, len));
			if (s[end] != '-')
				refuse(ev, false, psprintf("character %d (%s) follows the %s where '-' belongs",
										   end + 1, char_shown(s[end]), parts[p].name));
		}
	}
	if (s[0] == 'f' && s[1] == 'f')
		refuse(ev, false, "version ff is invalid");
	if (all_zeros(s + 3, 32))
		refuse(ev, false, "the trace-id is all zeros");
	if (all_zeros(s + 36, 16))
		refuse(ev, false, "the parent-id is all zeros");
	if (s[0] == '0' && s[1] == '0')
	{
		if (len != TRACEPARENT_V00_LEN)
			refuse(ev, false, psprintf("version 00 has exactly %d characters, this one %d", TRACEPARENT_V00_LEN, len));
		return;
	}
	/* A higher version: what the spec lets a version-00 parser read, then '-' and fields to come. */
	if (len > TRACEPARENT_V00_LEN)
	{
		/*
		 * Bounded: with CloudEvents the relay sends it twice (traceparent and the tracing
		 * extension's attribute), outside the header budget outbox_emit checks for the event's
		 * own headers, and a long one would make the event a dead letter there.
		 */
		if (len > OUTBOX_TRACEPARENT_MAX_CHARS)
			refuse(ev, false, psprintf("it has %d characters, more than the %d a traceparent may have here",
									   len, OUTBOX_TRACEPARENT_MAX_CHARS));
		if (s[TRACEPARENT_V00_LEN] != '-')
			refuse(ev, false, psprintf("character %d (%s) follows the trace-flags where a higher version continues with '-'",
									   TRACEPARENT_V00_LEN + 1, char_shown(s[TRACEPARENT_V00_LEN])));
		/* Unspecified fields, but a header value: printable ASCII (NATS headers end at a CR or LF). */
		for (int i = TRACEPARENT_V00_LEN + 1; i < len; i++)
			if (s[i] < 0x20 || s[i] >= 0x7F)
				refuse(ev, false, psprintf("character %d (%s) is not printable ASCII", i + 1, char_shown(s[i])));
	}
}

static bool
is_key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '*' ||
		c == '/' || c == '@';
}

static bool
is_value_char(char c)
{
	return c >= 0x20 && c < 0x7F && c != ',' && c != '=';
}

/* One key=value list member, s[0..len) without the optional whitespace around it. */
static void
check_list_member(const OutboxEvent *ev, int n, const char *s, int len)
{
	const char *eq = memchr(s, '=', len);
	int			key_len;
	const char *value;
	int			value_len;

	if (eq == NULL)
		refuse(ev, true, psprintf("list member %d (\"%s\") has no '='", n, shown(s, len)));
	key_len = eq - s;
	value = eq + 1;
	value_len = len - key_len - 1;
	if (key_len == 0)
		refuse(ev, true, psprintf("list member %d (\"%s\") has an empty key", n, shown(s, len)));
	if (key_len > TRACESTATE_KEY_MAX)
		refuse(ev, true, psprintf("the key of list member %d is %d characters long, more than %d",
								  n, key_len, TRACESTATE_KEY_MAX));
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		refuse(ev, true, psprintf("the key of list member %d (\"%s\") starts with %s, not a lower-case letter or a digit",
								  n, shown(s, key_len), char_shown(s[0])));
	for (int i = 1; i < key_len; i++)
		if (!is_key_char(s[i]))
			refuse(ev, true, psprintf("the key of list member %d (\"%s\") has %s, which keys do not hold",
									  n, shown(s, key_len), char_shown(s[i])));
	if (value_len == 0)
		refuse(ev, true, psprintf("list member %d (\"%s\") has an empty value", n, shown(s, len)));
	if (value_len > TRACESTATE_VALUE_MAX)
		refuse(ev, true, psprintf("the value of list member %d is %d characters long, more than %d",
								  n, value_len, TRACESTATE_VALUE_MAX));
	for (int i = 0; i < value_len; i++)
		if (!is_value_char(value[i]))
			refuse(ev, true, psprintf("the value of list member %d (\"%s\") has %s, which values do not hold",
									  n, shown(value, value_len), char_shown(value[i])));
}

static bool
is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * Empty and whitespace-only list members are allowed (combined headers produce them) and do not
 * count towards the 32. A tracestate without any member carries nothing: the spec asks not to
 * send it, so it becomes NULL.
 */
static void
check_tracestate(OutboxEvent *ev)
{
	const char *s = VARDATA_ANY(ev->tracestate);
	int			len = VARSIZE_ANY_EXHDR(ev->tracestate);
	const char *keys[OUTBOX_TRACESTATE_MAX_MEMBERS];
	int			key_lens[OUTBOX_TRACESTATE_MAX_MEMBERS];
	int			key_items[OUTBOX_TRACESTATE_MAX_MEMBERS];
	int			members = 0;
	int			item = 0;

	/* The spec asks vendors to pass on at least 512 characters: a longer one may arrive cut. */
	if (len > OUTBOX_TRACESTATE_MAX_CHARS && pg_mbstrlen_with_len(s, len) > OUTBOX_TRACESTATE_MAX_CHARS)
		refuse(ev, true, psprintf("it is %d characters long, more than %d",
								  pg_mbstrlen_with_len(s, len), OUTBOX_TRACESTATE_MAX_CHARS));
	for (int pos = 0; pos <= len; item++)
	{
		const char *comma = memchr(s + pos, ',', len - pos);
		int			end = comma ? (int) (comma - s) : len;
		int			b = pos;
		int			e = end;

		while (b < e && is_ows(s[b]))
			b++;
		while (e > b && is_ows(s[e - 1]))
			e--;
		pos = end + 1;
		if (b == e)
			continue;
		if (members == OUTBOX_TRACESTATE_MAX_MEMBERS)
			refuse(ev, true, psprintf("it has more than %d list members", OUTBOX_TRACESTATE_MAX_MEMBERS));
		check_list_member(ev, item + 1, s + b, e - b);
		keys[members] = s + b;
		key_lens[members] = (int) ((const char *) memchr(s + b, '=', e - b) - (s + b));
		key_items[members] = item + 1;
		/* "Only one entry per key is allowed": the entry is the vendor's last position. */
		for (int k = 0; k < members; k++)
			if (key_lens[k] == key_lens[members] && memcmp(keys[k], keys[members], key_lens[k]) == 0)
				refuse(ev, true, psprintf("key \"%s\" is in list members %d and %d, and each key has one entry",
										  shown(keys[k], key_lens[k]), key_items[k], item + 1));
		members++;
	}
	if (members == 0)
	{
		ev->tracestate = NULL;
		ev->tracestate_from_setting = false;
	}
}

void
outbox_validate_trace_context(OutboxEvent *ev)
{
	if (ev->traceparent != NULL)
		check_traceparent(ev);
	if (ev->tracestate != NULL)
		check_tracestate(ev);
	if (ev->tracestate != NULL && ev->traceparent == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUTBOX_TRACESTATE_WITHOUT_TRACEPARENT),
				 ev->tracestate_from_setting
				 ? errmsg("setting outbox.tracestate is set, and there is no traceparent")
				 : errmsg("outbox event field \"tracestate\" is set without a traceparent"),
				 errdetail("A tracestate belongs to the trace its traceparent names (W3C Trace Context); alone, no consumer can use it."),
				 ev->tracestate_from_setting
				 ? errhint("Set outbox.traceparent too (SET LOCAL outbox.traceparent = '00-...'), or RESET outbox.tracestate.")
				 : errhint("Pass traceparent => '00-...' too, set outbox.traceparent in the transaction, or leave the tracestate out.")));
}
