-- Version 3, PostgreSQL dialect: the sender-key records of group messaging (package
-- senderkey), one per (sender address, distribution id). record is the
-- blob of senderkey.Record.Bytes; the sender's name is kept beside its
-- SHA-256, as for sessions, so that keys stay short whatever the name.

CREATE TABLE ratchetkit_sender_keys (
	name_hash BYTEA NOT NULL,
	device_id BIGINT NOT NULL CHECK (device_id BETWEEN 0 AND 4294967295),
	distribution_id BYTEA NOT NULL CHECK (length(distribution_id) = 16),
	name BYTEA NOT NULL,
	record BYTEA NOT NULL,
	PRIMARY KEY (name_hash, device_id, distribution_id)
);
