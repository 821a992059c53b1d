package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/ratchetkit/ratchetkit/examples/chat/api"
)

// The queue is bounded four ways, because anyone with an account can send
// anything to anyone:
//
//   - per recipient device, by count (MaxQueue) and bytes (MaxQueueBytes),
//     so that one recipient's backlog cannot take the disk (an account
//     has at most MaxDevices of them);
//   - per sending account within each recipient device's queue
//     (SenderShare of both), so that one sender cannot fill a recipient's
//     queue and lock out the others: with the defaults a sender (all its
//     devices together) may hold a quarter of it;
//   - in total (MaxTotalQueueBytes), so that many senders sending to many
//     recipients still stop at a size the operator chose;
//   - in time, by a send rate per sender (SendRate, SendBurst), so that
//     one account reaches those limits slowly and costs the server a
//     bounded number of writes per second.
//
// A refusal tells the sender which limit it met and the limit's value,
// and changes nothing.

// refusal is a send the queue's limits refuse, with the frame error the
// sender gets.
type refusal struct {
	code string
	msg  string
}

func (r *refusal) Error() string { return r.msg }

// senderShare returns the count and bytes one sender may hold in one
// recipient's queue: at least one envelope of the largest size, so that a
// share is never smaller than a single message.
func (cfg *Config) senderShare() (n int, bytes int64) {
	n = max(1, int(float64(cfg.MaxQueue)*cfg.SenderShare))
	bytes = max(int64(api.MaxEnvelopeSize), int64(float64(cfg.MaxQueueBytes)*cfg.SenderShare))
	return n, bytes
}

// serverFull is the refusal of an envelope over MaxTotalQueueBytes.
func (cfg *Config) serverFull() *refusal {
	return &refusal{api.CodeServerFull, fmt.Sprintf(
		"the server's queue holds its limit of %d bytes for all users; retry later", cfg.MaxTotalQueueBytes)}
}

// insertQueued stores an envelope of from for device to in tx, if the recipient's
// limits allow, and returns its sequence number or a *refusal naming the
// limit it would exceed. The limit on all queues together is the
// caller's, since the two backends keep that total differently.
//
// The per-recipient figures come from one pass over the recipient's rows,
// which MaxQueue bounds; octet_length(body) reads a blob's size from the
// record header without loading the blob. The caller makes the check and
// the insert one step: SQLite by its single connection, PostgreSQL by a
// lock on the recipient.
func (c *sqlCore) insertQueued(ctx context.Context, tx *sql.Tx, from, to device, body []byte) (int64, error) {
	size := int64(len(body))
	var n, fromN int
	var bytes, fromBytes int64
	if err := tx.QueryRowContext(ctx, c.q(`SELECT count(*), coalesce(sum(octet_length(body)), 0),
		coalesce(sum(CASE WHEN sender = ? THEN 1 ELSE 0 END), 0),
		coalesce(sum(CASE WHEN sender = ? THEN octet_length(body) ELSE 0 END), 0)
		FROM queue WHERE recipient = ? AND device = ?`), from.user, from.user, to.user, int64(to.id)).Scan(&n, &bytes, &fromN, &fromBytes); err != nil {
		return 0, err
	}
	shareN, shareBytes := c.cfg.senderShare()
	switch {
	case n >= c.cfg.MaxQueue || bytes+size > c.cfg.MaxQueueBytes:
		return 0, &refusal{api.CodeQueueFull, fmt.Sprintf(
			"the recipient's queue is full: at most %d envelopes or %d bytes wait for one recipient; retry when they have collected them",
			c.cfg.MaxQueue, c.cfg.MaxQueueBytes)}
	case fromN >= shareN || fromBytes+size > shareBytes:
		return 0, &refusal{api.CodeShareFull, fmt.Sprintf(
			"you have %d envelopes (%d bytes) waiting for this recipient; one sender may have at most %d envelopes or %d bytes waiting for one recipient; retry when they have collected them",
			fromN, fromBytes, shareN, shareBytes)}
	}
	var seq int64
	err := tx.QueryRowContext(ctx,
		c.q(`INSERT INTO queue (recipient, device, sender, sender_device, body, created) VALUES (?, ?, ?, ?, ?, ?) RETURNING seq`),
		to.user, int64(to.id), from.user, int64(from.id), body, c.now().Unix()).Scan(&seq)
	return seq, err
}

// deleteQueued deletes recipient's envelope seq and returns its size, or
// 0 if there is none. Acknowledging twice, or another user's envelope,
// deletes nothing and is not an error: the client cannot tell the two
// apart anyway, and a repeated ack after a reconnect is normal.
func (c *sqlCore) deleteQueued(ctx context.Context, tx *sql.Tx, recipient device, seq int64) (int64, error) {
	var size int64
	err := tx.QueryRowContext(ctx, c.q(`DELETE FROM queue WHERE recipient = ? AND device = ? AND seq = ? RETURNING octet_length(body)`),
		recipient.user, int64(recipient.id), seq).Scan(&size)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	c.deleted()
	return size, nil
}
