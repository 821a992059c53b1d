-- Version 1 of the ratchetkit store schema, PostgreSQL dialect.
-- Names are keyed by their SHA-256 (name_hash): a B-tree index entry holds
-- at most about 2.7 KB, and a name may be longer. The name itself is kept
-- beside it. uint32 ids need BIGINT; private keys are 32 raw bytes; public
-- keys are the 32-byte u-coordinate; created is in Unix seconds.

CREATE TABLE ratchetkit_local (
	id SMALLINT PRIMARY KEY CHECK (id = 1),
	private_key BYTEA NOT NULL,
	device_id BIGINT NOT NULL CHECK (device_id BETWEEN 0 AND 4294967295)
);

CREATE TABLE ratchetkit_identities (
	name_hash BYTEA NOT NULL,
	device_id BIGINT NOT NULL CHECK (device_id BETWEEN 0 AND 4294967295),
	name BYTEA NOT NULL,
	public_key BYTEA NOT NULL,
	PRIMARY KEY (name_hash, device_id)
);

CREATE TABLE ratchetkit_prekeys (
	id BIGINT PRIMARY KEY CHECK (id BETWEEN 0 AND 4294967295),
	private_key BYTEA NOT NULL
);

CREATE TABLE ratchetkit_prekey_counter (
	id SMALLINT PRIMARY KEY CHECK (id = 1),
	last_id BIGINT NOT NULL
);

INSERT INTO ratchetkit_prekey_counter (id, last_id) VALUES (1, 0);

CREATE TABLE ratchetkit_signed_prekeys (
	id BIGINT PRIMARY KEY CHECK (id BETWEEN 0 AND 4294967295),
	created BIGINT NOT NULL,
	private_key BYTEA NOT NULL,
	signature BYTEA NOT NULL
);

CREATE TABLE ratchetkit_sessions (
	name_hash BYTEA NOT NULL,
	device_id BIGINT NOT NULL CHECK (device_id BETWEEN 0 AND 4294967295),
	name BYTEA NOT NULL,
	record BYTEA NOT NULL,
	PRIMARY KEY (name_hash, device_id)
);
