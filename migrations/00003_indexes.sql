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

-- +goose Down
DROP INDEX entities_dirty;
CREATE INDEX entities_dirty ON entities(dirty) WHERE dirty <> 0;
DROP INDEX records_live;
