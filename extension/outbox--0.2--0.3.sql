-- outbox 0.2 -> 0.3. CREATE EXTENSION outbox runs outbox--0.2.sql and then this script (the
-- contrib convention: one base script and a chain of upgrades), so everything 0.3 adds is
-- written once, here.
\echo Use "ALTER EXTENSION outbox UPDATE TO '0.3'" to load this file. \quit

------------------------------------------------------------------------------------------------
-- Message keys with ids: rotation without losing events
------------------------------------------------------------------------------------------------

------------------------------------------------------------------------------------------------
-- Encodings
------------------------------------------------------------------------------------------------

------------------------------------------------------------------------------------------------
-- Dead letters written once; slot recovery bounded
------------------------------------------------------------------------------------------------

------------------------------------------------------------------------------------------------
-- Privileges: nothing but what the extension granted itself (runs last)
------------------------------------------------------------------------------------------------
-- CREATE EXTENSION and ALTER EXTENSION UPDATE run as a superuser, and every object they create
-- gets that role's default privileges (ALTER DEFAULT PRIVILEGES ... ON TABLES, SEQUENCES,
-- FUNCTIONS, TYPES, and ON SCHEMAS for the schema outbox, which CREATE EXTENSION makes from the
-- control file), and a new function is executable by PUBLIC until revoked. Nothing in these
-- scripts grants anything to anyone: the only privileges on the extension's objects are the
-- owner's and those outbox.grant_app() and outbox.grant_relay() (or the owner, by hand) give.
-- The key table is guarded twice: row-level security, and no privilege on it for anyone.

-- Row-level security with no policy: every role but the owner, superusers and BYPASSRLS roles
-- sees no row and can write none, whatever privileges it holds (pg_read_all_data,
-- pg_write_all_data, a GRANT made later). Not FORCE: outbox_emit and outbox.message_key() read
-- the table as its owner (SECURITY DEFINER); FORCE would take nothing from the owner, who may
-- ALTER the table anyway, but would make a non-superuser owner need a policy of its own and fail
-- every wal-storage event of a session with row_security = off. Independent of the columns.
ALTER TABLE outbox.message_key_store ENABLE ROW LEVEL SECURITY;

-- What the extension's objects (its members, everything in schema outbox, and the schema) carry
-- that the extension did not grant itself: one row per ACL item and privilege.
--   - anything on the key table for a role other than its owner;
--   - anything granted to PUBLIC (types aside: USAGE on a type is PostgreSQL's default for all);
--   - any privilege the owner's default privileges (pg_default_acl: global, or for the object's
--     schema) give that grantee on that kind of object. On an object this script run created
--     they are where the item came from; on an older one (an upgrade) the item cannot be told
--     apart from a grant made by hand, and is taken away too: grant_app/grant_relay give it back.
-- Grants by hand and those of grant_app/grant_relay are kept otherwise.
CREATE FUNCTION outbox.unintended_privileges()
RETURNS TABLE (object_kind text, object_name text, grantee oid, privilege_type text, grantor oid, reason text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH ext AS (SELECT e.oid, e.extnamespace FROM pg_extension e WHERE e.extname = 'outbox'),
    members AS (
        SELECT d.classid, d.objid FROM pg_depend d, ext
         WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'),
    objects AS (
        SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS kind, c.oid::regclass::text AS name,
               CASE c.relkind WHEN 'S' THEN 'S' ELSE 'r' END::"char" AS defacl_kind,
               CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char" AS acl_kind,
               c.relowner AS owner, c.relnamespace AS nsp, c.relacl AS acl,
               c.oid = to_regclass('outbox.message_key_store') AS secret
          FROM pg_class c, ext
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
           AND (c.relnamespace = ext.extnamespace
                OR c.oid IN (SELECT objid FROM members WHERE classid = 'pg_class'::regclass))
        UNION ALL
        SELECT 'ROUTINE', p.oid::regprocedure::text, 'f', 'f', p.proowner, p.pronamespace, p.proacl, false
          FROM pg_proc p, ext
         WHERE p.pronamespace = ext.extnamespace
            OR p.oid IN (SELECT objid FROM members WHERE classid = 'pg_proc'::regclass)
        UNION ALL
        -- array types take their element type's privileges and cannot be granted themselves
        SELECT 'TYPE', t.oid::regtype::text, 'T', 'T', t.typowner, t.typnamespace, t.typacl, false
          FROM pg_type t, ext
         WHERE NOT (t.typelem <> 0 AND t.typsubscript = 'array_subscript_handler'::regproc)
           AND (t.typnamespace = ext.extnamespace
                OR t.oid IN (SELECT objid FROM members WHERE classid = 'pg_type'::regclass))
        UNION ALL
        SELECT 'SCHEMA', quote_ident(n.nspname), 'n', 'n', n.nspowner, 0, n.nspacl, false
          FROM pg_namespace n, ext
         WHERE n.oid = ext.extnamespace),
    items AS (
        SELECT o.kind, o.name, o.defacl_kind, o.owner, o.nsp, o.secret, a.grantee, a.privilege_type, a.grantor
          FROM objects o, aclexplode(coalesce(o.acl, acldefault(o.acl_kind, o.owner))) a
        UNION ALL
        -- column grants on the key table (a REVOKE on the table takes them too)
        SELECT 'TABLE', c.oid::regclass::text, 'r', c.relowner, c.relnamespace, true, a.grantee, a.privilege_type, a.grantor
          FROM pg_attribute att JOIN pg_class c ON c.oid = att.attrelid, aclexplode(att.attacl) a
         WHERE c.oid = to_regclass('outbox.message_key_store') AND att.attacl IS NOT NULL)
    SELECT DISTINCT i.kind, i.name, i.grantee, i.privilege_type, i.grantor,
           CASE WHEN i.secret THEN 'the message key is its owner''s only'
                WHEN i.grantee = 0 AND i.kind <> 'TYPE' THEN 'nothing of the extension is granted to PUBLIC'
                ELSE 'given by default privileges' END
      FROM items i
     WHERE i.grantee <> i.owner
       AND (i.secret
            OR (i.grantee = 0 AND i.kind <> 'TYPE')
            OR EXISTS (SELECT 1 FROM pg_default_acl d, aclexplode(d.defaclacl) da
                        WHERE d.defaclrole = i.owner AND d.defaclobjtype = i.defacl_kind
                          AND d.defaclnamespace IN (0, i.nsp)
                          AND da.grantee = i.grantee AND da.privilege_type = i.privilege_type
                          AND NOT (i.kind = 'TYPE' AND i.grantee = 0)));
$$;
COMMENT ON FUNCTION outbox.unintended_privileges() IS
    'Privileges on the extension''s objects that it did not grant itself (default privileges, PUBLIC, anything on the key table); outbox.restrict_privileges() revokes them';

-- Revokes what outbox.unintended_privileges() lists. Run last by every install and upgrade
-- script (so it covers whatever the sections above added); an owner may call it again, e.g.
-- after a function of the extension created objects.
CREATE FUNCTION outbox.restrict_privileges() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    item       record;
    -- An install (CREATE EXTENSION: every member joined the extension in this transaction)
    -- takes what default privileges gave silently: the objects are new, nobody held anything.
    installing boolean := NOT EXISTS (
        SELECT 1 FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
         WHERE d.refclassid = 'pg_extension'::regclass AND e.extname = 'outbox' AND d.deptype = 'e'
           AND d.xmin <> pg_current_xact_id()::xid);
    role_name  text;
    key_only   boolean;
BEGIN
    -- On an upgrade, who loses what, said once per role (PUBLIC silently: nothing here is meant
    -- for it).
    FOR role_name, key_only IN
        SELECT u.grantee::regrole::text, bool_and(u.reason LIKE 'the message key%')
          FROM outbox.unintended_privileges() u WHERE u.grantee <> 0 AND NOT installing
         GROUP BY 1 ORDER BY 1
    LOOP
        IF key_only THEN
            RAISE WARNING 'outbox: revoked the privileges of role % on outbox.message_key_store', role_name
                USING DETAIL = 'The message key is its owner''s only; the relay reads it through outbox.message_key() (outbox.grant_relay).';
        ELSE
            RAISE WARNING 'outbox: revoked the privileges of role % on the extension''s objects that default privileges give it', role_name
                USING DETAIL = 'Only the owner, outbox.grant_app() and outbox.grant_relay() give privileges on them; a grant that default privileges would also give cannot be told apart from theirs.',
                      HINT = format('If the role is a relay or an application whose grants these were, give them again: SELECT outbox.grant_relay(%1$L); or SELECT outbox.grant_app(%1$L);',
                                    role_name);
        END IF;
    END LOOP;
    FOR item IN SELECT DISTINCT u.object_kind, u.object_name, u.grantee, u.privilege_type
                  FROM outbox.unintended_privileges() u
    LOOP
        -- CASCADE: also what a grantee passed on with a grant option it got this way
        EXECUTE format('REVOKE %s ON %s %s FROM %s CASCADE', item.privilege_type, item.object_kind,
                       item.object_name, CASE item.grantee WHEN 0 THEN 'PUBLIC' ELSE item.grantee::regrole::text END);
    END LOOP;
    -- A REVOKE by the owner leaves an item another role granted (with a grant option the owner
    -- gave it by hand): say so rather than claim the objects are clean.
    FOR item IN SELECT * FROM outbox.unintended_privileges() LOOP
        RAISE WARNING 'outbox: could not revoke % on % % from % (granted by %)', item.privilege_type, item.object_kind,
                      item.object_name, CASE item.grantee WHEN 0 THEN 'PUBLIC' ELSE item.grantee::regrole::text END,
                      item.grantor::regrole
            USING DETAIL = item.reason,
                  HINT = format('As role %s: REVOKE %s ON %s %s FROM %s CASCADE;', item.grantor::regrole, item.privilege_type,
                                item.object_kind, item.object_name,
                                CASE item.grantee WHEN 0 THEN 'PUBLIC' ELSE item.grantee::regrole::text END);
    END LOOP;
END
$$;
COMMENT ON FUNCTION outbox.restrict_privileges() IS
    'Revoke from the extension''s objects every privilege it did not grant itself (run by the install and upgrade scripts; the owner''s only)';

SELECT outbox.restrict_privileges();
