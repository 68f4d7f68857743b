// schema.cpp: JSON Schema (draft 7) for outbox_emit, through valijson and nlohmann_json.
//
// The C entry points (schema_api.h) are the only way in: each runs its work inside guarded(),
// which catches every exception, so none crosses a PostgreSQL frame, and returns a status and
// malloc'd text that the C caller copies before it raises anything. No PostgreSQL function is
// called from here. Messages are built in schema_message.cpp.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "schema_message.hpp"
#include "schema_meta.hpp"
#include "schema_valijson.hpp"

using nlohmann::json;
using valijson::OutboxJsonAdapter;

struct OutboxSchema
{
	json		doc;			// kept for the messages (schema_message.cpp reads the keywords' values)
	valijson::Schema schema;
	valijson::Validator validator;
};

namespace outbox_schema {
namespace {

// The bounds of one call; restored at its end, whichever way it ends.
class Scope
{
public:
	explicit Scope(const OutboxSchemaLimits *limits) : saved_(bounds)
	{
		const char *here = static_cast<const char *>(__builtin_frame_address(0));

		bounds.stack_limit = limits && limits->stack_bytes ? here - limits->stack_bytes : nullptr;
		bounds.interrupt_pending = limits ? limits->interrupt_pending : nullptr;
	}
	~Scope() { bounds = saved_; }

private:
	Bounds saved_;
};

char *
copy(const std::string &s)
{
	char *out = static_cast<char *>(std::malloc(s.size() + 1));

	if (out)
		std::memcpy(out, s.c_str(), s.size() + 1);
	return out;
}

void
fill(OutboxSchemaText *text, const std::string &pointer, const std::string &reason, const std::string &detail)
{
	text->pointer = copy(pointer);
	text->reason = copy(reason);
	text->detail = copy(detail);
}

// Runs work(); anything thrown becomes a status and text. `failure` is the status of an error
// the libraries report (an exception of theirs): a bad schema when compiling, bad input when
// checking.
template<typename Work>
OutboxSchemaStatus
guarded(OutboxSchemaText *text, OutboxSchemaStatus failure, Work work)
{
	*text = OutboxSchemaText{nullptr, nullptr, nullptr};
	try
	{
		return work();
	}
	catch (const Stop &stop)
	{
		outbox_schema_text_free(text);
		fill(text, shortened(stop.pointer, 400), shortened(stop.reason, 600), "");
		return stop.status;
	}
	catch (const std::bad_alloc &)
	{
		outbox_schema_text_free(text);
		return OUTBOX_SCHEMA_NO_MEMORY;
	}
	catch (const json::exception &e)
	{
		// "[json.exception.out_of_range.406] number overflow parsing '1e400'": the words alone
		std::string what = e.what();
		size_t words = what.find("] ");

		outbox_schema_text_free(text);
		fill(text, "", shortened(words == std::string::npos ? what : what.substr(words + 2), 600), "");
		return failure;
	}
	catch (const std::exception &e)
	{
		outbox_schema_text_free(text);
		fill(text, "", shortened(e.what(), 600), "");
		return failure;
	}
	catch (...)
	{
		outbox_schema_text_free(text);
		fill(text, "", "unknown error in the validator", "");
		return failure;
	}
}

// Numbers as schema_jsonb.c reads a payload's. jsonb keeps 1.0 as written, and nlohmann reads
// it as a float, which valijson's "integer" refuses: draft 7 says a number with a zero fractional
// part is an integer, so it becomes one. nlohmann keeps an integer between 2^63 and 2^64 as
// unsigned, which valijson would read as a negative int64: it becomes a double, as beyond 2^64.
json
parse(const char *text, size_t len)
{
	json::parser_callback_t integral = [](int, json::parse_event_t event, json &value) {
		if (event != json::parse_event_t::value)
			return true;
		if (value.is_number_unsigned() && value.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX))
			value = static_cast<double>(value.get<std::uint64_t>());
		else if (value.is_number_float())
		{
			double d = value.get<double>();

			if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.2e18)
				value = static_cast<std::int64_t>(d);
		}
		return true;
	};

	return json::parse(text, text + len, integral);
}

// A $ref to the draft 7 meta-schema is served from memory; any other remote reference is
// refused (a backend fetches nothing from the network).
const json *
fetch_document(const std::string &uri)
{
	std::string bare = uri.substr(0, uri.find('#'));

	if (bare == DRAFT7_URI || bare == std::string(DRAFT7_URI) + "/")
		return new json(parse(DRAFT7_META_SCHEMA, std::strlen(DRAFT7_META_SCHEMA)));
	throw Stop{OUTBOX_SCHEMA_BAD_SCHEMA, "", "$ref to " + uri + ": remote references are not supported, "
			   "only references within the schema and to the draft 7 meta-schema"};
}

void
free_document(const json *doc)
{
	delete doc;
}

void
populate(valijson::Schema &schema, const json &doc)
{
	valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
	valijson::adapters::NlohmannJsonAdapter adapter(doc);

	parser.populateSchema(adapter, schema, fetch_document, free_document);
}

// The meta-schema compiled once per backend.
OutboxSchema &
meta_schema()
{
	static std::unique_ptr<OutboxSchema> meta;

	if (!meta)
	{
		auto m = std::make_unique<OutboxSchema>();

		m->doc = parse(DRAFT7_META_SCHEMA, std::strlen(DRAFT7_META_SCHEMA));
		populate(m->schema, m->doc);
		meta = std::move(m);
	}
	return *meta;
}

// Only draft 7 (and draft 6, which it extends) is enforced as written; a schema that says it is
// another draft would be read with other meanings.
void
check_draft(const json &doc)
{
	if (!doc.is_object() || !doc.contains("$schema"))
		return;
	const json &uri = doc["$schema"];
	if (uri.is_string())
	{
		std::string s = uri.get<std::string>();
		if (s.find("/draft-07/schema") != std::string::npos || s.find("/draft-06/schema") != std::string::npos)
			return;
	}
	throw Stop{OUTBOX_SCHEMA_BAD_SCHEMA, "/$schema", "$schema " + uri.dump() + " is not draft 7 "
			   "(http://json-schema.org/draft-07/schema#), the draft the outbox validates with"};
}

// Every `pattern` and `patternProperties` key of the schema compiles with PCRE2, found where
// they are keywords (not inside enum, const or a property named "pattern").
void
check_patterns(const json &s, const std::string &at, int depth)
{
	static const char *const by_name[] = {"properties", "patternProperties", "definitions", "dependencies"};
	static const char *const single[] = {"items", "additionalItems", "additionalProperties", "contains",
										 "propertyNames", "if", "then", "else", "not"};
	static const char *const lists[] = {"items", "allOf", "anyOf", "oneOf"};

	if (!s.is_object() || depth > 1000)
		return;
	auto p = s.find("pattern");
	if (p != s.end() && p->is_string())
	{
		std::string why = pattern_error(p->get<std::string>());
		if (!why.empty())
			throw Stop{OUTBOX_SCHEMA_BAD_SCHEMA, at + "/pattern", "pattern " + p->get<std::string>() + ": " + why};
	}
	for (const char *kw : by_name)
	{
		auto m = s.find(kw);
		if (m == s.end() || !m->is_object())
			continue;
		for (auto it = m->begin(); it != m->end(); ++it)
		{
			std::string where = at + "/" + kw + "/" + escape_pointer_token(it.key());
			std::string why = std::strcmp(kw, "patternProperties") == 0 ? pattern_error(it.key()) : "";
			if (!why.empty())
				throw Stop{OUTBOX_SCHEMA_BAD_SCHEMA, where, "patternProperties " + it.key() + ": " + why};
			check_patterns(it.value(), where, depth + 1);
		}
	}
	for (const char *kw : single)
		if (s.contains(kw))
			check_patterns(s[kw], at + "/" + kw, depth + 1);
	for (const char *kw : lists)
		if (s.contains(kw) && s[kw].is_array())
			for (size_t i = 0; i < s[kw].size(); i++)
				check_patterns(s[kw][i], at + "/" + kw + "/" + std::to_string(i), depth + 1);
}

// A schema is refused with the first reason found: not draft 7, not valid against the draft 7
// meta-schema (where and why), a pattern PCRE2 refuses, or what valijson cannot compile.
void
check_schema(const json &doc, OutboxSchema &compiled)
{
	check_draft(doc);

	OutboxSchema &meta = meta_schema();
	OwnedDocument owned(doc);
	OutboxJsonAdapter adapter(owned.document());
	if (!meta.validator.validate(meta.schema, adapter, nullptr))
	{
		valijson::ValidationResults results;
		meta.validator.validate(meta.schema, adapter, &results);
		Failure f = describe_failure(results, meta.doc);
		throw Stop{OUTBOX_SCHEMA_BAD_SCHEMA, f.pointer, f.reason + " (the draft 7 meta-schema: " + f.detail + ")"};
	}
	check_patterns(doc, "", 0);
	populate(compiled.schema, doc);
}

// Without the error context (Bounds::paths), which only a Stop reads: one that must say where
// is thrown again by the same pass with it, which takes the same steps to the same place.
bool
first_pass(OutboxSchema &schema, const OutboxJsonAdapter &payload)
{
	try
	{
		// valijson's Validator::validate would allocate the root's context; its regex cache
		// stays empty (patterns go through PCRE2), one serves every pass.
		static std::unordered_map<std::string, std::regex> no_regexes;
		valijson::ValidationVisitor<OutboxJsonAdapter> visitor(payload, {}, true, nullptr, no_regexes);

		bounds.paths = false;
		bool valid = visitor.validateSchema(schema.schema);
		bounds.paths = true;
		return valid;
	}
	catch (const Stop &stop)
	{
		bounds.paths = true;
		if (stop.status == OUTBOX_SCHEMA_INTERRUPTED)
			throw;
	}
	return schema.validator.validate(schema.schema, payload, nullptr);
}

}  // namespace

// Iterative: a schema may be nested deeper than the stack allows recursion; the meta-schema's
// check then stops at the validator's stack limit, with the place.
OwnedDocument::OwnedDocument(const json &root) : m_values(1)
{
	std::vector<std::pair<const json *, size_t>> todo{{&root, 0}};

	while (!todo.empty())
	{
		const json &j = *todo.back().first;
		size_t slot = todo.back().second;
		OutboxJsonValue v{OUTBOX_JSON_NULL, 0, {0}};

		todo.pop_back();
		if (j.is_boolean())
			v.kind = j.get<bool>() ? OUTBOX_JSON_TRUE : OUTBOX_JSON_FALSE;
		else if (j.is_number_integer())	// unsigned ones up to 2^63 - 1: parse() made the others doubles
		{
			v.kind = OUTBOX_JSON_INTEGER;
			v.u.integer = j.is_number_unsigned() ? static_cast<std::int64_t>(j.get<std::uint64_t>()) : j.get<std::int64_t>();
		}
		else if (j.is_number_float())
		{
			v.kind = OUTBOX_JSON_DOUBLE;
			v.u.number = j.get<double>();
		}
		else if (j.is_string())
		{
			const std::string &s = j.get_ref<const std::string &>();
			v.kind = OUTBOX_JSON_STRING;
			v.size = static_cast<uint32_t>(s.size());
			v.u.string = s.data();
		}
		else if (j.is_array())
		{
			v.kind = OUTBOX_JSON_ARRAY;
			v.size = static_cast<uint32_t>(j.size());
			v.u.first = m_values.size();
			for (size_t i = 0; i < j.size(); i++)
				todo.emplace_back(&j[i], m_values.size() + i);
			m_values.resize(m_values.size() + j.size());
		}
		else if (j.is_object())
		{
			v.kind = OUTBOX_JSON_OBJECT;
			v.size = static_cast<uint32_t>(j.size());
			v.u.first = m_members.size();
			for (auto it = j.begin(); it != j.end(); ++it)	// std::map: sorted as schema_api.h says
			{
				m_members.push_back(OutboxJsonMember{it.key().data(), static_cast<uint32_t>(it.key().size()),
													 static_cast<uint32_t>(m_values.size())});
				todo.emplace_back(&it.value(), m_values.size());
				m_values.emplace_back();
			}
		}
		m_values[slot] = v;
	}
	m_doc = OutboxJsonDocument{m_values.data(), m_members.data()};
}

}  // namespace outbox_schema

using namespace outbox_schema;

extern "C" OutboxSchemaStatus
outbox_schema_compile(const char *text, size_t len, const OutboxSchemaLimits *limits,
					  OutboxSchema **out, OutboxSchemaText *message)
{
	*out = nullptr;
	return guarded(message, OUTBOX_SCHEMA_BAD_SCHEMA, [&]() {
		Scope scope(limits);
		auto compiled = std::make_unique<OutboxSchema>();

		compiled->doc = parse(text, len);
		check_schema(compiled->doc, *compiled);
		*out = compiled.release();
		return OUTBOX_SCHEMA_VALID;
	});
}

extern "C" OutboxSchemaStatus
outbox_schema_check(OutboxSchema *schema, const OutboxJsonDocument *payload, const OutboxSchemaLimits *limits,
					OutboxSchemaText *message)
{
	return guarded(message, OUTBOX_SCHEMA_BAD_INPUT, [&]() {
		Scope scope(limits);
		OutboxJsonAdapter adapter(*payload);

		// The first pass stops at the first failure; only a failing payload pays for the second,
		// which collects the errors that say where and why.
		if (first_pass(*schema, adapter))
			return OUTBOX_SCHEMA_VALID;
		valijson::ValidationResults results;
		schema->validator.validate(schema->schema, adapter, &results);
		Failure f = describe_failure(results, schema->doc);
		fill(message, f.pointer, f.reason, f.detail);
		return OUTBOX_SCHEMA_FAILS;
	});
}

extern "C" void
outbox_schema_free(OutboxSchema *schema)
{
	delete schema;
}

extern "C" void
outbox_schema_text_free(OutboxSchemaText *text)
{
	std::free(text->pointer);
	std::free(text->reason);
	std::free(text->detail);
	*text = OutboxSchemaText{nullptr, nullptr, nullptr};
}
