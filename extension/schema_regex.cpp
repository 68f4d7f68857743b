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

}  // namespace

std::string
pattern_error(const std::string &pattern)
{
	std::string why;

	return compile(pattern, &why) ? std::string() : why;
}

bool
regex_search(const std::string &pattern, const std::string &subject,
			 const std::vector<std::string> &context)
{
	std::string why;
	pcre2_code *re = compile(pattern, &why);

	if (re == nullptr)
		throw Stop{OUTBOX_SCHEMA_BAD_SCHEMA, pointer_of(context), "pattern " + pattern + ": " + why};
	std::unique_ptr<pcre2_match_data, DataFree> data(pcre2_match_data_create(1, nullptr));
	if (!data)
		throw std::bad_alloc();
	int rc = pcre2_match(re, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), 0, 0,
						 data.get(), match_context());
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

// valijson's ValidationVisitor::validateSchema, after enter().
template<typename Visitor>
bool
validate_subschema(Visitor &visitor, const Subschema &subschema, bool collect,
				   bool (*callback)(const constraints::Constraint &, Visitor &))
{
	if (subschema.getAlwaysInvalid())
		return false;
	Subschema::ApplyFunction fn(std::bind(callback, std::placeholders::_1, std::ref(visitor)));
	return collect ? subschema.apply(fn) : subschema.applyStrict(fn);
}

// RFC 3339 full-date, partial-time with offset, and both with a 'T' between; ranges of days are
// checked after the match.
const char DATE_RE[] = "^[0-9]{4}-(0[1-9]|1[012])-(0[1-9]|[12][0-9]|3[01])$";
const char TIME_RE[] = "^([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$";
const char DATE_TIME_RE[] = "^[0-9]{4}-(0[1-9]|1[012])-(0[1-9]|[12][0-9]|3[01])[Tt]"
	"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$";

bool
day_in_month(const std::string &s)
{
	int year = std::stoi(s.substr(0, 4));
	int month = std::stoi(s.substr(5, 2));
	int day = std::stoi(s.substr(8, 2));
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return day <= days[month - 1] + (month == 2 && leap ? 1 : 0);
}

// Formats other than these three are annotations (README, "Schemas").
template<typename Adapter>
bool
check_format(const Adapter &target, const std::string &format, const std::vector<std::string> &context,
			 ValidationResults *results)
{
	const char *re = format == "date" ? DATE_RE : format == "time" ? TIME_RE
		: format == "date-time" ? DATE_TIME_RE : nullptr;

	// Like every keyword but type, format applies to its own kind of value only.
	if (re == nullptr || !target.isString())
		return true;
	std::string s = target.asString();
	if (outbox_schema::regex_search(re, s, context) && (format == "time" || day_in_month(s)))
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
	if (!target.isString())
		return true;
	if (outbox_schema::regex_search(constraint.getPattern<std::string::allocator_type>(), target.asString(), context))
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
	return validate_subschema(*this, subschema, m_results != nullptr, validationCallback);
}

template<>
bool
ValidationVisitor<OutboxKeyAdapter>::validateSchema(const Subschema &subschema)
{
	enter(m_context);
	return validate_subschema(*this, subschema, m_results != nullptr, validationCallback);
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

// valijson's own, with PCRE2 in place of std::regex.
template<> template<>
bool
ValidationVisitor<OutboxJsonAdapter>::ValidatePatternPropertySubschemas::operator()(
	const OutboxPatternString &patternProperty, const Subschema *subschema) const
{
	const std::string pattern(patternProperty.c_str());
	bool matchFound = false;

	for (const typename OutboxJsonAdapter::ObjectMember m : m_object)
	{
		if (!outbox_schema::regex_search(pattern, m.first, m_context))
			continue;
		matchFound = true;
		if (m_propertiesMatched)
			m_propertiesMatched->insert(m.first);

		std::vector<std::string> newContext = m_context;
		newContext.push_back("[" + m.first + "]");
		ValidationVisitor validator(m.second, newContext, m_strictTypes, m_results, m_regexesCache);
		if (validator.validateSchema(*subschema))
			continue;
		if (m_results)
			m_results->pushError(m_context, "Failed to validate against schema associated with pattern '" + pattern + "'.");
		if (m_validated)
			*m_validated = false;
		if (!m_continueOnFailure)
			return false;
	}
	if (!matchFound && !m_continueIfUnmatched)
		return false;
	return m_continueOnSuccess;
}

}  // namespace valijson
