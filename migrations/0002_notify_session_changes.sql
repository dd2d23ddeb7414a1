-- Session-change notifications: server instances cache verified sessions and clear that cache
-- when anything behind a session check changes (session versions, account or business status,
-- memberships, role permissions). The payload carries nothing: a notification only says
-- "re-check", so no tenant data travels on the channel.

CREATE FUNCTION notify_session_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('fleetfront_sessions', '');
    RETURN NULL;
END $$;

CREATE TRIGGER users_session_change AFTER UPDATE OF session_version, status OR DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION notify_session_change();
CREATE TRIGGER customers_session_change AFTER UPDATE OF session_version OR DELETE ON customers
    FOR EACH STATEMENT EXECUTE FUNCTION notify_session_change();
CREATE TRIGGER businesses_session_change AFTER UPDATE OF status OR DELETE ON businesses
    FOR EACH STATEMENT EXECUTE FUNCTION notify_session_change();
CREATE TRIGGER memberships_session_change AFTER UPDATE OR DELETE ON memberships
    FOR EACH STATEMENT EXECUTE FUNCTION notify_session_change();
CREATE TRIGGER role_permissions_session_change AFTER INSERT OR UPDATE OR DELETE ON role_permissions
    FOR EACH STATEMENT EXECUTE FUNCTION notify_session_change();
