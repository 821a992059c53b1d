package server

import (
	"context"
	"database/sql"
	"errors"
)

// Registration is open by default: anyone can create as many accounts as
// the per-address limit lets them, and every account may fetch bundles
// and send. What an account costs is the lever against abuse that scales
// with accounts (draining one-time prekeys, filling queues from many
// senders). The two usual levers are invite codes and proof of work; this
// server implements invite codes (Config.InviteCodes). See the package
// documentation for why.

// minInviteLen is the shortest invite code accepted: codes are looked up
// by hash like tokens, which is safe only for codes too long to guess.
const minInviteLen = 16

// maxInviteLen bounds the code a client may send.
const maxInviteLen = 256

// errBadInvite refuses a registration without a valid, unused code.
var errBadInvite = errors.New("invite code missing, unknown or used")

// loadInvites makes codes the set of unused invite codes: codes already
// used stay recorded as used, unused codes not in the list are dropped.
func (c *sqlCore) loadInvites(ctx context.Context, codes []string) error {
	return c.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM invites WHERE used_by IS NULL`); err != nil {
			return err
		}
		for _, code := range codes {
			if _, err := tx.ExecContext(ctx, c.q(`INSERT INTO invites (code_hash) VALUES (?) ON CONFLICT DO NOTHING`), hashToken(code)); err != nil {
				return err
			}
		}
		return nil
	})
}

// inviteUsable reports whether invite may register now: invite codes are
// off, or it is listed and unused. Registration asks before it verifies
// any signature, so that a client without a code costs no more than a
// lookup; useInvite decides, in the registration's transaction.
func (c *sqlCore) inviteUsable(ctx context.Context, invite string) (bool, error) {
	if len(c.cfg.InviteCodes) == 0 {
		return true, nil
	}
	if len(invite) < minInviteLen || len(invite) > maxInviteLen {
		return false, nil
	}
	var n int
	err := c.db.QueryRowContext(ctx, c.q(`SELECT count(*) FROM invites WHERE code_hash = ? AND used_by IS NULL`), hashToken(invite)).Scan(&n)
	return n > 0, err
}

// useInvite marks invite as used by name, in the registration's
// transaction, or fails with errBadInvite. Without invite codes configured
// it does nothing.
func (c *sqlCore) useInvite(ctx context.Context, tx *sql.Tx, name, invite string) error {
	if len(c.cfg.InviteCodes) == 0 {
		return nil
	}
	if len(invite) < minInviteLen || len(invite) > maxInviteLen {
		return errBadInvite
	}
	res, err := tx.ExecContext(ctx, c.q(`UPDATE invites SET used_by = ? WHERE code_hash = ? AND used_by IS NULL`), name, hashToken(invite))
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err == nil && n == 0 {
		err = errBadInvite
	}
	return err
}
