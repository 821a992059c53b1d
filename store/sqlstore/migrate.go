package sqlstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

//go:embed migrations
var migrationFS embed.FS

// migration is one step of the schema: the statements that take a database
// from version-1 to version.
type migration struct {
	version    int
	name       string
	statements []string
}

// loadMigrations reads the migrations of a dialect. Files are named
// NNNN_description.sql and numbered from 0001 without gaps; statements
// within a file end with a semicolon at the end of a line.
func loadMigrations(dir string) ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, err
	}
	var ms []migration
	for i, e := range entries { // ReadDir sorts by name
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v != i+1 || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("sqlstore: migration %s out of sequence", e.Name())
		}
		b, err := migrationFS.ReadFile(path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		m := migration{version: v, name: e.Name()}
		for _, s := range strings.Split(string(b), ";\n") {
			if hasCode(s) {
				m.statements = append(m.statements, strings.TrimSpace(s))
			}
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// hasCode reports whether s holds more than blank lines and comments.
func hasCode(s string) bool {
	for line := range strings.Lines(s) {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "--") {
			return true
		}
	}
	return false
}

// migrate brings the database's schema to the newest version this package
// knows, in one transaction, and returns that version. It is idempotent and
// safe to run from several processes at once. It refuses a database whose
// schema is newer than this package.
func (s *Store) migrate(ctx context.Context) (int, error) {
	ms, err := loadMigrations(s.q.dir)
	if err != nil {
		return 0, err
	}
	return s.migrateTo(ctx, ms)
}

// migrateTo is migrate with the migrations ms, the first len(ms) of the
// package's: a test gives fewer to make a database of an older version.
func (s *Store) migrateTo(ctx context.Context, ms []migration) (int, error) {
	if s.q.migrationLock == "" {
		// SQLite: create the version table in its own statement, so that
		// the transaction below starts with a write (see queries.lock).
		if _, err := s.db.ExecContext(ctx, s.q.createSchema); err != nil {
			return 0, s.fail(ctx, "create schema table", err)
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, s.fail(ctx, "begin migration", err)
	}
	defer tx.Rollback()
	if s.q.migrationLock != "" {
		for _, q := range []string{s.q.migrationLock, s.q.createSchema} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return 0, s.fail(ctx, "create schema table", err)
			}
		}
	}
	var version int
	if _, err := tx.ExecContext(ctx, s.q.initSchema); err != nil {
		return 0, s.fail(ctx, "read schema version", err)
	}
	if err := tx.QueryRowContext(ctx, s.q.schemaVersion).Scan(&version); err != nil {
		return 0, s.fail(ctx, "read schema version", err)
	}
	if version > len(ms) {
		return 0, fmt.Errorf("sqlstore: the database has schema version %d, newer than this package's %d", version, len(ms))
	}
	for _, m := range ms[version:] {
		for _, stmt := range m.statements {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return 0, s.fail(ctx, "migration "+m.name, err)
			}
		}
		if _, err := tx.ExecContext(ctx, s.q.setVersion, m.version); err != nil {
			return 0, s.fail(ctx, "migration "+m.name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, s.fail(ctx, "commit migration", err)
	}
	return len(ms), nil
}

// fail wraps a database error with the operation it interrupted, and with
// the context's error when the context ended, so that errors.Is finds
// context.Canceled or context.DeadlineExceeded whatever the driver made of
// it. sql.ErrNoRows becomes store.ErrNotFound at the call sites, not here.
func (s *Store) fail(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil && err != cerr {
		return fmt.Errorf("sqlstore: %s: %w (%w)", op, cerr, err)
	}
	return fmt.Errorf("sqlstore: %s: %w", op, err)
}
