-- +goose Up

-- One real person. fields holds the entity's agreed canonical values
-- (JSON object): what every linked side should hold. dirty is set when
-- something about the entity awaits reconciling (1), or when its identity
-- keys must be rebuilt as well (2).
CREATE TABLE entities (
    id         INTEGER PRIMARY KEY,
    fields     TEXT NOT NULL DEFAULT '{}',
    dirty      INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    deleted_at TEXT
);
CREATE INDEX entities_dirty ON entities(dirty) WHERE dirty <> 0;

-- Each remote record: the last pulled snapshot mapped to canonical values
-- (fields, JSON), its content hash and remote modified time, and its link
-- to an entity. synced holds the canonical values of the last
-- reconciliation or successful push of this link: the base of the
-- three-way merge; NULL for a link not reconciled yet. dirty is set when a
-- pull brought a new hash (or a tombstone) that awaits reconciling.
-- seen_run is the run that last saw the record in a complete listing.
CREATE TABLE records (
    connector   TEXT NOT NULL,
    remote_id   TEXT NOT NULL,
    entity_id   INTEGER REFERENCES entities(id),
    fields      TEXT NOT NULL,
    synced      TEXT,
    hash        TEXT NOT NULL,
    modified_at TEXT,
    pulled_at   TEXT NOT NULL,
    seen_run    INTEGER NOT NULL DEFAULT 0,
    deleted_at  TEXT,
    dirty       INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (connector, remote_id)
);
CREATE INDEX records_dirty ON records(dirty) WHERE dirty = 1;
-- At most one record per connector and entity.
CREATE UNIQUE INDEX records_link ON records(entity_id, connector) WHERE entity_id IS NOT NULL;

-- Identity keys of live entities (normalised email, E.164 phone,
-- configured extra keys) for matching unlinked records.
CREATE TABLE identity_keys (
    kind      TEXT NOT NULL,
    value     TEXT NOT NULL,
    entity_id INTEGER NOT NULL REFERENCES entities(id),
    PRIMARY KEY (kind, value, entity_id)
) WITHOUT ROWID;
CREATE INDEX identity_keys_entity ON identity_keys(entity_id);

-- Pull positions per connector. in_progress is set while a pull has
-- stored some pages but not its last one; complete_at is when a pull last
-- finished.
CREATE TABLE cursors (
    connector   TEXT PRIMARY KEY,
    cursor      TEXT NOT NULL,
    in_progress INTEGER NOT NULL DEFAULT 0,
    updated_at  TEXT NOT NULL,
    complete_at TEXT
);

-- Planned writes. A row is written in the same transaction as the merge
-- that planned it and marked done in the transaction that updates the
-- link. state: pending; attempted (a create that may have reached the
-- CRM); failed (the CRM refused it; retried on later runs); done.
-- fields are the CRM fields to send, canonical the canonical values they
-- carry (the link's synced values after success).
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
    run_id     INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX outbox_open ON outbox(connector, id) WHERE state <> 'done';
CREATE INDEX outbox_entity ON outbox(entity_id) WHERE state <> 'done';

-- Every conflict, with all competing values (JSON: connector -> value),
-- the decision and its reason. status: settled (by policy), open (policy
-- manual: the field is parked), resolved (by an operator).
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
CREATE INDEX conflicts_open ON conflicts(entity_id, field) WHERE status = 'open';
CREATE INDEX conflicts_run ON conflicts(run_id);

-- Records parked for review: ambiguous identity matches.
CREATE TABLE parked (
    connector  TEXT NOT NULL,
    remote_id  TEXT NOT NULL,
    reason     TEXT NOT NULL,
    candidates TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL,
    PRIMARY KEY (connector, remote_id)
);

-- The run journal. status: running, ok, failed, interrupted, dry.
CREATE TABLE runs (
    id                INTEGER PRIMARY KEY,
    started_at        TEXT NOT NULL,
    finished_at       TEXT,
    status            TEXT NOT NULL DEFAULT 'running',
    dry_run           INTEGER NOT NULL DEFAULT 0,
    full              INTEGER NOT NULL DEFAULT 0,
    conflicts         INTEGER NOT NULL DEFAULT 0,
    failed            INTEGER NOT NULL DEFAULT 0,
    parked            INTEGER NOT NULL DEFAULT 0,
    deletions_blocked TEXT,
    error             TEXT
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
DROP TABLE entities;
