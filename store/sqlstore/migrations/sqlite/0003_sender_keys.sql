-- Version 3, SQLite dialect: the sender-key records of group messaging (package
-- senderkey), one per (sender address, distribution id). record is the
-- blob of senderkey.Record.Bytes; the sender's name is kept beside its
-- SHA-256, as for sessions, so that keys stay short whatever the name.

CREATE TABLE ratchetkit_sender_keys (
	name_hash BLOB NOT NULL,
	device_id INTEGER NOT NULL CHECK (device_id BETWEEN 0 AND 4294967295),
	distribution_id BLOB NOT NULL CHECK (length(distribution_id) = 16),
	name BLOB NOT NULL,
	record BLOB NOT NULL,
	PRIMARY KEY (name_hash, device_id, distribution_id)
);
