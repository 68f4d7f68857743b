// schema_document.hpp: a valijson adapter over OutboxJsonDocument (schema_api.h), the flat form
// in which schema_jsonb.c hands over a jsonb payload, read in place: no parse, no tree, a key or
// string copied only when valijson asks for a std::string.
//
// valijson's adapters all follow the shape of its nlohmann_json_adapter.hpp: a value class that
// says what the value is (BasicAdapter builds the Adapter interface and its type rules on it),
// array and object ranges with their iterators, and a frozen copy for the values a schema keeps.
// Types are strict: an integer is not a double, "1" is not a number.
#pragma once

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/internal/adapter.hpp>
#include <valijson/internal/basic_adapter.hpp>
#include <valijson/internal/frozen_value.hpp>

#include "schema_api.h"

namespace valijson {
namespace adapters {

class OutboxDocumentAdapter;

using OutboxDocumentMember = std::pair<std::string, OutboxDocumentAdapter>;

// Items of an array (Element OutboxJsonValue), members of an object (OutboxJsonMember):
// contiguous, so iterators are pointers.
template<typename Element, typename Value>
class OutboxDocumentIterator
{
public:
	using iterator_category = std::bidirectional_iterator_tag;
	using value_type = Value;
	using difference_type = std::ptrdiff_t;
	using pointer = Value *;
	using reference = Value &;

	OutboxDocumentIterator(const OutboxJsonDocument *doc, const Element *at) : m_doc(doc), m_at(at) {}

	Value operator*() const;
	DerefProxy<Value> operator->() const { return DerefProxy<Value>(**this); }
	bool operator==(const OutboxDocumentIterator &other) const { return m_at == other.m_at; }
	bool operator!=(const OutboxDocumentIterator &other) const { return m_at != other.m_at; }
	const OutboxDocumentIterator &operator++() { ++m_at; return *this; }
	OutboxDocumentIterator operator++(int) { OutboxDocumentIterator was(*this); ++m_at; return was; }
	const OutboxDocumentIterator &operator--() { --m_at; return *this; }
	void advance(std::ptrdiff_t n) { m_at += n; }

private:
	const OutboxJsonDocument *m_doc;
	const Element *m_at;
};

using OutboxDocumentArrayIterator = OutboxDocumentIterator<OutboxJsonValue, OutboxDocumentAdapter>;
using OutboxDocumentMemberIterator = OutboxDocumentIterator<OutboxJsonMember, OutboxDocumentMember>;

// The items or members of one container. Default-constructed: empty (BasicAdapter uses one for
// an empty object read as an array).
template<typename Element, typename Value>
class OutboxDocumentRange
{
public:
	using const_iterator = OutboxDocumentIterator<Element, Value>;
	using iterator = const_iterator;

	OutboxDocumentRange() = default;
	OutboxDocumentRange(const OutboxJsonDocument *doc, const Element *first, size_t size)
		: m_doc(doc), m_first(first), m_size(size) {}

	iterator begin() const { return iterator(m_doc, m_first); }
	iterator end() const { return iterator(m_doc, m_first + m_size); }
	size_t size() const { return m_size; }

protected:
	const OutboxJsonDocument *m_doc = nullptr;
	const Element *m_first = nullptr;
	size_t m_size = 0;
};

class OutboxDocumentArray : public OutboxDocumentRange<OutboxJsonValue, OutboxDocumentAdapter>
{
public:
	OutboxDocumentArray() = default;
	OutboxDocumentArray(const OutboxJsonDocument *doc, const OutboxJsonValue &v)
		: OutboxDocumentRange(doc, doc->values + v.u.first, v.size) {}
};

class OutboxDocumentObject : public OutboxDocumentRange<OutboxJsonMember, OutboxDocumentMember>
{
public:
	OutboxDocumentObject() = default;
	OutboxDocumentObject(const OutboxJsonDocument *doc, const OutboxJsonValue &v)
		: OutboxDocumentRange(doc, doc->members + v.u.first, v.size) {}

	iterator find(const std::string &name) const
	{
		const OutboxJsonMember *m = member(name.data(), name.size());
		return iterator(m_doc, m ? m : m_first + m_size);
	}

	// For the visitor's members specialized for this adapter (schema_visit.cpp), which read
	// members without making a std::string of each key.
	const OutboxJsonMember *members() const { return m_first; }
	OutboxDocumentAdapter value(const OutboxJsonMember &m) const;

	// Members looked up in ascending order of their keys, the order of valijson's std::map of a
	// schema's properties and std::set of required names: one pass over the members, where a
	// binary search per name cost more than the rest of the check. Should a key come out of
	// order, the pass starts again.
	class Cursor
	{
	public:
		explicit Cursor(const OutboxDocumentObject &object)
			: m_first(object.m_first), m_end(object.m_first + object.m_size), m_at(object.m_first) {}

		const OutboxJsonMember *seek(const char *key, size_t len)
		{
			if (m_at != m_first && key_compare(m_at[-1], key, len) >= 0)
				m_at = m_first;
			for (; m_at != m_end; ++m_at)
			{
				int c = key_compare(*m_at, key, len);
				if (c >= 0)
					return c == 0 ? m_at : nullptr;
			}
			return nullptr;
		}

	private:
		const OutboxJsonMember *m_first;
		const OutboxJsonMember *m_end;
		const OutboxJsonMember *m_at;
	};

	// Members are sorted by key (schema_api.h): a binary search.
	const OutboxJsonMember *member(const char *key, size_t len) const
	{
		const OutboxJsonMember *end = m_first + m_size;
		const OutboxJsonMember *at = std::lower_bound(m_first, end, std::make_pair(key, len),
			[](const OutboxJsonMember &m, const std::pair<const char *, size_t> &k) {
				return key_compare(m, k.first, k.second) < 0;
			});
		return at != end && key_compare(*at, key, len) == 0 ? at : nullptr;
	}

private:
	// std::string's order: bytes as unsigned, then the shorter first. Keys are short and differ
	// early: a loop, not a call to memcmp per step of the search.
	static int key_compare(const OutboxJsonMember &m, const char *key, size_t len)
	{
		size_t n = std::min<size_t>(m.key_len, len);
		for (size_t i = 0; i < n; i++)
			if (m.key[i] != key[i])
				return static_cast<unsigned char>(m.key[i]) < static_cast<unsigned char>(key[i]) ? -1 : 1;
		return m.key_len < len ? -1 : m.key_len > len ? 1 : 0;
	}
};

// What BasicAdapter asks of a value. A default-constructed one is an empty object, as in
// valijson's own adapters.
class OutboxDocumentValue
{
public:
	OutboxDocumentValue() : m_doc(&empty_document()), m_value(&empty_object()) {}
	OutboxDocumentValue(const OutboxJsonDocument *doc, const OutboxJsonValue *value) : m_doc(doc), m_value(value) {}

	FrozenValue *freeze() const { return new NlohmannJsonFrozenValue(to_json()); }

	opt::optional<OutboxDocumentArray> getArrayOptional() const
	{
		if (isArray())
			return opt::make_optional(OutboxDocumentArray(m_doc, *m_value));
		return {};
	}
	opt::optional<OutboxDocumentObject> getObjectOptional() const
	{
		if (isObject())
			return opt::make_optional(OutboxDocumentObject(m_doc, *m_value));
		return {};
	}
	bool getArraySize(size_t &result) const { return isArray() && (result = m_value->size, true); }
	bool getObjectSize(size_t &result) const { return isObject() && (result = m_value->size, true); }
	bool getBool(bool &result) const { return isBool() && (result = kind() == OUTBOX_JSON_TRUE, true); }
	bool getDouble(double &result) const { return isDouble() && (result = m_value->u.number, true); }
	bool getInteger(int64_t &result) const { return isInteger() && (result = m_value->u.integer, true); }
	bool getString(std::string &result) const
	{
		if (!isString())
			return false;
		result.assign(m_value->u.string, m_value->size);
		return true;
	}

	static bool hasStrictTypes() { return true; }
	bool isArray() const { return kind() == OUTBOX_JSON_ARRAY; }
	bool isBool() const { return kind() == OUTBOX_JSON_TRUE || kind() == OUTBOX_JSON_FALSE; }
	bool isDouble() const { return kind() == OUTBOX_JSON_DOUBLE; }
	bool isInteger() const { return kind() == OUTBOX_JSON_INTEGER; }
	bool isNull() const { return kind() == OUTBOX_JSON_NULL; }
	bool isNumber() const { return isInteger() || isDouble(); }
	bool isObject() const { return kind() == OUTBOX_JSON_OBJECT; }
	bool isString() const { return kind() == OUTBOX_JSON_STRING; }

	nlohmann::json to_json() const;

private:
	OutboxJsonKind kind() const { return static_cast<OutboxJsonKind>(m_value->kind); }

	static const OutboxJsonValue &empty_object()
	{
		static const OutboxJsonValue v{OUTBOX_JSON_OBJECT, 0, {0}};
		return v;
	}
	static const OutboxJsonDocument &empty_document()
	{
		static const OutboxJsonDocument d{&empty_object(), nullptr};
		return d;
	}

	const OutboxJsonDocument *m_doc;
	const OutboxJsonValue *m_value;
};

class OutboxDocumentAdapter
	: public BasicAdapter<OutboxDocumentAdapter, OutboxDocumentArray, OutboxDocumentMember, OutboxDocumentObject,
						  OutboxDocumentValue>
{
public:
	OutboxDocumentAdapter() : BasicAdapter() {}
	OutboxDocumentAdapter(const OutboxJsonDocument *doc, const OutboxJsonValue *value)
		: BasicAdapter(OutboxDocumentValue(doc, value)), m_node(value) {}
	// The root of a document.
	explicit OutboxDocumentAdapter(const OutboxJsonDocument &doc) : OutboxDocumentAdapter(&doc, doc.values) {}

	// A string's bytes in place, where asString() would copy them.
	bool text(const char *&bytes, size_t &len) const
	{
		if (m_node == nullptr || m_node->kind != OUTBOX_JSON_STRING)
			return false;
		bytes = m_node->u.string;
		len = m_node->size;
		return true;
	}

private:
	const OutboxJsonValue *m_node = nullptr;
};

template<>
inline OutboxDocumentAdapter
OutboxDocumentArrayIterator::operator*() const
{
	return OutboxDocumentAdapter(m_doc, m_at);
}

template<>
inline OutboxDocumentMember
OutboxDocumentMemberIterator::operator*() const
{
	return OutboxDocumentMember(std::string(m_at->key, m_at->key_len), OutboxDocumentAdapter(m_doc, m_doc->values + m_at->value));
}

inline OutboxDocumentAdapter
OutboxDocumentObject::value(const OutboxJsonMember &m) const
{
	return OutboxDocumentAdapter(m_doc, m_doc->values + m.value);
}

// A copy as nlohmann_json, for the rare caller that keeps a value (a schema read through this
// adapter keeps its enum and const values). Iterative: a payload may be nested deeper than the
// stack allows recursion.
inline nlohmann::json
OutboxDocumentValue::to_json() const
{
	nlohmann::json root;
	std::vector<std::pair<const OutboxJsonValue *, nlohmann::json *>> todo{{m_value, &root}};

	while (!todo.empty())
	{
		const OutboxJsonValue *v = todo.back().first;
		nlohmann::json &out = *todo.back().second;

		todo.pop_back();
		switch (static_cast<OutboxJsonKind>(v->kind))
		{
			case OUTBOX_JSON_NULL: out = nullptr; break;
			case OUTBOX_JSON_FALSE: out = false; break;
			case OUTBOX_JSON_TRUE: out = true; break;
			case OUTBOX_JSON_INTEGER: out = v->u.integer; break;
			case OUTBOX_JSON_DOUBLE: out = v->u.number; break;
			case OUTBOX_JSON_STRING: out = std::string(v->u.string, v->size); break;
			case OUTBOX_JSON_ARRAY:
				// sized first: the elements do not move while their children are pending
				out = nlohmann::json::array();
				out.get_ref<nlohmann::json::array_t &>().resize(v->size);
				for (size_t i = 0; i < v->size; i++)
					todo.emplace_back(m_doc->values + v->u.first + i, &out[i]);
				break;
			case OUTBOX_JSON_OBJECT:
				out = nlohmann::json::object();
				for (size_t i = 0; i < v->size; i++)
				{
					const OutboxJsonMember &m = m_doc->members[v->u.first + i];
					todo.emplace_back(m_doc->values + m.value, &out[std::string(m.key, m.key_len)]);
				}
				break;
		}
	}
	return root;
}

template<>
struct AdapterTraits<OutboxDocumentAdapter>
{
	using DocumentType = OutboxJsonDocument;

	static std::string adapterName() { return "OutboxDocumentAdapter"; }
};

}  // namespace adapters
}  // namespace valijson

namespace outbox_schema {

// A document built from nlohmann_json, which owns the strings it points to: how a schema is
// checked against the meta-schema with the same adapter (and the same limits) as a payload.
class OwnedDocument
{
public:
	explicit OwnedDocument(const nlohmann::json &root);
	const OutboxJsonDocument &document() const { return m_doc; }

private:
	std::vector<OutboxJsonValue> m_values;
	std::vector<OutboxJsonMember> m_members;
	OutboxJsonDocument m_doc;
};

}  // namespace outbox_schema
