-- +goose Up

-- One real person.
CREATE TABLE entities (
    id         INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    deleted_at TEXT
);

-- A connector's record of an entity; at most one per connector and entity.
-- synced holds the canonical values both sides agreed on at the last
-- successful sync of this link (JSON object): the base of the merge.
CREATE TABLE links (
    connector  TEXT NOT NULL,
    remote_id  TEXT NOT NULL,
    entity_id  INTEGER NOT NULL REFERENCES entities(id),
    synced     TEXT NOT NULL DEFAULT '{}',
    synced_at  TEXT,
    PRIMARY KEY (connector, remote_id),
    UNIQUE (entity_id, connector)
);

-- The last pulled snapshot of each remote record, mapped to canonical
-- values (JSON), with its content hash and remote modified time. dirty is
-- set when a pull brought a new hash and the record awaits reconciling.
CREATE TABLE records (
    connector   TEXT NOT NULL,
    remote_id   TEXT NOT NULL,
    fields      TEXT NOT NULL,
    hash        TEXT NOT NULL,
    modified_at TEXT,
    pulled_at   TEXT NOT NULL,
    seen_run    INTEGER NOT NULL DEFAULT 0,
    deleted_at  TEXT,
    dirty       INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (connector, remote_id)
);
CREATE INDEX records_dirty ON records(dirty) WHERE dirty = 1;

-- Identity keys of entities (normalised email, E.164 phone, configured
-- extra keys) for matching unlinked records.
CREATE TABLE identity_keys (
    kind      TEXT NOT NULL,
    value     TEXT NOT NULL,
    entity_id INTEGER NOT NULL REFERENCES entities(id),
    PRIMARY KEY (kind, value, entity_id)
);
CREATE INDEX identity_keys_entity ON identity_keys(entity_id);

-- Pull positions per connector. complete_at is when a pull last finished.
CREATE TABLE cursors (
    connector   TEXT PRIMARY KEY,
    cursor      TEXT NOT NULL,
    in_progress INTEGER NOT NULL DEFAULT 0,
    updated_at  TEXT NOT NULL,
    complete_at TEXT
);

-- Planned writes. A row is written in the same transaction as the merge
-- that planned it and marked done in the transaction that updates the link.
-- state: pending, attempted (a create that may have reached the CRM),
-- done, failed (the CRM rejected it; retried on later runs).
CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY,
    entity_id  INTEGER NOT NULL REFERENCES entities(id),
    connector  TEXT NOT NULL,
    op         TEXT NOT NULL CHECK (op IN ('create', 'update', 'delete')),
    remote_id  TEXT,
    fields     TEXT NOT NULL DEFAULT '{}',
    canonical  TEXT NOT NULL DEFAULT '{}',
    state      TEXT NOT NULL DEFAULT 'pending',
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX outbox_open ON outbox(connector, state) WHERE state <> 'done';

-- Every conflict, with all competing values (JSON: connector -> value),
-- the decision and its reason.
CREATE TABLE conflicts (
    id          INTEGER PRIMARY KEY,
    entity_id   INTEGER NOT NULL REFERENCES entities(id),
    field       TEXT NOT NULL,
    base        TEXT,
    candidates  TEXT NOT NULL,
    policy      TEXT NOT NULL,
    decision    TEXT,
    winner      TEXT,
    reason      TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'settled',
    run_id      INTEGER,
    created_at  TEXT NOT NULL,
    resolved_at TEXT
);
CREATE INDEX conflicts_open ON conflicts(status) WHERE status = 'open';

-- Records parked for review: ambiguous identity matches.
CREATE TABLE parked (
    connector  TEXT NOT NULL,
    remote_id  TEXT NOT NULL,
    reason     TEXT NOT NULL,
    candidates TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL,
    PRIMARY KEY (connector, remote_id)
);

-- The run journal.
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    status      TEXT NOT NULL DEFAULT 'running',
    dry_run     INTEGER NOT NULL DEFAULT 0,
    full        INTEGER NOT NULL DEFAULT 0,
    error       TEXT
);

CREATE TABLE run_connectors (
    run_id      INTEGER NOT NULL REFERENCES runs(id),
    connector   TEXT NOT NULL,
    pulled      INTEGER NOT NULL DEFAULT 0,
    changed     INTEGER NOT NULL DEFAULT 0,
    matched     INTEGER NOT NULL DEFAULT 0,
    created     INTEGER NOT NULL DEFAULT 0,
    updated     INTEGER NOT NULL DEFAULT 0,
    deleted     INTEGER NOT NULL DEFAULT 0,
    unchanged   INTEGER NOT NULL DEFAULT 0,
    conflicts   INTEGER NOT NULL DEFAULT 0,
    failed      INTEGER NOT NULL DEFAULT 0,
    reads       INTEGER NOT NULL DEFAULT 0,
    writes      INTEGER NOT NULL DEFAULT 0,
    retries     INTEGER NOT NULL DEFAULT 0,
    duration_ms INTEGER NOT NULL DEFAULT 0,
    error       TEXT,
    PRIMARY KEY (run_id, connector)
);

-- +goose Down
DROP TABLE run_connectors;
DROP TABLE runs;
DROP TABLE parked;
DROP TABLE conflicts;
DROP TABLE outbox;
DROP TABLE cursors;
DROP TABLE identity_keys;
DROP TABLE records;
DROP TABLE links;
DROP TABLE entities;
