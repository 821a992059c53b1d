-- Version 2, SQLite dialect: the Kyber prekeys of the Signal protocol and
-- the (Kyber prekey, signed prekey, base key) triples used with last-resort
-- ones. record is the blob of kyber.PreKey.MarshalBinary (it holds the
-- 64-byte seed); last_resort, used and created repeat what List reports, so
-- that it reads no blob. base_key is the 32-byte u-coordinate. The triples
-- are deleted with the Kyber prekey or the signed prekey they name (by the
-- store, not by foreign keys, which SQLite enforces only when asked).

CREATE TABLE ratchetkit_kyber_prekeys (
	id INTEGER PRIMARY KEY CHECK (id BETWEEN 0 AND 4294967295),
	last_resort INTEGER NOT NULL CHECK (last_resort IN (0, 1)),
	used INTEGER NOT NULL DEFAULT 0 CHECK (used IN (0, 1)),
	created INTEGER NOT NULL,
	record BLOB NOT NULL
);

CREATE TABLE ratchetkit_kyber_prekey_counter (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	last_id INTEGER NOT NULL
);

INSERT INTO ratchetkit_kyber_prekey_counter (id, last_id) VALUES (1, 0);

CREATE TABLE ratchetkit_kyber_used (
	kyber_id INTEGER NOT NULL CHECK (kyber_id BETWEEN 0 AND 4294967295),
	signed_id INTEGER NOT NULL CHECK (signed_id BETWEEN 0 AND 4294967295),
	base_key BLOB NOT NULL,
	PRIMARY KEY (kyber_id, signed_id, base_key)
);

CREATE INDEX ratchetkit_kyber_used_signed ON ratchetkit_kyber_used (signed_id);
