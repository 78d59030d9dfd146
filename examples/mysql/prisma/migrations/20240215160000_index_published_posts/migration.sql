-- CreateIndex
-- Built online (edited by hand): InnoDB keeps "Post" writable while the index builds, the
-- MySQL counterpart of PostgreSQL's CREATE INDEX CONCURRENTLY.
CREATE INDEX `Post_status_publishedAt_idx` ON `Post`(`status`, `publishedAt`) ALGORITHM=INPLACE LOCK=NONE;
