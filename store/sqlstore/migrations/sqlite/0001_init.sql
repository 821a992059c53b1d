-- Version 1 of the ratchetkit store schema, SQLite dialect.
-- Names are keyed by their SHA-256 (name_hash), so that a name of any length
-- fits an index; the name itself is kept beside it.
-- Integers hold uint32 ids; private keys are 32 raw bytes; public keys are
-- the 32-byte u-coordinate; created is in Unix seconds.

CREATE TABLE ratchetkit_local (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	private_key BLOB NOT NULL,
	device_id INTEGER NOT NULL CHECK (device_id BETWEEN 0 AND 4294967295)
);

CREATE TABLE ratchetkit_identities (
	name_hash BLOB NOT NULL,
	device_id INTEGER NOT NULL CHECK (device_id BETWEEN 0 AND 4294967295),
	name BLOB NOT NULL,
	public_key BLOB NOT NULL,
	PRIMARY KEY (name_hash, device_id)
);

CREATE TABLE ratchetkit_prekeys (
	id INTEGER PRIMARY KEY CHECK (id BETWEEN 0 AND 4294967295),
	private_key BLOB NOT NULL
);

CREATE TABLE ratchetkit_prekey_counter (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	last_id INTEGER NOT NULL
);

INSERT INTO ratchetkit_prekey_counter (id, last_id) VALUES (1, 0);

CREATE TABLE ratchetkit_signed_prekeys (
	id INTEGER PRIMARY KEY CHECK (id BETWEEN 0 AND 4294967295),
	created INTEGER NOT NULL,
	private_key BLOB NOT NULL,
	signature BLOB NOT NULL
);

CREATE TABLE ratchetkit_sessions (
	name_hash BLOB NOT NULL,
	device_id INTEGER NOT NULL CHECK (device_id BETWEEN 0 AND 4294967295),
	name BLOB NOT NULL,
	record BLOB NOT NULL,
	PRIMARY KEY (name_hash, device_id)
);
