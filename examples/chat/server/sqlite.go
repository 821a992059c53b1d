package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// sqliteStorage keeps the server's state in one SQLite file, for one
// process: what several instances would have to share (the total of
// queued bytes, the rate limits) stays in memory, and there is no one to
// publish events to.
type sqliteStorage struct {
	*sqlCore
	log *slog.Logger

	// dirty is set by deletes and cleared by checkpoints; stop ends the
	// checkpoint loop, which closes checkpointDone when it has ended.
	dirty          atomic.Bool
	stop           context.CancelFunc
	checkpointDone chan struct{}

	// queueBytes is the size of all queued envelopes; see enqueue.
	queueMu    sync.Mutex
	queueBytes int64
}

// openSQLite opens (creating if needed) the SQLite database at path.
//
// WAL lets the relay read the queue while a write commits. synchronous
// NORMAL survives a crash of the process but may lose the last commits on
// power loss: for a relay that means a message acknowledged as stored is
// lost, which a client sees as a gap in the conversation (the ratchet skips
// over it).
//
// secure_delete makes SQLite overwrite deleted rows with zeros, but in WAL
// mode it writes the zeroed page as a new frame and leaves the frames with
// the old content in the -wal file until a checkpoint copies the pages back
// and the log is reset; even then the old frames stay on disk past the end
// of what is rewritten. So deletes are followed by checkpoint, which runs
// wal_checkpoint(TRUNCATE) at a bounded cadence: a delivered envelope or a
// handed-out prekey lasts in the files for at most one checkpoint interval.
//
// The database and its -wal and -shm files are made readable by their owner
// only: SQLite creates the latter two with the main file's permissions, so
// the main file is created 0600 before SQLite opens it, and an existing
// one with wider permissions is narrowed.
//
// All access goes through one connection: SQLite has one writer anyway, and
// a single connection makes every statement see the previous one's effect
// without retries on SQLITE_BUSY.
func openSQLite(ctx context.Context, cfg *Config, now func() time.Time) (*sqliteStorage, error) {
	if err := restrictFiles(cfg.DBPath); err != nil {
		return nil, err
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(1)", "secure_delete(1)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+cfg.DBPath+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	st := &sqliteStorage{log: cfg.Logger, checkpointDone: make(chan struct{})}
	st.sqlCore = &sqlCore{db: db, cfg: cfg, now: now, deleted: func() { st.dirty.Store(true) }}
	if err := st.migrateSQLite(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("create schema: %w", err)
	}
	if err := db.QueryRowContext(ctx, `SELECT coalesce(sum(octet_length(body)), 0) FROM queue`).Scan(&st.queueBytes); err != nil {
		db.Close()
		return nil, err
	}
	loopCtx, stop := context.WithCancel(context.Background())
	st.stop = stop
	go st.checkpointLoop(loopCtx)
	return st, nil
}

// migrateSQLite runs the migrations with foreign keys off, as SQLite's
// way of changing a table (make a new one, copy, drop the old one,
// rename) needs: with them on, dropping a table would delete, by cascade,
// every row that references it. The pragma has no effect inside a
// transaction, so it is set on the connection around it, and the result
// is checked before foreign keys go back on.
func (st *sqliteStorage) migrateSQLite(ctx context.Context) error {
	conn, err := st.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
		return err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA foreign_keys = ON`)
	if err := st.migrate(ctx, conn, "sqlite", ""); err != nil {
		return err
	}
	rows, err := conn.QueryContext(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		return err
	}
	defer rows.Close()
	if rows.Next() {
		return errors.New("the migrated database has rows that break a foreign key")
	}
	return rows.Err()
}

// restrictFiles creates the database file with mode 0600 if it is missing,
// and takes group and other permissions off it and off its -wal and -shm
// files if they exist.
func restrictFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, fi.Mode().Perm()&0o700); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkpointLoop checkpoints after deletes, every CheckpointInterval at
// most, until ctx ends.
func (st *sqliteStorage) checkpointLoop(ctx context.Context) {
	defer close(st.checkpointDone)
	t := time.NewTicker(st.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			st.checkpoint(ctx)
		}
	}
}

// checkpoint copies the WAL into the database and truncates it to zero
// bytes, if anything was deleted since the last time. A checkpoint that
// could not finish (another process was reading the database) leaves the
// flag set, so the next tick tries again.
func (st *sqliteStorage) checkpoint(ctx context.Context) {
	if !st.dirty.Swap(false) {
		return
	}
	var busy, logFrames, done int
	err := st.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &done)
	if err != nil || busy != 0 {
		st.dirty.Store(true)
		if err != nil && ctx.Err() == nil {
			st.log.Error("checkpoint", "err", err)
		}
	}
}

// enqueue stores an envelope for recipient and returns its sequence
// number, or a *refusal naming the limit it would exceed.
//
// The total over all recipients is kept in memory (set at start-up,
// updated by enqueue and ack), since summing the whole table on every send
// would cost time in proportion to what the limit allows. queueMu makes
// the check and the insert one step.
func (st *sqliteStorage) enqueue(ctx context.Context, from, to device, body []byte) (int64, error) {
	st.queueMu.Lock()
	defer st.queueMu.Unlock()
	size := int64(len(body))
	if st.queueBytes+size > st.cfg.MaxTotalQueueBytes {
		return 0, st.cfg.serverFull()
	}
	var seq int64
	err := st.tx(ctx, func(tx *sql.Tx) (err error) {
		seq, err = st.insertQueued(ctx, tx, from, to, body)
		return err
	})
	if err != nil {
		return 0, err
	}
	st.queueBytes += size
	return seq, nil
}

// ack deletes recipient's envelope seq, if it is there.
func (st *sqliteStorage) ack(ctx context.Context, recipient device, seq int64) error {
	var size int64
	err := st.tx(ctx, func(tx *sql.Tx) (err error) {
		size, err = st.deleteQueued(ctx, tx, recipient, seq)
		return err
	})
	if err != nil {
		return err
	}
	st.queueMu.Lock()
	st.queueBytes -= size
	st.queueMu.Unlock()
	return nil
}

func (st *sqliteStorage) limiter(_ string, rate float64, burst int) rateLimiter {
	return newLimiter(rate, burst, st.now)
}

// One process holds every connection: there is no one to tell, and
// nothing to hear but the first resync, which says listening is up.
func (st *sqliteStorage) publish(context.Context, event) {}

func (st *sqliteStorage) listen(ctx context.Context, fn func(event)) {
	fn(event{kind: evResync})
	<-ctx.Done()
}

// close stops the checkpoint loop, checkpoints a last time and closes the
// database.
func (st *sqliteStorage) close() error {
	st.stop()
	<-st.checkpointDone
	st.checkpoint(context.Background())
	return st.db.Close()
}
