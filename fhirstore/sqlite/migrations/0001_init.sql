-- The change feed: one row per committed write. seq is the rowid, so it is
-- max(seq)+1 on insert: gap-free because rows are never deleted and writes
-- are serialised.
CREATE TABLE changes (
	seq          INTEGER PRIMARY KEY,
	type         TEXT    NOT NULL,
	id           TEXT    NOT NULL,
	version      INTEGER NOT NULL,
	prev_version INTEGER,            -- NULL when no live version existed
	interaction  TEXT    NOT NULL,   -- create | update | delete
	time         INTEGER NOT NULL    -- unix milliseconds
);
CREATE INDEX changes_type_seq ON changes (type, seq);

-- Every version of every resource; body is NULL for a deletion tombstone.
CREATE TABLE versions (
	seq     INTEGER PRIMARY KEY REFERENCES changes (seq),
	type    TEXT    NOT NULL,
	id      TEXT    NOT NULL,
	version INTEGER NOT NULL,
	time    INTEGER NOT NULL,
	body    BLOB
);
CREATE UNIQUE INDEX versions_key ON versions (type, id, version);

-- The current version of each resource. keys lists its rows of
-- search_keys (JSON [[param, value], …]) so that they can be deleted by
-- primary key without a second index on search_keys.
CREATE TABLE resources (
	type    TEXT    NOT NULL,
	id      TEXT    NOT NULL,
	version INTEGER NOT NULL,
	seq     INTEGER NOT NULL REFERENCES versions (seq),
	deleted INTEGER NOT NULL,
	keys    TEXT,
	PRIMARY KEY (type, id)
) WITHOUT ROWID;

-- Exact search keys (conformance/search.Keys) of the live resources.
CREATE TABLE search_keys (
	type  TEXT NOT NULL,
	param TEXT NOT NULL,
	value TEXT NOT NULL,
	id    TEXT NOT NULL,
	PRIMARY KEY (type, param, value, id)
) WITHOUT ROWID;
