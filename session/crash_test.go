package session

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
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

	_ "modernc.org/sqlite"

	"github.com/ratchetkit/ratchetkit/internal/hazmat"
	"github.com/ratchetkit/ratchetkit/internal/sqltest"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/memory"
	"github.com/ratchetkit/ratchetkit/store/sqlstore"
)

// The crash test runs a scripted conversation between Alice and Bob,
// each on a SQLite file, in a child process (this test binary again,
// with crashDirEnv set) and kills it at random moments, many times. After
// each kill it reopens the files and checks that each party's state is
// exactly the one after the last operation the child reported done, or
// the one after the next: never a mix, never a torn record, never a
// consumed one-time prekey without its session. Every key is
// reproducible (hazmat key sources derived from the operation's index),
// so a reference run in memory says what each state must be, and the
// child checks that every message it encrypts is the reference's. The
// next child resumes where the files say the last one got to; at the end
// the rest of the script runs in the test, so every session is shown to
// still decrypt.

const (
	crashDirEnv   = "RATCHETKIT_SESSION_CRASH_DIR"
	crashStartEnv = "RATCHETKIT_SESSION_CRASH_START"
)

type crashOp struct {
	Party byte // 'a' or 'b'
	Kind  byte // 's' start a session (Alice), 'e' encrypt, 'd' decrypt
	Msg   int  // the message an 'e' makes or a 'd' reads
	OPK   uint32
}

// crashScript is the conversation: rounds in which Alice sends one to
// three messages and Bob reads them in a shuffled order and answers,
// Alice reading his answers likewise; Alice starts over now and then
// (with one-time prekey 7, then 8, then none), so that sessions are
// archived and prekeys consumed along the way.
func crashScript(rounds int) []crashOp {
	rng := rand.New(rand.NewPCG(11, 12))
	ops := []crashOp{{Party: 'a', Kind: 's', OPK: 7}}
	msgs := 0
	send := func(from byte, n int) []int {
		var ids []int
		for range n {
			ops = append(ops, crashOp{Party: from, Kind: 'e', Msg: msgs})
			ids = append(ids, msgs)
			msgs++
		}
		return ids
	}
	read := func(to byte, ids []int) {
		rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		for _, id := range ids {
			ops = append(ops, crashOp{Party: to, Kind: 'd', Msg: id})
		}
	}
	for r := range rounds {
		if r > 0 && r%12 == 0 {
			opk := uint32(0)
			if r == 12 {
				opk = 8
			}
			ops = append(ops, crashOp{Party: 'a', Kind: 's', OPK: opk})
		}
		read('b', send('a', 1+rng.IntN(3)))
		read('a', send('b', 1+rng.IntN(2)))
	}
	return ops
}

func crashPlaintext(i int) []byte { return []byte("crash test message " + strconv.Itoa(i)) }

// crashParties runs the script's operations on two stores.
type crashParties struct {
	alice, bob *fixedParty
	op         int // the operation running, for the key sources
	draws      int
}

func newCrashParties(t testing.TB, ast, bst store.Store) *crashParties {
	c := &crashParties{}
	src := func(party string) hazmat.KeySource {
		return func() (*keys.PrivateKey, error) {
			c.draws++
			return fixedKey(fmt.Sprintf("crash %s %d %d", party, c.op, c.draws)), nil
		}
	}
	c.alice = newFixedManager(t, ast, "alice", Config{}, src("alice"))
	c.bob = newFixedManager(t, bst, "bob", Config{}, src("bob"))
	return c
}

// run performs operation i; msgs holds the reference messages, and
// receives the message an encryption makes when it has none yet.
func (c *crashParties) run(i int, op crashOp, msgs map[int][]byte) error {
	ctx := context.Background()
	c.op, c.draws = i, 0
	p, peer := c.alice, c.bob
	if op.Party == 'b' {
		p, peer = c.bob, c.alice
	}
	switch op.Kind {
	case 's':
		return p.m.StartSession(ctx, peer.addr, peer.bundle(op.OPK))
	case 'e':
		m, err := p.m.Encrypt(ctx, peer.addr, crashPlaintext(op.Msg))
		if err != nil {
			return err
		}
		if ref, ok := msgs[op.Msg]; ok && !bytes.Equal(ref, m) {
			return fmt.Errorf("operation %d: message %d differs from the reference", i, op.Msg)
		}
		msgs[op.Msg] = m
	case 'd':
		pt, err := p.m.Decrypt(ctx, peer.addr, msgs[op.Msg])
		if err != nil {
			return fmt.Errorf("operation %d: message %d: %w", i, op.Msg, err)
		}
		if !bytes.Equal(pt, crashPlaintext(op.Msg)) {
			return fmt.Errorf("operation %d: message %d decrypted wrong", i, op.Msg)
		}
	}
	return nil
}

// crashState is what the check compares: both records, Bob's one-time
// prekeys and both trusted identities.
type crashState struct {
	alice, bob           []byte
	bobOPKs              int
	aliceKnows, bobKnows bool
}

func (s crashState) equal(o crashState) bool {
	return bytes.Equal(s.alice, o.alice) && bytes.Equal(s.bob, o.bob) && s.bobOPKs == o.bobOPKs &&
		s.aliceKnows == o.aliceKnows && s.bobKnows == o.bobKnows
}

func (c *crashParties) state(t testing.TB) crashState {
	t.Helper()
	ctx := context.Background()
	var s crashState
	read := func(p, peer *fixedParty, rec *[]byte, knows *bool) {
		err := p.st.View(ctx, func(tx store.Tx) error {
			var err error
			*rec, err = tx.Sessions().Load(ctx, peer.addr)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			_, err = tx.Identities().Load(ctx, peer.addr)
			*knows = err == nil
			if p == c.bob {
				s.bobOPKs, err = tx.PreKeys().Count(ctx)
				return err
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if *rec != nil {
			if err := new(record).parse(*rec); err != nil {
				t.Fatalf("%s's record does not parse: %v", p.addr.Name, err)
			}
		}
	}
	read(c.alice, c.bob, &s.alice, &s.aliceKnows)
	read(c.bob, c.alice, &s.bob, &s.bobKnows)
	return s
}

func openCrashDB(t testing.TB, path string) *sqlstore.Store {
	t.Helper()
	db, err := sql.Open("sqlite", sqltest.SQLiteDSN(path, "FULL"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlstore.Open(context.Background(), db, sqlstore.SQLite)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close(); db.Close() })
	return st
}

// TestCrashChild is the child process; it does nothing in a normal run.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("only run by TestCrash")
	}
	start, err := strconv.Atoi(os.Getenv(crashStartEnv))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Script []crashOp
		Msgs   map[int][]byte
	}
	j, err := os.ReadFile(filepath.Join(dir, "script.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(j, &ref); err != nil {
		t.Fatal(err)
	}
	c := newCrashParties(t, openCrashDB(t, filepath.Join(dir, "alice.db")), openCrashDB(t, filepath.Join(dir, "bob.db")))
	fmt.Println("ready")
	for i := start; i < len(ref.Script); i++ {
		fmt.Println("begin", i)
		if err := c.run(i, ref.Script[i], ref.Msgs); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("done", i)
	}
	fmt.Println("finished")
}

func TestCrash(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("in the child")
	}
	rounds, kills := 60, 30
	if testing.Short() {
		rounds, kills = 20, 8
	}
	script := crashScript(rounds)

	// The reference run, in memory.
	ast, bst := memory.New(), memory.New()
	seedFixed(t, ast, "alice")
	seedFixed(t, bst, "bob")
	ref := newCrashParties(t, ast, bst)
	msgs := map[int][]byte{}
	states := []crashState{ref.state(t)} // states[i+1]: after operation i
	for i, op := range script {
		if err := ref.run(i, op, msgs); err != nil {
			t.Fatal(err)
		}
		states = append(states, ref.state(t))
	}

	dir := t.TempDir()
	j, _ := json.Marshal(map[string]any{"Script": script, "Msgs": msgs})
	if err := os.WriteFile(filepath.Join(dir, "script.json"), j, 0o644); err != nil {
		t.Fatal(err)
	}
	seedFixed(t, openCrashDB(t, filepath.Join(dir, "alice.db")), "alice")
	seedFixed(t, openCrashDB(t, filepath.Join(dir, "bob.db")), "bob")
	// The seeding opened the files; state checks open them afresh each
	// time, as a restarted process would.
	check := func(lo int) int {
		t.Helper()
		c := newCrashParties(t, openCrashDB(t, filepath.Join(dir, "alice.db")), openCrashDB(t, filepath.Join(dir, "bob.db")))
		got := c.state(t)
		for _, k := range []int{lo, lo + 1} {
			if k < len(states) && got.equal(states[k]) {
				return k
			}
		}
		for k := range states {
			if got.equal(states[k]) {
				t.Fatalf("state after %d operations, want %d or %d", k, lo, lo+1)
			}
		}
		t.Fatalf("state after operation %d is neither the old nor the new one", lo)
		return 0
	}

	rng := rand.New(rand.NewPCG(13, 14))
	next, midOp := 0, 0
	for kill := 0; kill < kills && next < len(script); kill++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashStartEnv+"="+strconv.Itoa(next))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		done, began := next, false // done: operations known complete
		var timer *time.Timer
		for line := range lines {
			switch f := strings.Fields(line); {
			case line == "ready":
				// Killed at a random moment, whatever it is doing.
				timer = time.AfterFunc(time.Duration(rng.IntN(40_000))*time.Microsecond, func() { cmd.Process.Kill() })
			case len(f) == 2 && f[0] == "begin":
				began = true
			case len(f) == 2 && f[0] == "done":
				n, _ := strconv.Atoi(f[1])
				done, began = n+1, false
			case len(f) > 0 && (f[0] == "error" || f[0] == "FAIL"):
				t.Fatalf("child: %s", line)
			}
		}
		if timer != nil {
			timer.Stop()
		}
		cmd.Process.Kill()
		cmd.Wait()
		if began {
			midOp++
		}
		next = check(done)
	}
	t.Logf("%d of %d operations run by children killed %d times, %d of them during an operation", next, len(script), kills, midOp)

	// The rest in this process: every session still decrypts.
	c := newCrashParties(t, openCrashDB(t, filepath.Join(dir, "alice.db")), openCrashDB(t, filepath.Join(dir, "bob.db")))
	for i := next; i < len(script); i++ {
		if err := c.run(i, script[i], msgs); err != nil {
			t.Fatal(err)
		}
	}
	if !c.state(t).equal(states[len(script)]) {
		t.Fatal("final state differs from the reference")
	}
}
