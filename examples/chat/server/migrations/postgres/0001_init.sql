-- The tables of the SQLite schema, in PostgreSQL's types ("user" is a
-- reserved word here and is quoted), and two more that SQLite keeps in
-- the server's memory: the total of queued bytes and the rate limits,
-- which several instances must share.
CREATE TABLE users (
	name         TEXT PRIMARY KEY,
	token_hash   BYTEA NOT NULL UNIQUE,
	identity_key BYTEA NOT NULL UNIQUE,
	spk_id       BIGINT NOT NULL,
	spk          BYTEA NOT NULL,
	spk_sig      BYTEA NOT NULL,
	created      BIGINT NOT NULL
);
CREATE TABLE prekeys (
	"user" TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	id     BIGINT NOT NULL,
	key    BYTEA NOT NULL,
	PRIMARY KEY ("user", id)
);
CREATE TABLE queue (
	seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	recipient TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	sender    TEXT NOT NULL,
	body      BYTEA NOT NULL,
	created   BIGINT NOT NULL
);
CREATE INDEX queue_by_recipient ON queue (recipient, seq);
CREATE TABLE invites (
	code_hash BYTEA PRIMARY KEY,
	used_by   TEXT
);
-- One row: the size of every envelope in queue, kept by enqueue and ack.
CREATE TABLE queue_total (
	id    INTEGER PRIMARY KEY CHECK (id = 1),
	bytes BIGINT NOT NULL
);
INSERT INTO queue_total (id, bytes) VALUES (1, 0);
-- One row per limit and key: the limit's theoretical arrival time (see
-- pgLimiter), in seconds since 1970.
CREATE TABLE rate_limits (
	lim TEXT NOT NULL,
	key TEXT NOT NULL,
	tat DOUBLE PRECISION NOT NULL,
	PRIMARY KEY (lim, key)
);
