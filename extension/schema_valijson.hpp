// schema_valijson.hpp: valijson as the outbox uses it inside a PostgreSQL backend.
//
// valijson 1.0 matches `pattern`, `patternProperties` and `format` with std::regex, whose
// libstdc++ matcher recurses once per character: "^[a-z]*$" against 50,000 letters overflows an
// 8 MB stack, and a backend that segfaults restarts every session of the cluster. A nested
// payload or a $ref cycle that consumes nothing (allOf: [{$ref: "#"}]) recurses without bound
// too, and a long check could not be cancelled. So the members of ValidationVisitor that do
// these things are explicitly specialized for the two adapters the outbox instantiates
// (schema_regex.cpp): regular expressions through PCRE2 with match and heap limits, and every
// subschema entered checks the stack left and PostgreSQL's pending interrupts, throwing Stop.
// A few more are specialized for the payload adapter for speed (schema_visit.cpp). Every
// translation unit that validates must include this header before it instantiates
// ValidationVisitor, so that the declarations below replace the library's definitions.
#pragma once

#include <csignal>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/adapters/std_string_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include "schema_api.h"
#include "schema_document.hpp"

namespace outbox_schema {

// Thrown from inside the validator for what it cannot check (a limit, an interrupt), and caught
// by the C entry points in schema.cpp.
struct Stop
{
	OutboxSchemaStatus status;
	std::string pointer;
	std::string reason;
};

// The bounds of the check running now (a backend runs one at a time).
struct Bounds
{
	const char *stack_limit = nullptr;	// the lowest address the recursion may reach
	volatile sig_atomic_t *interrupt_pending = nullptr;
	// Whether a pass that collects no errors keeps the error context (the path to the value),
	// which only a Stop reads: outbox_schema_check's first pass goes without, and runs again
	// with it when a Stop must say where.
	bool paths = true;
};
extern Bounds bounds;

// The context of a child value: the parent's and "[token]", or nothing when nobody will read it.
std::vector<std::string> child_context(const std::vector<std::string> &context, bool collecting,
									   const char *token, size_t len);

// valijson's error context ("<root>", "[items]", "[0]") as a JSON pointer.
std::string pointer_of(const std::vector<std::string> &context);

// PCRE2 with the limits above; throws Stop when a match cannot be decided within them.
bool regex_search(const std::string &pattern, const char *subject, size_t len,
				  const std::vector<std::string> &context);
inline bool
regex_search(const std::string &pattern, const std::string &subject, const std::vector<std::string> &context)
{
	return regex_search(pattern, subject.data(), subject.size(), context);
}

// Why PCRE2 refuses a pattern, or "" when it compiles.
std::string pattern_error(const std::string &pattern);

}  // namespace outbox_schema

namespace valijson {

// Payloads, and schemas checked against the meta-schema, are read through this one adapter;
// nlohmann_json's only serves SchemaParser, which instantiates no ValidationVisitor.
using OutboxJsonAdapter = adapters::OutboxDocumentAdapter;
using OutboxKeyAdapter = adapters::StdStringAdapter;	// propertyNames checks keys through it

template<> bool ValidationVisitor<OutboxJsonAdapter>::validateSchema(const Subschema &subschema);
template<> bool ValidationVisitor<OutboxKeyAdapter>::validateSchema(const Subschema &subschema);
template<> bool ValidationVisitor<OutboxJsonAdapter>::visit(const constraints::PatternConstraint &constraint);
template<> bool ValidationVisitor<OutboxKeyAdapter>::visit(const constraints::PatternConstraint &constraint);
template<> bool ValidationVisitor<OutboxJsonAdapter>::visit(const constraints::FormatConstraint &constraint);
template<> bool ValidationVisitor<OutboxKeyAdapter>::visit(const constraints::FormatConstraint &constraint);

template<> bool ValidationVisitor<OutboxJsonAdapter>::visit(const constraints::PropertyNamesConstraint &constraint);
template<> bool ValidationVisitor<OutboxJsonAdapter>::visit(const constraints::UniqueItemsConstraint &constraint);

// valijson's own, with patternProperties through PCRE2, and (schema_visit.cpp) without the
// copies of the error context that nobody reads, nor a std::string per key looked up: most of
// what a valid payload cost.
template<> bool ValidationVisitor<OutboxJsonAdapter>::visit(const constraints::PropertiesConstraint &constraint);
template<> bool ValidationVisitor<OutboxJsonAdapter>::visit(const constraints::SingularItemsConstraint &constraint);
template<> bool ValidationVisitor<OutboxJsonAdapter>::visit(const constraints::RequiredConstraint &constraint);

}  // namespace valijson
