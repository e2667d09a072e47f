-- +goose Up

-- The live records of each connector, counted after every incremental
-- pull of a connector that can count its own (so that a quiet run
-- compares two numbers instead of scanning the records).
CREATE INDEX records_live ON records(connector) WHERE deleted_at IS NULL;

-- +goose Down
DROP INDEX records_live;
