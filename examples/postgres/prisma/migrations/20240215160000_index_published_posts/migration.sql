-- CreateIndex
-- Built CONCURRENTLY (edited by hand) so writers to "Post" are not blocked while it builds.
-- PostgreSQL cannot run this inside a transaction block: migrator runs this migration
-- statement by statement and says so in its output.
CREATE INDEX CONCURRENTLY "Post_status_publishedAt_idx" ON "Post"("status", "publishedAt");
