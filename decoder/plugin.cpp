/*
 * outbox_decoder: the output plugin callbacks and the C++/PostgreSQL boundary guard.
 *
 * Every callback PostgreSQL calls is a thin extern "C" function that runs its body through
 * guarded().  guarded() catches every C++ exception (none are expected: the plugin allocates
 * with palloc only) and reports it with ereport(ERROR) after the try block has closed, so no
 * exception crosses a PostgreSQL frame and no longjmp skips a live C++ destructor (the bodies
 * hold only trivially destructible locals).
 */
#include "decoder.h"

extern "C" {
#include "replication/origin.h"
#include "utils/builtins.h"

PG_MODULE_MAGIC;

void		_PG_init(void);
PGDLLEXPORT void _PG_output_plugin_init(OutputPluginCallbacks *cb);
}

#include <exception>

namespace outbox_decoder {

template <typename F>
static void
guarded(const char *where, F &&body) noexcept
{
	char		msg[256];
	bool		failed = false;

	try
	{
		body();
	}
	catch (const std::exception &e)
	{
		strlcpy(msg, e.what(), sizeof(msg));
		failed = true;
	}
	catch (...)
	{
		strlcpy(msg, "unknown C++ exception", sizeof(msg));
		failed = true;
	}
	/* the exception object is gone here: safe to longjmp */
	if (failed)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("outbox_decoder: C++ exception in %s: %s", where, msg)));
}

static inline DecoderState *
state_of(LogicalDecodingContext *ctx)
{
	return (DecoderState *) ctx->output_plugin_private;
}

/* like wal2json: ask for a keepalive/progress update every 100 changes and at transaction end */
static inline void
progress(LogicalDecodingContext *ctx, DecoderState *st)
{
	if (ctx->end_xact || ++st->changes_since_progress >= 100)
	{
		OutputPluginUpdateProgress(ctx, false);
		st->changes_since_progress = 0;
	}
}

/* run body in the per-change memory context, which is reset afterwards */
template <typename F>
static inline void
in_change_context(DecoderState *st, F &&body)
{
	MemoryContext old = MemoryContextSwitchTo(st->change_cxt);

	body();
	MemoryContextSwitchTo(old);
	MemoryContextReset(st->change_cxt);
}

static void
startup(LogicalDecodingContext *ctx, OutputPluginOptions *opt, bool is_init)
{
	DecoderState *st = (DecoderState *) palloc0(sizeof(DecoderState));

	st->change_cxt = AllocSetContextCreate(ctx->context, "outbox_decoder change",
										   ALLOCSET_DEFAULT_SIZES);
	st->cache_cxt = AllocSetContextCreate(ctx->context, "outbox_decoder cache",
										  ALLOCSET_DEFAULT_SIZES);
	initStringInfo(&st->txn_meta);
	options_set_defaults(&st->opt);
	ctx->output_plugin_private = st;
	opt->output_type = OUTPUT_PLUGIN_TEXTUAL_OUTPUT;
	opt->receive_rewrites = false;
	options_parse(&st->opt, ctx->output_plugin_options);
	relcache_init(st);

	/*
	 * The callbacks are registered before the options are known.  Without filter-origins the
	 * origin filter keeps every record, and PostgreSQL would call it (through its error-context
	 * wrapper) for each record it decodes, most of them changes the stream drops: unregister it.
	 * PostgreSQL reads ctx->callbacks at each record, and a NULL filter means "keep".
	 */
	if (st->opt.filter_origins == NIL)
		ctx->callbacks.filter_by_origin_cb = NULL;
}

static void
shutdown(LogicalDecodingContext *ctx)
{
	DecoderState *st = state_of(ctx);

	if (st != NULL && st->cache_cxt != NULL)
	{
		MemoryContextDelete(st->cache_cxt);		/* its reset callback forgets the state */
		st->cache_cxt = NULL;
		st->relcache = NULL;
		st->last_rel = NULL;
	}
}

static bool
filter_by_origin(LogicalDecodingContext *ctx, RepOriginId origin_id)
{
	DecoderState *st = state_of(ctx);

	if (origin_id == InvalidRepOriginId)
		return false;
	return list_member_oid(st->opt.filter_origins, origin_id);
}

static void
begin_txn(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	DecoderState *st = state_of(ctx);

	if (st->opt.format_version == 2)
		v2_begin(ctx, st, txn);
	else
		v1_begin(ctx, st, txn);
}

static void
commit_txn(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, XLogRecPtr commit_lsn)
{
	DecoderState *st = state_of(ctx);
	bool		skipped = st->opt.skip_empty_xacts && !st->begin_written &&
		st->opt.format_version == 2;

	/* a skipped transaction still reports progress, so the client can confirm past it */
	OutputPluginUpdateProgress(ctx, skipped);
	st->changes_since_progress = 0;
	if (st->opt.format_version == 2)
		v2_commit(ctx, st, txn, commit_lsn);
	else
		v1_commit(ctx, st, txn, commit_lsn);
}

static void
change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, Relation rel, ReorderBufferChange *chg)
{
	DecoderState *st = state_of(ctx);

	progress(ctx, st);

	/*
	 * On the relay's path most changes are dropped: decide that first, from the relation cache,
	 * before any per-change work (memory context, tuple), as pgoutput does with its
	 * RelationSyncCache.
	 */
	RelInfo    *ri = selected_relation(st, rel, chg);

	if (ri == NULL)
		return;
	in_change_context(st, [&] {
		if (st->opt.format_version == 2)
			v2_change(ctx, st, txn, rel, ri, chg);
		else
			v1_change(ctx, st, txn, rel, ri, chg);
	});
}

static void
truncate(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, int n, Relation rels[],
		 ReorderBufferChange *chg)
{
	DecoderState *st = state_of(ctx);

	progress(ctx, st);
	/* format 1 writes nothing for TRUNCATE (as wal2json 2.5) */
	if (st->opt.format_version == 2)
		in_change_context(st, [&] { v2_truncate(ctx, st, txn, n, rels, chg); });
}

static void
message(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, XLogRecPtr lsn, bool transactional,
		const char *prefix, Size sz, const char *content)
{
	DecoderState *st = state_of(ctx);

	progress(ctx, st);
	if (!message_prefix_selected(&st->opt, prefix))
		return;
	in_change_context(st, [&] {
		if (st->opt.format_version == 2)
			v2_message(ctx, st, txn, lsn, transactional, prefix, sz, content);
		else
			v1_message(ctx, st, txn, lsn, transactional, prefix, sz, content);
	});
}

}							/* namespace outbox_decoder */

/* ---------------- the C entry points: each one goes through guarded() ---------------- */
using namespace outbox_decoder;

extern "C" {

static void
cb_startup(LogicalDecodingContext *ctx, OutputPluginOptions *opt, bool is_init)
{
	guarded("startup", [&] { startup(ctx, opt, is_init); });
}

static void
cb_shutdown(LogicalDecodingContext *ctx)
{
	guarded("shutdown", [&] { shutdown(ctx); });
}

static bool
cb_filter_by_origin(LogicalDecodingContext *ctx, RepOriginId origin_id)
{
	bool		r = false;

	guarded("filter_by_origin", [&] { r = filter_by_origin(ctx, origin_id); });
	return r;
}

static void
cb_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	guarded("begin", [&] { begin_txn(ctx, txn); });
}

static void
cb_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, XLogRecPtr commit_lsn)
{
	guarded("commit", [&] { commit_txn(ctx, txn, commit_lsn); });
}

static void
cb_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, Relation rel, ReorderBufferChange *chg)
{
	guarded("change", [&] { change(ctx, txn, rel, chg); });
}

static void
cb_truncate(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, int n, Relation rels[],
			ReorderBufferChange *chg)
{
	guarded("truncate", [&] { truncate(ctx, txn, n, rels, chg); });
}

static void
cb_message(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, XLogRecPtr lsn, bool transactional,
		   const char *prefix, Size sz, const char *content)
{
	guarded("message", [&] { message(ctx, txn, lsn, transactional, prefix, sz, content); });
}

void
_PG_init(void)
{
}

/*
 * No stream_* callbacks: in-progress transactions are never decoded.  No prepare callbacks:
 * a two-phase transaction is decoded at COMMIT PREPARED, through commit_cb.
 */
void
_PG_output_plugin_init(OutputPluginCallbacks *cb)
{
	cb->startup_cb = cb_startup;
	cb->begin_cb = cb_begin;
	cb->change_cb = cb_change;
	cb->truncate_cb = cb_truncate;
	cb->commit_cb = cb_commit;
	cb->message_cb = cb_message;
	cb->filter_by_origin_cb = cb_filter_by_origin;
	cb->shutdown_cb = cb_shutdown;
}

}							/* extern "C" */
