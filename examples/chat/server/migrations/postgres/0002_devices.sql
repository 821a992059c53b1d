-- Several devices per user: the token and keys of users move to devices
-- (the existing ones as device 1), and one-time prekeys and queued
-- envelopes belong to a device.
CREATE TABLE devices (
	"user"       TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	id           BIGINT NOT NULL,
	token_hash   BYTEA NOT NULL UNIQUE,
	identity_key BYTEA NOT NULL,
	spk_id       BIGINT NOT NULL,
	spk          BYTEA NOT NULL,
	spk_sig      BYTEA NOT NULL,
	created      BIGINT NOT NULL,
	PRIMARY KEY ("user", id)
);
INSERT INTO devices ("user", id, token_hash, identity_key, spk_id, spk, spk_sig, created)
	SELECT name, 1, token_hash, identity_key, spk_id, spk, spk_sig, created FROM users;
ALTER TABLE users DROP COLUMN token_hash, DROP COLUMN identity_key, DROP COLUMN spk_id, DROP COLUMN spk, DROP COLUMN spk_sig;
ALTER TABLE prekeys ADD COLUMN device BIGINT NOT NULL DEFAULT 1;
ALTER TABLE prekeys DROP CONSTRAINT prekeys_pkey;
ALTER TABLE prekeys ADD PRIMARY KEY ("user", device, id);
ALTER TABLE prekeys ADD FOREIGN KEY ("user", device) REFERENCES devices ("user", id) ON DELETE CASCADE;
ALTER TABLE queue ADD COLUMN device BIGINT NOT NULL DEFAULT 1;
ALTER TABLE queue ADD COLUMN sender_device BIGINT NOT NULL DEFAULT 1;
DROP INDEX queue_by_recipient;
CREATE INDEX queue_by_device ON queue (recipient, device, seq);
-- The devices of one user share an identity key, which no other user may
-- have: identity_keys says whose each key is (see checkIdentityFree).
CREATE TABLE identity_keys (
	key    BYTEA PRIMARY KEY,
	"user" TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE
);
INSERT INTO identity_keys (key, "user") SELECT identity_key, "user" FROM devices;
-- Link codes: the SHA-256 hash of a code that lets one more device join
-- user's account until expires (Unix time), and the provisioning message
-- the new device fetches with it (the account's identity key, encrypted
-- under a key the server does not have).
CREATE TABLE device_links (
	code_hash BYTEA PRIMARY KEY,
	"user"    TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	expires   BIGINT NOT NULL,
	provision BYTEA NOT NULL
);
