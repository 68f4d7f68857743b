// schema_visit.cpp: valijson's checks of `properties` (with `patternProperties` and
// `additionalProperties`), `required`, and `items` given one schema, specialized for the outbox's
// payload adapter. They decide exactly as valijson 1.0 does and say so in its words
// (schema_message.cpp reads them), but a valid payload no longer pays for what only an error
// reads: valijson copies the error context (the path to the value, a vector of strings) for every
// member and item, makes a std::string of every name it looks up, and keeps the names of the
// members it has seen in a std::set: several allocations per member. Here the context is built
// only when errors are collected or a Stop must say where (Bounds::paths), members are found in
// one pass in the order valijson keeps the names, and those seen are flags by index.
#include <algorithm>
#include <cstring>
#include <memory>

#include "schema_valijson.hpp"

namespace valijson {

using outbox_schema::child_context;
using OutboxPatternString = constraints::PropertiesConstraint::String;
using adapters::OutboxDocumentObject;

namespace {

// Flags for the members of one object, on the stack for the usual few.
class Seen
{
public:
	explicit Seen(size_t n) : m_flags(n <= sizeof(m_small) ? m_small : (m_large.reset(new bool[n]), m_large.get()))
	{
		std::fill(m_flags, m_flags + n, false);
	}
	bool &operator[](size_t i) { return m_flags[i]; }

private:
	bool m_small[32];
	std::unique_ptr<bool[]> m_large;
	bool *m_flags;
};

// valijson's rule for the keywords of objects: they apply to objects (without strict types, to
// what may be read as one, an empty array or string); any other value satisfies them.
bool
applies_to_object(const OutboxJsonAdapter &target, bool strict_types)
{
	return strict_types ? target.isObject() : target.maybeObject();
}

}  // namespace

template<>
bool
ValidationVisitor<OutboxJsonAdapter>::visit(const constraints::PropertiesConstraint &constraint)
{
	if (!applies_to_object(m_target, m_strictTypes))
		return true;

	const typename OutboxJsonAdapter::Object object = m_target.asObject();
	const OutboxJsonMember *members = object.members();
	const size_t n = object.size();
	Seen seen(n);
	size_t matched = 0;
	bool validated = true;

	// Every member named in `properties` against its schema; all of them when collecting errors.
	OutboxDocumentObject::Cursor cursor(object);
	constraint.applyToProperties([&](const OutboxPatternString &name, const Subschema *subschema) {
		const OutboxJsonMember *m = cursor.seek(name.data(), name.size());
		if (m == nullptr)
			return true;
		if (!seen[m - members])
			matched++;
		seen[m - members] = true;
		ValidationVisitor child(object.value(*m), child_context(m_context, m_results, m->key, m->key_len),
								m_strictTypes, m_results, m_regexesCache);
		if (child.validateSchema(*subschema))
			return true;
		if (m_results)
			m_results->pushError(m_context, "Failed to validate against schema associated with property name '" +
								 std::string(name.c_str()) + "'.");
		validated = false;
		return m_results != nullptr;
	});
	if (!validated && !m_results)
		return false;

	// Every member a pattern matches against the pattern's schema; the first failure ends them.
	constraint.applyToPatternProperties([&](const OutboxPatternString &pattern_string, const Subschema *subschema) {
		const std::string pattern(pattern_string.c_str());
		for (size_t i = 0; i < n; i++)
		{
			const OutboxJsonMember &m = members[i];
			if (!outbox_schema::regex_search(pattern, m.key, m.key_len, m_context))
				continue;
			if (!seen[i])
				matched++;
			seen[i] = true;
			ValidationVisitor child(object.value(m), child_context(m_context, m_results, m.key, m.key_len),
									m_strictTypes, m_results, m_regexesCache);
			if (child.validateSchema(*subschema))
				continue;
			if (m_results)
				m_results->pushError(m_context, "Failed to validate against schema associated with pattern '" + pattern + "'.");
			validated = false;
			return false;
		}
		return true;
	});

	// The others: against additionalProperties, or refused when it is false.
	const Subschema *additional = constraint.getAdditionalPropertiesSubschema();
	if (!additional)
	{
		if (matched == n)
			return validated;
		if (m_results)
			for (size_t i = 0; i < n; i++)
				if (!seen[i])
				{
					m_results->pushError(m_context, "Object contains a property that could not be validated using "
										 "'properties' or 'additionalProperties' constraints: '" +
										 std::string(members[i].key, members[i].key_len) + "'.");
					break;
				}
		return false;
	}
	for (size_t i = 0; i < n; i++)
	{
		if (seen[i])
			continue;
		const OutboxJsonMember &m = members[i];
		ValidationVisitor child(object.value(m), child_context(m_context, m_results, m.key, m.key_len),
								m_strictTypes, m_results, m_regexesCache);
		if (child.validateSchema(*additional))
			continue;
		if (m_results)
			m_results->pushError(m_context, "Failed to validate against additional properties schema");
		validated = false;
	}
	return validated;
}

template<>
bool
ValidationVisitor<OutboxJsonAdapter>::visit(const constraints::RequiredConstraint &constraint)
{
	bool validated = true;

	if (!applies_to_object(m_target, m_strictTypes))
		return true;
	OutboxDocumentObject::Cursor cursor(m_target.asObject());
	constraint.applyToRequiredProperties([&](const OutboxPatternString &name) {
		if (cursor.seek(name.data(), name.size()))
			return true;
		if (m_results)
			m_results->pushError(m_context, "Missing required property '" + std::string(name.c_str()) + "'.");
		validated = false;
		return m_results != nullptr;
	});
	return validated;
}

template<>
bool
ValidationVisitor<OutboxJsonAdapter>::visit(const constraints::SingularItemsConstraint &constraint)
{
	const Subschema *items = constraint.getItemsSubschema();

	if (!m_target.isArray() || !items)
		return true;

	bool validated = true;
	unsigned int index = 0;
	for (const OutboxJsonAdapter &item : m_target.getArray())
	{
		std::vector<std::string> context;
		if (m_results || outbox_schema::bounds.paths)
		{
			std::string token = std::to_string(index);
			context = child_context(m_context, true, token.data(), token.size());
		}
		ValidationVisitor child(item, std::move(context), m_strictTypes, m_results, m_regexesCache);
		if (!child.validateSchema(*items))
		{
			if (!m_results)
				return false;
			m_results->pushError(m_context, "Failed to validate item #" + std::to_string(index) + " in array.");
			validated = false;
		}
		index++;
	}
	return validated;
}

}  // namespace valijson
