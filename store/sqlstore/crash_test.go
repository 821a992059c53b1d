package sqlstore_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ratchetkit/ratchetkit/internal/sqltest"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/sqlstore"
)

// crashChildEnv names the database a re-executed test binary writes to
// until it is killed.
const crashChildEnv = "RATCHETKIT_SQLSTORE_CRASH_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		os.Exit(2) // crashChild returns only on error
	}
	os.Exit(m.Run())
}

const (
	crashPreKeys    = 3000
	crashRecordSize = 6000 // spans overflow pages: a torn write would show
)

var (
	crashA = store.Address{Name: "crash", DeviceID: 1}
	crashB = store.Address{Name: "crash", DeviceID: 2}
)

// crashRecord is record number c: c's 8 bytes repeated.
func crashRecord(c uint64) []byte {
	rec := make([]byte, 0, crashRecordSize)
	for len(rec) < crashRecordSize {
		rec = binary.BigEndian.AppendUint64(rec, c)
	}
	return rec
}

// crashChild runs, until killed, the transaction the session layer makes
// after a decryption: two records advance together to step c+1 and
// prekey c+1 is consumed. It prints each step once committed.
func crashChild(path string) {
	ctx := context.Background()
	db, err := sqlOpen(sqltest.SQLiteDSN(path, "FULL"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	s, err := sqlstore.Open(ctx, db, sqlstore.SQLite)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	out := bufio.NewWriter(os.Stdout)
	for {
		var next uint64
		err := s.Update(ctx, func(tx store.Tx) error {
			rec, err := tx.Sessions().Load(ctx, crashA)
			if err != nil {
				return err
			}
			next = binary.BigEndian.Uint64(rec) + 1
			if next <= crashPreKeys {
				if err := tx.PreKeys().Remove(ctx, uint32(next)); err != nil {
					return err
				}
			}
			return errors.Join(
				tx.Sessions().Save(ctx, crashA, crashRecord(next)),
				tx.Sessions().Save(ctx, crashB, crashRecord(next)))
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return
		}
		fmt.Fprintf(out, "committed %d\n", next)
		out.Flush()
	}
}

// TestSQLiteCrash kills a writing process at random moments and checks,
// after each kill, that the database is intact, that it holds one whole
// transaction's state (records equal, prekeys consumed to match), and that
// every commit the child saw succeed survived.
func TestSQLiteCrash(t *testing.T) {
	kills := 8
	if testing.Short() {
		kills = 3
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	func() {
		db := openDB(t, "sqlite", sqltest.SQLiteDSN(path, "FULL"))
		defer db.Close()
		s := mustOpen(t, db, sqlstore.SQLite)
		pks, err := keys.GenerateOneTimePreKeys(1, crashPreKeys)
		if err != nil {
			t.Fatal(err)
		}
		err = s.Update(t.Context(), func(tx store.Tx) error {
			return errors.Join(
				tx.PreKeys().Add(t.Context(), pks),
				tx.Sessions().Save(t.Context(), crashA, crashRecord(0)),
				tx.Sessions().Save(t.Context(), crashB, crashRecord(0)))
		})
		if err != nil {
			t.Fatal(err)
		}
	}()

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	var acked, prev uint64
	for kill := range kills {
		// Kill after a random number of commits, then a random pause, so
		// that the kill lands at an arbitrary point of the write loop
		// however fast or loaded the machine is.
		a, err := runAndKill(t, path, uint64(1+rng.IntN(30)), time.Duration(rng.IntN(3000))*time.Microsecond)
		if err != nil {
			t.Fatalf("kill %d: %v", kill, err)
		}
		acked = max(acked, a)
		c := checkCrashState(t, path)
		if c < acked {
			t.Fatalf("kill %d: the database is at step %d, but step %d was committed", kill, c, acked)
		}
		if c < prev {
			t.Fatalf("kill %d: the database went back from step %d to %d", kill, prev, c)
		}
		prev = c
	}
	t.Logf("%d kills, %d transactions committed", kills, prev)
}

// runAndKill starts a child writer, waits until it has reported commits
// commits and then for pause, kills it with SIGKILL and returns the last
// step it reported committed.
func runAndKill(t *testing.T, path string, commits uint64, pause time.Duration) (uint64, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	lines := make(chan uint64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if n, ok := strings.CutPrefix(sc.Text(), "committed "); ok {
				v, err := strconv.ParseUint(n, 10, 64)
				if err == nil {
					lines <- v
				}
			}
		}
	}()
	var last, seen uint64
	var timer <-chan time.Time
	deadline := time.After(time.Minute)
loop:
	for {
		select {
		case v, ok := <-lines:
			if !ok {
				cmd.Wait()
				return 0, fmt.Errorf("the child stopped by itself: %s", stderr.String())
			}
			last = v
			if seen++; seen == commits {
				timer = time.After(pause)
			}
		case <-timer:
			break loop
		case <-deadline:
			cmd.Process.Kill()
			cmd.Wait()
			return 0, fmt.Errorf("the child made %d commits in a minute: %s", seen, stderr.String())
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		return 0, err
	}
	// Lines already written before the kill are commits too.
	for v := range lines {
		last = v
	}
	cmd.Wait()
	return last, nil
}

// checkCrashState opens the database as a restarted process would and
// returns the step it holds, failing the test if it is not one whole step.
func checkCrashState(t *testing.T, path string) uint64 {
	t.Helper()
	db, err := sqlOpen(sqltest.SQLiteDSN(path, "FULL"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var integrity string
	if err := db.QueryRowContext(t.Context(), "PRAGMA integrity_check").Scan(&integrity); err != nil || integrity != "ok" {
		t.Fatalf("integrity_check: %q, %v", integrity, err)
	}
	s := mustOpen(t, db, sqlstore.SQLite)
	var c uint64
	err = s.View(t.Context(), func(tx store.Tx) error {
		ra, err := tx.Sessions().Load(t.Context(), crashA)
		if err != nil {
			return err
		}
		rb, err := tx.Sessions().Load(t.Context(), crashB)
		if err != nil {
			return err
		}
		c = binary.BigEndian.Uint64(ra)
		if !bytes.Equal(ra, crashRecord(c)) || !bytes.Equal(rb, ra) {
			return fmt.Errorf("records of %d and %d bytes are not both step %d", len(ra), len(rb), c)
		}
		n, err := tx.PreKeys().Count(t.Context())
		if err != nil {
			return err
		}
		if want := crashPreKeys - int(min(c, crashPreKeys)); n != want {
			return fmt.Errorf("step %d with %d prekeys left, want %d", c, n, want)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("after a kill: %v", err)
	}
	return c
}
