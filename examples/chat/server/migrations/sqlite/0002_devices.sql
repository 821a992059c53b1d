-- Several devices per user. What was one row of users (the account and
-- its only device's token and keys) becomes a row of users (the account)
-- and a row of devices (device 1); one-time prekeys and queued envelopes
-- belong to a device. SQLite cannot drop the columns of users that
-- carried keys (token_hash is UNIQUE), so users is rebuilt the way
-- SQLite's documentation describes (make the new table, copy, drop the
-- old one, rename), with foreign keys off for the migration (see
-- sqliteStorage's migrate): with them on, dropping users would delete
-- every row that references it.
CREATE TABLE users_v2 (
	name    TEXT PRIMARY KEY,
	created INTEGER NOT NULL
);
INSERT INTO users_v2 (name, created) SELECT name, created FROM users;
CREATE TABLE devices (
	user         TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	id           INTEGER NOT NULL,
	token_hash   BLOB NOT NULL UNIQUE,
	identity_key BLOB NOT NULL,
	spk_id       INTEGER NOT NULL,
	spk          BLOB NOT NULL,
	spk_sig      BLOB NOT NULL,
	created      INTEGER NOT NULL,
	PRIMARY KEY (user, id)
);
INSERT INTO devices (user, id, token_hash, identity_key, spk_id, spk, spk_sig, created)
	SELECT name, 1, token_hash, identity_key, spk_id, spk, spk_sig, created FROM users;
CREATE TABLE prekeys_v2 (
	user   TEXT NOT NULL,
	device INTEGER NOT NULL,
	id     INTEGER NOT NULL,
	key    BLOB NOT NULL,
	PRIMARY KEY (user, device, id),
	FOREIGN KEY (user, device) REFERENCES devices(user, id) ON DELETE CASCADE
);
INSERT INTO prekeys_v2 (user, device, id, key) SELECT user, 1, id, key FROM prekeys;
DROP TABLE prekeys;
ALTER TABLE prekeys_v2 RENAME TO prekeys;
ALTER TABLE queue ADD COLUMN device INTEGER NOT NULL DEFAULT 1;
ALTER TABLE queue ADD COLUMN sender_device INTEGER NOT NULL DEFAULT 1;
DROP INDEX queue_by_recipient;
CREATE INDEX queue_by_device ON queue (recipient, device, seq);
-- The devices of one user share an identity key, which no other user may
-- have: identity_keys says whose each key is (see checkIdentityFree).
CREATE TABLE identity_keys (
	key    BLOB PRIMARY KEY,
	user   TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE
);
INSERT INTO identity_keys (key, user) SELECT identity_key, user FROM devices;
-- Link codes: the SHA-256 hash of a code that lets one more device join
-- user's account until expires (Unix time), and the provisioning message
-- the new device fetches with it (the account's identity key, encrypted
-- under a key the server does not have).
CREATE TABLE device_links (
	code_hash BLOB PRIMARY KEY,
	user      TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	expires   INTEGER NOT NULL,
	provision BLOB NOT NULL
);
DROP TABLE users;
ALTER TABLE users_v2 RENAME TO users;
