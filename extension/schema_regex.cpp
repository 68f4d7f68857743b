// schema_regex.cpp: the members of valijson's ValidationVisitor that the outbox replaces
// (schema_valijson.hpp says why): regular expressions through PCRE2 within limits, and the stack
// and interrupt checks on entering every subschema. No PostgreSQL call: what cannot be decided
// is thrown as outbox_schema::Stop and turned into a status by schema.cpp.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <memory>
#include <unordered_map>

#include "schema_message.hpp"
#include "schema_valijson.hpp"

namespace outbox_schema {

Bounds bounds;

namespace {

// A payload's strings are at most outbox.max_payload_bytes long; these bound the work per match
// (PCRE2 backtracks on the heap, not the stack, since 10.30), so no pattern hangs a backend.
constexpr uint32_t MATCH_LIMIT = 10000000;
constexpr uint32_t HEAP_LIMIT_KB = 64 * 1024;
constexpr size_t CACHE_MAX = 1024;

struct CodeFree { void operator()(pcre2_code *c) const { pcre2_code_free(c); } };
struct DataFree { void operator()(pcre2_match_data *d) const { pcre2_match_data_free(d); } };
struct MatchContextFree { void operator()(pcre2_match_context *m) const { pcre2_match_context_free(m); } };

// JSON Schema's patterns are ECMA-262: Unicode characters, "$" only at the very end, \uXXXX.
constexpr uint32_t COMPILE_OPTIONS = PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_ALT_BSUX;

std::unordered_map<std::string, std::unique_ptr<pcre2_code, CodeFree>> compiled;

std::string
error_text(int code)
{
	PCRE2_UCHAR buf[256];

	if (pcre2_get_error_message(code, buf, sizeof(buf)) < 0)
		return "error " + std::to_string(code);
	return reinterpret_cast<char *>(buf);
}

pcre2_code *
compile(const std::string &pattern, std::string *why)
{
	auto found = compiled.find(pattern);
	if (found != compiled.end())
		return found->second.get();

	int code;
	PCRE2_SIZE offset;
	pcre2_code *re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
								   COMPILE_OPTIONS, &code, &offset, nullptr);
	if (re == nullptr)
	{
		*why = error_text(code) + " at offset " + std::to_string(offset);
		return nullptr;
	}
	// Compiled to machine code where PCRE2 can (matching is several times faster); where it
	// cannot, or is refused executable memory, the interpreter matches.
	pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
	// Patterns come from the registered schemas, few; the bound only stops a churn of them.
	if (compiled.size() >= CACHE_MAX)
		compiled.clear();
	compiled.emplace(pattern, std::unique_ptr<pcre2_code, CodeFree>(re));
	return re;
}

pcre2_match_context *
match_context()
{
	static std::unique_ptr<pcre2_match_context, MatchContextFree> ctx;

	if (!ctx)
	{
		ctx.reset(pcre2_match_context_create(nullptr));
		if (!ctx)
			throw std::bad_alloc();
		pcre2_set_match_limit(ctx.get(), MATCH_LIMIT);
		pcre2_set_heap_limit(ctx.get(), HEAP_LIMIT_KB);
	}
	return ctx.get();
}

// Only whether a pattern matches is asked, never where: one ovector pair serves every match.
pcre2_match_data *
match_data()
{
	static std::unique_ptr<pcre2_match_data, DataFree> data;

	if (!data)
	{
		data.reset(pcre2_match_data_create(1, nullptr));
		if (!data)
			throw std::bad_alloc();
	}
	return data.get();
}

}  // namespace

std::vector<std::string>
child_context(const std::vector<std::string> &context, bool collecting, const char *token, size_t len)
{
	if (!collecting && !bounds.paths)
		return {};

	std::vector<std::string> out;
	out.reserve(context.size() + 1);
	out = context;
	out.emplace_back(len + 2, '[');
	out.back().replace(1, len, token, len);
	out.back().back() = ']';
	return out;
}

std::string
pattern_error(const std::string &pattern)
{
	std::string why;

	return compile(pattern, &why) ? std::string() : why;
}

bool
regex_search(const std::string &pattern, const char *subject, size_t len,
			 const std::vector<std::string> &context)
{
	std::string why;
	pcre2_code *re = compile(pattern, &why);

	if (re == nullptr)
		throw Stop{OUTBOX_SCHEMA_BAD_SCHEMA, pointer_of(context), "pattern " + pattern + ": " + why};
	int rc = pcre2_match(re, reinterpret_cast<PCRE2_SPTR>(subject), len, 0, 0, match_data(), match_context());
	// What the JIT gives up on (its stack, or its count of the match limit), the interpreter
	// decides within the limits above, as it would have without the JIT.
	if (rc == PCRE2_ERROR_JIT_STACKLIMIT || rc == PCRE2_ERROR_MATCHLIMIT)
		rc = pcre2_match(re, reinterpret_cast<PCRE2_SPTR>(subject), len, 0, PCRE2_NO_JIT, match_data(), match_context());
	if (rc >= 0)
		return true;
	if (rc == PCRE2_ERROR_NOMATCH)
		return false;
	if (rc == PCRE2_ERROR_NOMEMORY)
		throw std::bad_alloc();
	throw Stop{OUTBOX_SCHEMA_BAD_INPUT, pointer_of(context),
			   "pattern " + pattern + " could not be matched within the validator's limits (" + error_text(rc) + ")"};
}

std::string
pointer_of(const std::vector<std::string> &context)
{
	std::string out;

	// context[0] is "<root>"; each later element is a key or an index in brackets.
	for (size_t i = 1; i < context.size(); i++)
	{
		const std::string &c = context[i];
		bool bracketed = c.size() >= 2 && c.front() == '[' && c.back() == ']';

		out += "/" + escape_pointer_token(bracketed ? c.substr(1, c.size() - 2) : c);
	}
	return out;
}

}  // namespace outbox_schema

namespace valijson {

namespace {

// On entering a subschema: the stack left (a nested payload, a $ref cycle that consumes
// nothing) and PostgreSQL's interrupts (a cancel, statement_timeout), which it can only act on
// once the C++ frames are gone.
void
enter(const std::vector<std::string> &context)
{
	using outbox_schema::bounds;

	if (bounds.interrupt_pending && *bounds.interrupt_pending)
		throw outbox_schema::Stop{OUTBOX_SCHEMA_INTERRUPTED, "", ""};
	if (bounds.stack_limit && static_cast<const char *>(__builtin_frame_address(0)) < bounds.stack_limit)
		throw outbox_schema::Stop{OUTBOX_SCHEMA_BAD_INPUT, outbox_schema::pointer_of(context),
								  "the validator ran out of stack: the payload is nested too deep, or the schema "
								  "refers to itself without descending into the payload"};
}

// valijson's ValidationVisitor::validateSchema, after enter(). The callback captures one
// pointer, which std::function keeps in place: valijson's std::bind of three did not fit and
// cost a malloc and a free per subschema.
template<typename Visitor>
bool
validate_subschema(Visitor &visitor, const Subschema &subschema, bool collect)
{
	if (subschema.getAlwaysInvalid())
		return false;
	Subschema::ApplyFunction fn([&visitor](const constraints::Constraint &c) { return c.accept(visitor); });
	return collect ? subschema.apply(fn) : subschema.applyStrict(fn);
}

// RFC 3339 full-date, partial-time with offset, and both with a 'T' between; ranges of days are
// checked after the match. Strings once, not per match.
const std::string DATE_RE = "^[0-9]{4}-(0[1-9]|1[012])-(0[1-9]|[12][0-9]|3[01])$";
const std::string TIME_RE = "^([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$";
const std::string DATE_TIME_RE = "^[0-9]{4}-(0[1-9]|1[012])-(0[1-9]|[12][0-9]|3[01])[Tt]"
	"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$";
const std::string DATE = "date";
const std::string TIME = "time";
const std::string DATE_TIME = "date-time";

// Digits the pattern has already matched.
int
digits(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

bool
day_in_month(const char *s)
{
	int year = digits(s, 4);
	int month = digits(s + 5, 2);
	int day = digits(s + 8, 2);
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return day <= days[month - 1] + (month == 2 && leap ? 1 : 0);
}

// A string's bytes: in place from a payload, copied into `copy` from a key.
bool
text_of(const OutboxJsonAdapter &target, std::string &, const char *&s, size_t &len)
{
	return target.text(s, len);
}

bool
text_of(const OutboxKeyAdapter &target, std::string &copy, const char *&s, size_t &len)
{
	if (!target.asString(copy))
		return false;
	s = copy.data();
	len = copy.size();
	return true;
}

// Formats other than these three are annotations (README, "Schemas").
template<typename Adapter>
bool
check_format(const Adapter &target, const std::string &format, const std::vector<std::string> &context,
			 ValidationResults *results)
{
	const std::string *re = format == DATE ? &DATE_RE : format == TIME ? &TIME_RE
		: format == DATE_TIME ? &DATE_TIME_RE : nullptr;

	// Like every keyword but type, format applies to its own kind of value only.
	if (re == nullptr || !target.isString())
		return true;
	std::string copy;
	const char *s;
	size_t len;
	if (!text_of(target, copy, s, len))
		return true;
	if (outbox_schema::regex_search(*re, s, len, context) && (format == TIME || day_in_month(s)))
		return true;
	if (results)
		results->pushError(context, "String should be a valid " + format);
	return false;
}

template<typename Adapter>
bool
check_pattern(const Adapter &target, const constraints::PatternConstraint &constraint,
			  const std::vector<std::string> &context, ValidationResults *results)
{
	std::string copy;
	const char *s;
	size_t len;
	if (!target.isString() || !text_of(target, copy, s, len))
		return true;
	// valijson hands out a copy of the pattern: into one buffer, kept for the next.
	static std::string pattern;
	constraint.getPattern(pattern);
	if (outbox_schema::regex_search(pattern, s, len, context))
		return true;
	if (results)
		results->pushError(context, "Failed to match regex specified by 'pattern' constraint.");
	return false;
}

}  // namespace

template<>
bool
ValidationVisitor<OutboxJsonAdapter>::validateSchema(const Subschema &subschema)
{
	enter(m_context);
	return validate_subschema(*this, subschema, m_results != nullptr);
}

template<>
bool
ValidationVisitor<OutboxKeyAdapter>::validateSchema(const Subschema &subschema)
{
	enter(m_context);
	return validate_subschema(*this, subschema, m_results != nullptr);
}

template<>
bool
ValidationVisitor<OutboxJsonAdapter>::visit(const constraints::PatternConstraint &constraint)
{
	return check_pattern(m_target, constraint, m_context, m_results);
}

template<>
bool
ValidationVisitor<OutboxKeyAdapter>::visit(const constraints::PatternConstraint &constraint)
{
	return check_pattern(m_target, constraint, m_context, m_results);
}

template<>
bool
ValidationVisitor<OutboxJsonAdapter>::visit(const constraints::FormatConstraint &constraint)
{
	return check_format(m_target, constraint.getFormat(), m_context, m_results);
}

template<>
bool
ValidationVisitor<OutboxKeyAdapter>::visit(const constraints::FormatConstraint &constraint)
{
	return check_format(m_target, constraint.getFormat(), m_context, m_results);
}

// valijson's own, with an interrupt check per item: n items take n^2/2 comparisons, minutes for
// the 100,000 items a payload can hold, and a cancel or statement_timeout must end them.
template<>
bool
ValidationVisitor<OutboxJsonAdapter>::visit(const constraints::UniqueItemsConstraint &)
{
	if (!m_target.isArray() || m_target.getArraySize() == 0)
		return true;

	bool validated = true;
	const typename OutboxJsonAdapter::Array items = m_target.asArray();
	unsigned int outer = 0;

	for (auto a = items.begin(); a != items.end(); ++a, ++outer)
	{
		enter(m_context);
		unsigned int inner = outer + 1;
		auto b = a;
		for (++b; b != items.end(); ++b, ++inner)
		{
			if (!a->equalTo(*b, true))
				continue;
			if (!m_results)
				return false;
			m_results->pushError(m_context, "Elements at indexes #" + std::to_string(outer) + " and #" +
								 std::to_string(inner) + " violate uniqueness constraint.");
			validated = false;
		}
	}
	return validated;
}

// valijson 1.0 reports no error for a property name that fails propertyNames (so the message
// would have nothing to say): the same check, with the name in an error.
template<>
bool
ValidationVisitor<OutboxJsonAdapter>::visit(const constraints::PropertyNamesConstraint &constraint)
{
	if (!m_target.isObject())
		return true;
	for (const typename OutboxJsonAdapter::ObjectMember m : m_target.asObject())
	{
		adapters::StdStringAdapter name(m.first);
		ValidationVisitor<OutboxKeyAdapter> validator(name, m_context, m_strictTypes, nullptr, m_regexesCache);
		if (validator.validateSchema(*constraint.getSubschema()))
			continue;
		if (m_results)
		{
			std::vector<std::string> at = m_context;
			at.push_back("[" + m.first + "]");
			m_results->pushError(at, "Property name '" + m.first + "' fails the propertyNames schema.");
		}
		return false;
	}
	return true;
}

}  // namespace valijson
