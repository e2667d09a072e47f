-- +goose Up

-- Where each agreed value of an entity came from (JSON object: field ->
-- {"c": connector, "at": time of the change, "run": run id, "how": …}),
-- for `syncd explain`. The member "*" stands for every field not named,
-- as set when a record created the entity.
ALTER TABLE entities ADD COLUMN origins TEXT NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE entities DROP COLUMN origins;
