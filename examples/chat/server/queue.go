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
//   - per recipient, by count (MaxQueue) and bytes (MaxQueueBytes), so
//     that one recipient's backlog cannot take the disk;
//   - per sender within each recipient's queue (SenderShare of both), so
//     that one sender cannot fill a recipient's queue and lock out the
//     others: with the defaults a sender may hold a quarter of it;
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
func (s *Server) senderShare() (n int, bytes int64) {
	n = max(1, int(float64(s.cfg.MaxQueue)*s.cfg.SenderShare))
	bytes = max(int64(api.MaxEnvelopeSize), int64(float64(s.cfg.MaxQueueBytes)*s.cfg.SenderShare))
	return n, bytes
}

// loadQueueBytes sets the running total of queued bytes from the table, at
// start-up.
func (s *Server) loadQueueBytes(ctx context.Context) error {
	return s.db.QueryRowContext(ctx, `SELECT coalesce(sum(length(body)), 0) FROM queue`).Scan(&s.queueBytes)
}

// enqueue stores an envelope for recipient and returns its sequence
// number, or a *refusal naming the limit it would exceed.
//
// The per-recipient figures come from one pass over the recipient's rows,
// which MaxQueue bounds; length(body) reads a blob's size from the record
// header without loading the blob. The total over all recipients is kept
// in memory instead (set at start-up, updated by enqueue and ack), since
// summing the whole table on every send would cost time in proportion to
// what the limit allows. queueMu makes the check and the insert one step.
func (s *Server) enqueue(ctx context.Context, from, to string, body []byte) (int64, error) {
	s.queueMu.Lock()
	defer s.queueMu.Unlock()
	size := int64(len(body))
	if s.queueBytes+size > s.cfg.MaxTotalQueueBytes {
		return 0, &refusal{api.CodeServerFull, fmt.Sprintf(
			"the server's queue holds its limit of %d bytes for all users; retry later", s.cfg.MaxTotalQueueBytes)}
	}
	var seq int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var n, fromN int
		var bytes, fromBytes int64
		if err := tx.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(length(body)), 0),
			coalesce(sum(sender = ?), 0), coalesce(sum(CASE WHEN sender = ? THEN length(body) ELSE 0 END), 0)
			FROM queue WHERE recipient = ?`, from, from, to).Scan(&n, &bytes, &fromN, &fromBytes); err != nil {
			return err
		}
		shareN, shareBytes := s.senderShare()
		switch {
		case n >= s.cfg.MaxQueue || bytes+size > s.cfg.MaxQueueBytes:
			return &refusal{api.CodeQueueFull, fmt.Sprintf(
				"the recipient's queue is full: at most %d envelopes or %d bytes wait for one recipient; retry when they have collected them",
				s.cfg.MaxQueue, s.cfg.MaxQueueBytes)}
		case fromN >= shareN || fromBytes+size > shareBytes:
			return &refusal{api.CodeShareFull, fmt.Sprintf(
				"you have %d envelopes (%d bytes) waiting for this recipient; one sender may have at most %d envelopes or %d bytes waiting for one recipient; retry when they have collected them",
				fromN, fromBytes, shareN, shareBytes)}
		}
		return tx.QueryRowContext(ctx,
			`INSERT INTO queue (recipient, sender, body, created) VALUES (?, ?, ?, ?) RETURNING seq`,
			to, from, body, s.now().Unix()).Scan(&seq)
	})
	if err != nil {
		return 0, err
	}
	s.queueBytes += size
	return seq, nil
}

// ack deletes recipient's envelope seq. Acknowledging twice, or another
// user's envelope, deletes nothing and is not an error: the client cannot
// tell the two apart anyway, and a repeated ack after a reconnect is normal.
func (s *Server) ack(ctx context.Context, recipient string, seq int64) error {
	var size int64
	err := s.db.QueryRowContext(ctx, `DELETE FROM queue WHERE recipient = ? AND seq = ? RETURNING length(body)`, recipient, seq).Scan(&size)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	s.deleted()
	s.queueMu.Lock()
	s.queueBytes -= size
	s.queueMu.Unlock()
	return nil
}
