-- Backfill (added by hand): every user gets a name before the column becomes required.
UPDATE `User` SET `name` = SUBSTRING_INDEX(`email`, '@', 1) WHERE `name` IS NULL OR `name` = '';

-- AlterTable
ALTER TABLE `User` MODIFY `name` VARCHAR(191) NOT NULL DEFAULT '';
