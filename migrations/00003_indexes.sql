-- +goose Up

-- The live records of each connector, counted after every incremental
-- pull of a connector that can count its own (so that a quiet run
-- compares two numbers instead of scanning the records).
CREATE INDEX records_live ON records(connector, deleted_at) WHERE deleted_at IS NULL;

-- Dirty entities in id order, as reconciling walks them: keyed by dirty
-- level, the index could not give that order, and a run with a few
-- dirty entities scanned them all.
DROP INDEX entities_dirty;
CREATE INDEX entities_dirty ON entities(id) WHERE dirty <> 0;

-- A hash of each record's CRM values as pulled, with the mapping that
-- read them (raw_hash): a record pulled again with the same hash is not
-- mapped again. NULL when unknown (a record syncd wrote since).
ALTER TABLE records ADD COLUMN raw_hash TEXT;

-- +goose Down
ALTER TABLE records DROP COLUMN raw_hash;
DROP INDEX entities_dirty;
CREATE INDEX entities_dirty ON entities(dirty) WHERE dirty <> 0;
DROP INDEX records_live;
