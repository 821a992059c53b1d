-- The schema of the first release. Every statement is IF NOT EXISTS, so a
-- database made before migrations were numbered takes it as a no-op.
CREATE TABLE IF NOT EXISTS users (
	name         TEXT PRIMARY KEY,
	token_hash   BLOB NOT NULL UNIQUE,
	identity_key BLOB NOT NULL,
	spk_id       INTEGER NOT NULL,
	spk          BLOB NOT NULL,
	spk_sig      BLOB NOT NULL,
	created      INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS prekeys (
	user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	id   INTEGER NOT NULL,
	key  BLOB NOT NULL,
	PRIMARY KEY (user, id)
);
CREATE TABLE IF NOT EXISTS queue (
	seq       INTEGER PRIMARY KEY AUTOINCREMENT,
	recipient TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	sender    TEXT NOT NULL,
	body      BLOB NOT NULL,
	created   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_by_recipient ON queue (recipient, seq);
CREATE UNIQUE INDEX IF NOT EXISTS users_by_identity_key ON users (identity_key);
CREATE TABLE IF NOT EXISTS invites (
	code_hash BLOB PRIMARY KEY,
	used_by   TEXT
);
