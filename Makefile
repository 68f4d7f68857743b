# pg-outbox: PGXS build of the `outbox` extension (and the outbox_decoder plugin in decoder/),
# plus the project targets demo / test / bench, which call scripts.
PG_CONFIG ?= pg_config

# The control and script files live in extension/, so they are installed as DATA.
MODULEDIR   = extension
MODULE_big  = outbox
OBJS        = extension/outbox.o extension/uuidv7.o extension/validate.o extension/trace_context.o extension/emit.o extension/message_key.o \
              extension/schemas.o extension/schema_jsonb.o $(SCHEMA_CXX_OBJS)
# JSON Schema validation (C++: valijson, nlohmann_json, PCRE2) behind the C API of
# extension/schema_api.h. Symbols hidden: nothing of C++ is exported from outbox.so, so no other
# library in the backend can interpose its own copy of a template.
SCHEMA_CXX_OBJS = extension/schema.o extension/schema_message.o extension/schema_regex.o extension/schema_visit.o \
                  extension/schema_draft7.o
DATA        = extension/outbox.control $(wildcard extension/outbox--*.sql)
PGFILEDESC  = "outbox - transactional outbox for PostgreSQL"

# pg_regress suites in sql/ + expected/. The outbox_ tests cover the extension; decoder_ tests
# (added with the decoder) need the plugin in output_plugin_libraries, which scripts/stack sets.
REGRESS     = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --inputdir=. --load-extension=outbox

# common/ holds outbox_wire.h, the names and limits shared with the decoder and the relay.
PG_CPPFLAGS = -I$(srcdir)/extension -I$(srcdir)/common
PG_CXXFLAGS = -std=c++17 -fvisibility=hidden -fvisibility-inlines-hidden
SHLIB_LINK += -lpcre2-8 -lstdc++

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# clang (LLVM bitcode for JIT inlining) ignores PG_CXXFLAGS.
BITCODE_CXXFLAGS += -std=c++17

$(OBJS): extension/outbox.h common/outbox_wire.h
$(SCHEMA_CXX_OBJS) extension/schemas.o extension/schema_jsonb.o: extension/schema_api.h
extension/schemas.o extension/schema_jsonb.o: extension/schema_jsonb.h
$(SCHEMA_CXX_OBJS): extension/schema_valijson.hpp extension/schema_document.hpp extension/schema_message.hpp extension/schema_meta.hpp

# A full script of a version the chain now builds (outbox--0.2.sql): left installed by an older
# checkout, it would be the shorter path CREATE EXTENSION takes, and the chain would go untested.
RETIRED_SCRIPTS = outbox--0.2.sql
install: remove-retired-scripts
remove-retired-scripts:
	rm -f $(addprefix '$(DESTDIR)$(datadir)/$(datamoduledir)/',$(RETIRED_SCRIPTS))
.PHONY: remove-retired-scripts

# The decoder is its own shared library (outbox_decoder.so), so it has its own PGXS makefile.
DECODER_DIR = decoder
# NO_DECODER=1 builds the extension alone.
HAVE_DECODER = $(if $(filter 1,$(NO_DECODER)),,$(wildcard $(DECODER_DIR)/Makefile))

ifneq ($(HAVE_DECODER),)
all: decoder-all
install: decoder-install
clean: decoder-clean
decoder-all:
	$(MAKE) -C $(DECODER_DIR) PG_CONFIG=$(PG_CONFIG)
decoder-install:
	$(MAKE) -C $(DECODER_DIR) PG_CONFIG=$(PG_CONFIG) install
decoder-clean:
	$(MAKE) -C $(DECODER_DIR) PG_CONFIG=$(PG_CONFIG) clean
.PHONY: decoder-all decoder-install decoder-clean
endif

# ---- project targets ---------------------------------------------------------------------
.PHONY: deps demo demo-stop test test-wal2json test-faults bench stack-up stack-down relay deb test-packages

deps:
	scripts/install-deps

# The relay and its tests are built with CMake into build/ (see CMakeLists.txt).
relay: deps
	scripts/build-relay

demo: deps
	scripts/demo

demo-stop:
	OUTBOX_RUN_DIR=$(CURDIR)/.run/demo scripts/stack down

test: deps
	scripts/test

# The full fault suite (test/faults/run: over 50k events, both storage modes) on a stack of its own.
# Every fault scenario at full size on a stack of its own (.run/faults); see test/faults/README.md.
test-faults: deps
	$(MAKE) -s -j2 >/dev/null && $(MAKE) -s install >/dev/null
	scripts/build-relay && OUTBOX_RUN_DIR=$(CURDIR)/.run/faults test/faults/run --own-stack

# The relay's integration tests with stock wal2json as its plugin (make test runs them with
# outbox_decoder): a few minutes more than make test's budget, so on their own; .ci/run runs them.
test-wal2json: deps
	OUTBOX_RUN_DIR=$(CURDIR)/.run/test OUTBOX_TEST_PLUGINS=wal2json TEST_LAYERS=30-relay-integration scripts/test

bench: deps
	scripts/bench

# Debian packages (debian/): postgresql-15-outbox and outbox-relay into build/deb/, built from a
# clean copy of HEAD.
deb: deps
	scripts/build-deb

# Builds the packages, installs them into /usr (as root), runs the installed relay as its system
# user against a stack of its own, purges them and checks nothing is left. Not part of `make test`
# (a package build takes minutes); .ci/run runs it after it.
test-packages: deps
	test/packages/run

stack-up:
	scripts/stack up

stack-down:
	scripts/stack down
