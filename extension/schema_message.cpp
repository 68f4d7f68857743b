// schema_message.cpp: which of valijson's errors to report, and in which words.
//
// valijson reports a failure as a list of (context, description): the innermost failure first,
// then one line for each enclosing schema that failed because of it ("Failed to validate item
// #0 in array."). Its descriptions name no keyword and print numbers as std::to_string does
// ("1.000000"). The outbox reports one failure as `fails at <pointer>: <keyword> <value>`: the
// innermost one, or the outermost anyOf/oneOf that encloses it (the first branch's complaint
// would mislead), with the keyword's value as the schema writes it, read from the schema
// document along the pointer.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "schema_message.hpp"
#include "schema_valijson.hpp"

using nlohmann::json;

namespace outbox_schema {
namespace {

enum class Kind
{
	Value,			// the keyword's value follows it
	Number,			// the same; valijson's description ends with the number, if the schema is not found
	Named,			// the description names a property between quotes
	Bare,			// the keyword alone
	Combinator,		// anyOf, oneOf: its branches' errors come before it
	Propagation		// an enclosing schema failed because of an inner failure
};

struct Rule
{
	const char *prefix;
	const char *keyword;
	Kind		kind;
};

// The descriptions of valijson 1.0's ValidationVisitor (and of schema_regex.cpp).
const Rule RULES[] = {
	{"Expected number greater than or equal to ", "minimum", Kind::Number},
	{"Expected number greater than ", "exclusiveMinimum", Kind::Number},
	{"Expected number less than or equal to ", "maximum", Kind::Number},
	{"Expected number less than ", "exclusiveMaximum", Kind::Number},
	{"Array should contain no more than ", "maxItems", Kind::Number},
	{"Array should contain no fewer than ", "minItems", Kind::Number},
	{"String should be no more than ", "maxLength", Kind::Number},
	{"String should be no fewer than ", "minLength", Kind::Number},
	{"Object should have no more than ", "maxProperties", Kind::Number},
	{"Object should have no fewer than ", "minProperties", Kind::Number},
	{"Value should be a multiple of ", "multipleOf", Kind::Number},
	{"Value could not be converted", "multipleOf", Kind::Value},
	{"Value type not permitted", "type", Kind::Value},
	{"Target value and comparison value are not equal", "enum", Kind::Value},
	{"Failed to match against any enum values", "enum", Kind::Value},
	{"Failed to match expected value set by 'const'", "const", Kind::Value},
	{"Failed to match regex specified by 'pattern'", "pattern", Kind::Value},
	{"String should be a valid ", "format", Kind::Value},
	{"Missing required property '", "required", Kind::Named},
	{"Missing dependency '", "dependencies", Kind::Named},
	{"Object contains a property that could not be validated", "additionalProperties", Kind::Named},
	{"Property name '", "propertyNames", Kind::Bare},
	{"Array contains more items than allowed", "additionalItems", Kind::Value},
	{"Cannot validate item #", "additionalItems", Kind::Value},
	{"Elements at indexes #", "uniqueItems", Kind::Value},
	{"Target should not validate against schema specified in 'not'", "not", Kind::Bare},
	{"Failed to any values against subschema in 'contains'", "contains", Kind::Bare},
	{"Failed to validate against any schemas allowed by anyOf", "anyOf", Kind::Combinator},
	{"Failed to validate against any child schemas allowed by oneOf", "oneOf", Kind::Combinator},
	{"Failed to validate against exactly one child schema", "oneOf", Kind::Bare},
};

const Rule PROPAGATION = {"", "", Kind::Propagation};

const Rule &
rule_of(const std::string &description)
{
	for (const Rule &r : RULES)
		if (description.compare(0, std::strlen(r.prefix), r.prefix) == 0)
			return r;
	return PROPAGATION;
}

// valijson's context without "<root>" and the brackets: the pointer's tokens, unescaped.
std::vector<std::string>
tokens_of(const std::vector<std::string> &context)
{
	std::vector<std::string> out;

	for (size_t i = 1; i < context.size(); i++)
	{
		const std::string &c = context[i];
		bool bracketed = c.size() >= 2 && c.front() == '[' && c.back() == ']';
		out.push_back(bracketed ? c.substr(1, c.size() - 2) : c);
	}
	return out;
}

std::string
pointer_from(const std::vector<std::string> &tokens)
{
	std::string out;

	for (const std::string &t : tokens)
		out += "/" + escape_pointer_token(t);
	return out;
}

bool
encloses(const std::vector<std::string> &outer, const std::vector<std::string> &inner)
{
	return outer.size() <= inner.size() && std::equal(outer.begin(), outer.end(), inner.begin());
}

// The name at the end of a description, after the fixed text `marker` and before "'.": valijson
// quotes it as it is, so a name may hold quotes itself.
std::string
quoted_name(const std::string &description, const std::string &marker)
{
	size_t start = description.find(marker);

	if (start == std::string::npos || description.size() < start + marker.size() + 2)
		return "";
	start += marker.size();
	size_t end = description.size() - (description.compare(description.size() - 2, 2, "'.") == 0 ? 2 : 1);
	return end > start ? description.substr(start, end - start) : "";
}

// A value as the schema writes it: strings bare (type integer, pattern ^[a-z]+$), others as JSON.
std::string
rendered(const json &v)
{
	return shortened(v.is_string() ? v.get<std::string>() : v.dump());
}

// valijson prints numbers with std::to_string; printed again without the trailing zeros.
std::string
number_in(const std::string &description)
{
	size_t at = description.find_last_of(' ');
	const char *start = description.c_str() + (at == std::string::npos ? 0 : at + 1);
	char	   *end;
	double		d = std::strtod(start, &end);
	std::ostringstream out;

	if (end == start)
		return "";
	out.precision(15);
	out << d;
	return out.str();
}

const json *find_keyword(const json &root, const json &s, const std::vector<std::string> &tokens,
						 size_t at, const std::string &keyword, int depth);

// A local $ref ("#", "#/definitions/x"): the schema it names in the same document.
const json *
resolve(const json &root, const std::string &ref)
{
	if (ref.empty() || ref[0] != '#')
		return nullptr;
	try
	{
		const json &target = root.at(json::json_pointer(ref.substr(1)));
		return &target;
	}
	catch (const json::exception &)
	{
		return nullptr;
	}
}

// The subschemas that apply to the member or item `token` of the value.
std::vector<const json *>
children_for(const json &s, const std::string &token)
{
	std::vector<const json *> out;
	auto props = s.find("properties");

	if (props != s.end() && props->is_object() && props->contains(token))
		out.push_back(&(*props)[token]);
	auto patterns = s.find("patternProperties");
	if (patterns != s.end() && patterns->is_object())
		for (auto it = patterns->begin(); it != patterns->end(); ++it)
		{
			try
			{
				if (regex_search(it.key(), token, {}))
					out.push_back(&it.value());
			}
			catch (const Stop &)
			{
			}
		}
	if (out.empty() && s.contains("additionalProperties"))
		out.push_back(&s["additionalProperties"]);
	auto items = s.find("items");
	if (items != s.end() && items->is_array())
	{
		char	   *end;
		unsigned long i = std::strtoul(token.c_str(), &end, 10);
		if (*end == '\0' && !token.empty() && i < items->size())
			out.push_back(&(*items)[i]);
		else if (s.contains("additionalItems"))
			out.push_back(&s["additionalItems"]);
	}
	else if (items != s.end())
		out.push_back(&*items);
	return out;
}

// The subschemas that apply to the same value.
std::vector<const json *>
in_place(const json &s)
{
	std::vector<const json *> out;

	for (const char *kw : {"allOf", "anyOf", "oneOf"})
		if (s.contains(kw) && s[kw].is_array())
			for (const json &sub : s[kw])
				out.push_back(&sub);
	for (const char *kw : {"then", "else", "if", "not"})
		if (s.contains(kw))
			out.push_back(&s[kw]);
	if (s.contains("dependencies") && s["dependencies"].is_object())
		for (const json &sub : s["dependencies"])
			if (sub.is_object())
				out.push_back(&sub);
	return out;
}

// Where the keyword is, for the value at tokens[at..]: the first schema along the pointer that
// has it. Draft 7 ignores the siblings of a $ref.
const json *
find_keyword(const json &root, const json &s, const std::vector<std::string> &tokens, size_t at,
			 const std::string &keyword, int depth)
{
	if (!s.is_object() || depth > 64)
		return nullptr;
	auto ref = s.find("$ref");
	if (ref != s.end())
	{
		const json *target = ref->is_string() ? resolve(root, ref->get<std::string>()) : nullptr;
		return target ? find_keyword(root, *target, tokens, at, keyword, depth + 1) : nullptr;
	}
	if (at == tokens.size())
	{
		auto found = s.find(keyword);
		if (found != s.end())
			return &*found;
	}
	else
		for (const json *child : children_for(s, tokens[at]))
			if (const json *found = find_keyword(root, *child, tokens, at + 1, keyword, depth + 1))
				return found;
	for (const json *sub : in_place(s))
		if (const json *found = find_keyword(root, *sub, tokens, at, keyword, depth + 1))
			return found;
	return nullptr;
}

// The index of the error to report: the first that is not an enclosing schema's echo of an inner
// one, or the outermost anyOf/oneOf around it.
size_t
chosen(const valijson::ValidationResults &results)
{
	std::vector<valijson::ValidationResults::Error> errors(results.begin(), results.end());
	size_t leaf = 0;

	while (leaf < errors.size() && rule_of(errors[leaf].description).kind == Kind::Propagation)
		leaf++;
	if (leaf == errors.size())
		return 0;
	size_t pick = leaf;
	for (size_t i = leaf + 1; i < errors.size(); i++)
		if (rule_of(errors[i].description).kind == Kind::Combinator
			&& encloses(errors[i].context, errors[leaf].context)
			&& errors[i].context.size() <= errors[pick].context.size())
			pick = i;
	return pick;
}

// An enclosing schema's echo reported alone: the inner schema was `false`, which says nothing.
Failure
false_schema(const valijson::ValidationResults::Error &e, std::vector<std::string> tokens)
{
	const std::string &d = e.description;
	size_t hash = d.find('#');

	if (d.find("property name '") != std::string::npos)
		tokens.push_back(quoted_name(d, "property name '"));
	else if (d.compare(0, 24, "Failed to validate item #") == 0 && hash != std::string::npos)
		tokens.push_back(std::to_string(std::strtoul(d.c_str() + hash + 1, nullptr, 10)));
	return Failure{pointer_from(tokens), "false", "the schema there is false, which no value satisfies"};
}

}  // namespace

std::string
shortened(const std::string &s, size_t max)
{
	if (s.size() <= max)
		return s;
	size_t cut = max;
	while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80)
		cut--;				// not inside a UTF-8 character
	return s.substr(0, cut) + "...";
}

std::string
escape_pointer_token(const std::string &token)
{
	std::string out;

	for (char c : token)
		out += c == '~' ? std::string("~0") : c == '/' ? std::string("~1") : std::string(1, c);
	return out;
}

Failure
describe_failure(const valijson::ValidationResults &results, const json &schema)
{
	if (results.numErrors() == 0)
		return Failure{"", "the schema", "the validator gave no reason"};

	auto first = results.begin();
	const valijson::ValidationResults::Error &e = *(first + chosen(results));
	const Rule &r = rule_of(e.description);
	std::vector<std::string> tokens = tokens_of(e.context);
	std::string reason = r.keyword;

	switch (r.kind)
	{
		case Kind::Propagation:
			return false_schema(e, tokens);
		case Kind::Named:
			{
				bool additional = r.keyword == std::string("additionalProperties");
				std::string name = quoted_name(e.description, additional ? "constraints: '" : r.prefix);
				if (additional)
				{
					tokens.push_back(name);
					reason += " false";
				}
				else
					reason += " " + json(name).dump();
				break;
			}
		case Kind::Value:
		case Kind::Number:
			{
				const json *v = find_keyword(schema, schema, tokens, 0, r.keyword, 0);
				std::string value = v ? rendered(*v) : r.kind == Kind::Number ? number_in(e.description) : "";
				if (!value.empty())
					reason += " " + value;
				break;
			}
		case Kind::Bare:
		case Kind::Combinator:
			break;
	}
	std::string detail = e.description;
	if (r.kind == Kind::Number)
	{
		std::string number = number_in(detail);	// "1.000000" as "1"
		size_t at = detail.find_last_of(' ');
		if (!number.empty() && at != std::string::npos)
			detail = detail.substr(0, at + 1) + number;
	}
	if (r.kind == Kind::Combinator)
	{
		std::string inner = pointer_of(first->context);
		detail += " The first branch failed at " + (inner.empty() ? std::string("(root)") : inner) + ": " + first->description;
	}
	return Failure{shortened(pointer_from(tokens), 400), shortened(reason), shortened(detail, 600)};
}

}  // namespace outbox_schema
