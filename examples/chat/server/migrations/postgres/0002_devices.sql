-- Several devices per user: the token and keys of users move to devices
-- (the existing ones as device 1), and one-time prekeys and queued
-- envelopes belong to a device.
CREATE TABLE devices (
	"user"       TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	id           BIGINT NOT NULL,
	token_hash   BYTEA NOT NULL UNIQUE,
	identity_key BYTEA NOT NULL UNIQUE,
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
-- Link codes: the SHA-256 hash of a code that lets one more device join
-- user's account until expires (Unix time).
CREATE TABLE device_links (
	code_hash BYTEA PRIMARY KEY,
	"user"    TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	expires   BIGINT NOT NULL
);
