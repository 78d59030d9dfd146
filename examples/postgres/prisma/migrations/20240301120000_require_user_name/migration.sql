-- Backfill (added by hand): every user gets a name before the column becomes required.
UPDATE "User" SET "name" = split_part("email", '@', 1) WHERE "name" IS NULL OR "name" = '';

-- AlterTable
ALTER TABLE "User" ALTER COLUMN "name" SET NOT NULL;
