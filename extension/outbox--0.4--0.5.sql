-- outbox 0.4 -> 0.5: a role without EXECUTE on outbox_emit is told how to get it.
\echo Use "ALTER EXTENSION outbox UPDATE TO '0.5'" to load this file. \quit

-- PostgreSQL checks EXECUTE before it loads the function's module, so its "permission denied for
-- function outbox_emit" cannot carry the fix (outbox.grant_app) the capture trigger gives. The
-- planner calls a function's support function first, with no privilege check of its own: this
-- one raises the same error (SQLSTATE 42501) with the hint, and only where the executor would
-- refuse anyway. EXECUTE on outbox_emit stays the owner's and what grant_app gives, nothing more
-- (docs/design.md, section 4, "Who can publish").
CREATE FUNCTION outbox.emit_support(internal) RETURNS internal
AS 'MODULE_PATHNAME', 'outbox_emit_support' LANGUAGE C STRICT;
COMMENT ON FUNCTION outbox.emit_support(internal) IS
    'Planner support of outbox_emit: a caller without EXECUTE on it gets the outbox.grant_app hint';
-- Nobody's but the owner's: what default privileges gave it is taken back here, quietly (no role
-- held it before), instead of by restrict_privileges below with a warning per role.
DO $$
DECLARE
    grantee oid;
BEGIN
    FOR grantee IN SELECT DISTINCT a.grantee FROM pg_proc p, aclexplode(p.proacl) a
                    WHERE p.oid = 'outbox.emit_support(internal)'::regprocedure AND a.grantee <> p.proowner
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION outbox.emit_support(internal) FROM %s CASCADE',
                       CASE grantee WHEN 0 THEN 'PUBLIC' ELSE grantee::regrole::text END);
    END LOOP;
END
$$;
ALTER FUNCTION public.outbox_emit(text, jsonb, text, text, text, text, jsonb, text, text, text, text, integer)
    SUPPORT outbox.emit_support;

-- The last step of every script (0.2--0.3.sql, "Default privileges").
SELECT outbox.restrict_privileges();
