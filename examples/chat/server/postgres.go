package server

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// postgresStorage keeps the server's state in a PostgreSQL database that
// any number of instances share. What the SQLite backend keeps in memory
// is in the database too: the total of queued bytes (one row,
// queue_total) and the rate limits (rate_limits), so that a client
// spreading its requests over the instances gets no more than from one.
//
// Instances learn of each other's commits through LISTEN/NOTIFY on one
// channel per schema. A notification is a hint, never the record: NOTIFY
// is delivered only to sessions listening at the time of the commit, so a
// listener that reconnects asks for a resync (every connection re-reads
// its queue), and each connection re-reads its queue every RereadInterval
// anyway. The queue table is what counts.
type postgresStorage struct {
	*sqlCore
	log     *slog.Logger
	conn    *pgx.ConnConfig
	channel string // the NOTIFY channel: "chat_events." and the schema
	self    string // this instance's id, to skip its own notifications
}

// Advisory lock classes: the first key of pg_advisory_xact_lock(int, int).
const (
	lockMigrate = 0x63686174 // "chat"
	lockQueue   = 0x63686171 // "chaq", with the recipient's hashtext
)

// isPostgres reports whether dbPath names a PostgreSQL database rather
// than a SQLite file.
func isPostgres(dbPath string) bool {
	return strings.HasPrefix(dbPath, "postgres://") || strings.HasPrefix(dbPath, "postgresql://")
}

// openPostgres connects to the database dsn names and migrates its schema
// (the one search_path selects) to the newest version. Instances that
// start at once take turns, under an advisory lock.
func openPostgres(ctx context.Context, cfg *Config, dsn string, now func() time.Time) (*postgresStorage, error) {
	cc, err := pgx.ParseConfig(dsn)
	if err != nil {
		// The DSN may hold a password: don't repeat it.
		return nil, errors.New("server: the PostgreSQL URL does not parse")
	}
	db := stdlib.OpenDB(*cc)
	db.SetMaxOpenConns(cfg.MaxDBConns)
	db.SetMaxIdleConns(cfg.MaxDBConns)
	var id [8]byte
	rand.Read(id[:])
	st := &postgresStorage{log: cfg.Logger, conn: cc, self: hex.EncodeToString(id[:])}
	st.sqlCore = &sqlCore{db: db, pg: true, cfg: cfg, now: now, deleted: func() {}}
	var schema string
	if err := db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("server: connecting to PostgreSQL: %w", err)
	}
	st.channel = "chat_events." + schema
	if err := st.migrate(ctx, db, "postgres", fmt.Sprintf("SELECT pg_advisory_xact_lock(%d, 0)", lockMigrate)); err != nil {
		db.Close()
		return nil, fmt.Errorf("create schema: %w", err)
	}
	return st, nil
}

// enqueue stores an envelope for recipient and returns its sequence
// number, or a *refusal naming the limit it would exceed, and notifies the
// other instances, all in one transaction: the notification goes out when
// the envelope is committed, and only then.
//
// The transaction first takes an advisory lock on the recipient, which
// makes the per-recipient check and the insert one step across instances,
// and makes the recipient's sequence numbers commit in increasing order:
// a pusher that has sent everything up to seq n can never later find an
// envelope below n committed (see push). The total is a single row, taken
// last so that its lock is held for as little of the transaction as
// possible: every enqueue in the cluster passes through it.
func (st *postgresStorage) enqueue(ctx context.Context, from, to device, body []byte) (int64, error) {
	var seq int64
	err := st.tx(ctx, func(tx *sql.Tx) (err error) {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, lockQueue, to.user); err != nil {
			return err
		}
		if seq, err = st.insertQueued(ctx, tx, from, to, body); err != nil {
			return err
		}
		var total int64
		err = tx.QueryRowContext(ctx, `UPDATE queue_total SET bytes = bytes + $1 WHERE id = 1 AND bytes + $1 <= $2 RETURNING bytes`,
			int64(len(body)), st.cfg.MaxTotalQueueBytes).Scan(&total)
		if errors.Is(err, sql.ErrNoRows) {
			return st.cfg.serverFull()
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, st.channel, st.payload(event{kind: evQueued, dev: to.key()}))
		return err
	})
	return seq, err
}

// ack deletes recipient's envelope seq, if it is there, and takes its size
// off the total in the same transaction.
func (st *postgresStorage) ack(ctx context.Context, recipient device, seq int64) error {
	return st.tx(ctx, func(tx *sql.Tx) error {
		size, err := st.deleteQueued(ctx, tx, recipient, seq)
		if err != nil || size == 0 {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE queue_total SET bytes = bytes - $1 WHERE id = 1`, size)
		return err
	})
}

// payload encodes ev for NOTIFY: the sender's id, the kind, the user and
// the count, separated by spaces (device keys have none).
func (st *postgresStorage) payload(ev event) string {
	return st.self + " " + ev.kind + " " + ev.dev + " " + strconv.Itoa(ev.n)
}

// publish notifies the other instances of ev. A failure is logged and
// otherwise ignored: events are hints, and what they announce is re-read
// periodically anyway.
func (st *postgresStorage) publish(ctx context.Context, ev event) {
	if _, err := st.db.ExecContext(ctx, `SELECT pg_notify($1, $2)`, st.channel, st.payload(ev)); err != nil && ctx.Err() == nil {
		st.log.Error("notify", "err", err)
	}
}

// listen holds a connection of its own that LISTENs on the channel, and
// calls fn with each event from another instance. After (re)connecting it
// calls fn with evResync, since whatever was notified while it was not
// listening is lost; it reconnects after a failure, with backoff, until
// ctx ends.
func (st *postgresStorage) listen(ctx context.Context, fn func(event)) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := st.listenOnce(ctx, fn, func() { backoff = 100 * time.Millisecond })
		if ctx.Err() != nil {
			return
		}
		st.log.Warn("listen: connection lost; reconnecting", "err", err, "after", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (st *postgresStorage) listenOnce(ctx context.Context, fn func(event), up func()) error {
	conn, err := pgx.ConnectConfig(ctx, st.conn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{st.channel}.Sanitize()); err != nil {
		return err
	}
	up()
	fn(event{kind: evResync})
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		from, rest, _ := strings.Cut(n.Payload, " ")
		if from == st.self {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 3 {
			continue
		}
		count, _ := strconv.Atoi(f[2])
		fn(event{kind: f[0], dev: f[1], n: count})
	}
}

// pgLimiter is a rate limit kept in the rate_limits table, shared by every
// instance on the database. It is the generic cell rate algorithm, the
// token bucket of limiter in one number: each key's theoretical arrival
// time tat advances by 1/rate per request, and a request is allowed while
// tat stays within burst/rate of now. One upsert decides and records, so
// concurrent requests on several instances serialise on the key's row.
type pgLimiter struct {
	st    *postgresStorage
	name  string
	rate  float64
	burst float64
	calls atomic.Uint64
}

func (st *postgresStorage) limiter(name string, rate float64, burst int) rateLimiter {
	return &pgLimiter{st: st, name: name, rate: rate, burst: float64(burst)}
}

// sweepEvery is how often (every how many requests on one instance) a
// request also deletes the rows of keys whose buckets are full again,
// which carry no information: the table stays about as large as the keys
// active within their burst's span.
const sweepEvery = 1000

func (l *pgLimiter) allow(ctx context.Context, key string) (bool, time.Duration) {
	interval := math.MaxFloat32 // a rate of zero: the burst, then nothing
	if l.rate > 0 {
		interval = 1 / l.rate
	}
	now := float64(l.st.now().UnixNano()) / 1e9
	tolerance := l.burst * interval
	db := l.st.db
	if l.calls.Add(1)%sweepEvery == 0 {
		if _, err := db.ExecContext(ctx, `DELETE FROM rate_limits WHERE lim = $1 AND tat < $2`, l.name, now); err != nil {
			l.st.log.Error("rate limit sweep", "err", err)
		}
	}
	var tat float64
	err := db.QueryRowContext(ctx, `INSERT INTO rate_limits AS r (lim, key, tat) VALUES ($1, $2, $3::float8 + $4::float8)
		ON CONFLICT (lim, key) DO UPDATE SET tat = greatest(r.tat, $3::float8) + $4::float8
		WHERE greatest(r.tat, $3::float8) + $4::float8 - $3::float8 <= $5::float8
		RETURNING tat`, l.name, key, now, interval, tolerance).Scan(&tat)
	if err == nil {
		return true, 0
	}
	if errors.Is(err, sql.ErrNoRows) {
		err = db.QueryRowContext(ctx, `SELECT tat FROM rate_limits WHERE lim = $1 AND key = $2`, l.name, key).Scan(&tat)
		if err == nil {
			wait := max(tat, now) + interval - now - tolerance
			return false, time.Duration(min(wait, 3600) * float64(time.Second))
		}
	}
	// Refuse rather than let requests through unlimited while the
	// database fails; everything else fails then too.
	if ctx.Err() == nil {
		l.st.log.Error("rate limit", "limit", l.name, "err", err)
	}
	return false, time.Second
}

func (st *postgresStorage) close() error { return st.db.Close() }
