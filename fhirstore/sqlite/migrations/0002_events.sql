-- The subscription pipeline's durable state (fhirstore.EventStore).

-- Consumer cursors into the change feed: the last seq each named consumer
-- (the matcher) has fully processed.
CREATE TABLE cursors (
	name TEXT    PRIMARY KEY,
	seq  INTEGER NOT NULL
) WITHOUT ROWID;

-- Delivery state of each subscription, apart from the Subscription
-- resource so that a counter bump creates no resource version. Times are
-- unix milliseconds, 0 for none.
CREATE TABLE subscription_state (
	subscription_id TEXT    PRIMARY KEY,
	event_count     INTEGER NOT NULL DEFAULT 0,  -- number of the last recorded event, or less: see eventcounts.go
	delivered       INTEGER NOT NULL DEFAULT 0,  -- number of the last acknowledged event
	failures        INTEGER NOT NULL DEFAULT 0,
	last_error      TEXT    NOT NULL DEFAULT '',
	last_attempt    INTEGER NOT NULL DEFAULT 0,
	last_success    INTEGER NOT NULL DEFAULT 0,
	next_attempt    INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Each subscription's event log, numbered 1, 2, 3, … without gaps. One
-- change triggers a subscription at most once: (change_seq,
-- subscription_id) is unique, which is also how a replayed Record finds
-- the events a change produced.
CREATE TABLE subscription_events (
	subscription_id TEXT    NOT NULL,
	number          INTEGER NOT NULL,
	change_seq      INTEGER NOT NULL,
	topic           TEXT    NOT NULL,
	type            TEXT    NOT NULL,
	id              TEXT    NOT NULL,
	version_id      TEXT    NOT NULL,
	interaction     TEXT    NOT NULL,
	time            INTEGER NOT NULL,   -- unix milliseconds
	PRIMARY KEY (subscription_id, number)
) WITHOUT ROWID;
CREATE UNIQUE INDEX subscription_events_change ON subscription_events (change_seq, subscription_id);
