// Command basic is ratchetkit's main example: Alice and Bob, in one
// process, go from identity keys to an end-to-end encrypted conversation
// whose state survives a restart. It prints what each step did.
//
//  1. Each device makes an identity key and keeps it in its own SQLite
//     store; Bob also makes the prekeys he would publish on a server.
//  2. The "server" hands Alice a bundle of Bob's public keys, as bytes.
//  3. Alice runs X3DH on it (checking the signature first), which starts
//     a Double Ratchet session before Bob has said anything.
//  4. They talk; two of Bob's messages arrive in the wrong order, and the
//     ratchet sorts them out.
//  5. Both compute the safety number, which users compare out of band to
//     know that no server substituted a key.
//  6. Bob's program stops; the session is in his SQLite file, and after
//     reopening it he reads Alice's next message.
//
// Run it with
//
//	go run ./examples/basic
package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log"
	"net/url"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite"

	"github.com/ratchetkit/ratchetkit/session"
	"github.com/ratchetkit/ratchetkit/store"
	"github.com/ratchetkit/ratchetkit/store/sqlstore"
	"github.com/ratchetkit/ratchetkit/x3dh"
)

func main() {
	dir, err := os.MkdirTemp("", "ratchetkit-basic-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := run(os.Stdout, dir); err != nil {
		log.Fatal(err)
	}
}

// device is one party: a Manager over a SQLite store.
type device struct {
	db  *sql.DB
	st  *sqlstore.Store
	mgr *session.Manager
}

// open opens (creating if needed) the device's store in file, with the
// SQLite settings package sqlstore recommends.
func open(ctx context.Context, file string) (*device, error) {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)", "secure_delete(1)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+file+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	st, err := sqlstore.Open(ctx, db, sqlstore.SQLite)
	if err != nil {
		db.Close()
		return nil, err
	}
	mgr, err := session.New(st, nil)
	if err == nil {
		// Init makes the identity key on first use and finds it afterwards.
		err = mgr.Init(ctx, 1)
	}
	if err != nil {
		st.Close()
		db.Close()
		return nil, err
	}
	return &device{db: db, st: st, mgr: mgr}, nil
}

func (d *device) close() error {
	st := d.st.Close()
	if err := d.db.Close(); err != nil {
		return err
	}
	return st
}

func run(out io.Writer, dir string) error {
	ctx := context.Background()
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	aliceAddr := store.Address{Name: "alice", DeviceID: 1}
	bobAddr := store.Address{Name: "bob", DeviceID: 1}
	bobFile := filepath.Join(dir, "bob.db")

	say("1. Identities and prekeys")
	alice, err := open(ctx, filepath.Join(dir, "alice.db"))
	if err != nil {
		return err
	}
	defer alice.close()
	bob, err := open(ctx, bobFile)
	if err != nil {
		return err
	}
	defer func() { bob.close() }()
	aliceIK, _, err := alice.mgr.LocalIdentity(ctx)
	if err != nil {
		return err
	}
	say("   Alice: identity key %x… (%d bytes encoded), in alice.db", aliceIK.Bytes()[:4], len(aliceIK.Encode()))
	// Upkeep makes a signed prekey and a batch of one-time prekeys, keeps
	// the private halves in the store, and returns what to publish.
	upload, err := bob.mgr.Upkeep(ctx)
	if err != nil {
		return err
	}
	say("   Bob:   identity key %x…, signed prekey #%d with a %d-byte signature, %d one-time prekeys, in bob.db",
		upload.IdentityKey.Bytes()[:4], upload.SignedPreKeyID, len(upload.SignedPreKeySignature), len(upload.OneTimePreKeys))

	say("2. Bundle")
	// A server would store the upload and hand out each one-time prekey
	// once. Only bytes travel.
	bundleBytes, err := upload.Bundle(&upload.OneTimePreKeys[0]).MarshalBinary()
	if err != nil {
		return err
	}
	say("   The server gives Alice %d bytes: Bob's identity key, signed prekey #%d and signature, one-time prekey #%d",
		len(bundleBytes), upload.SignedPreKeyID, upload.OneTimePreKeys[0].ID)

	say("3. X3DH")
	bundle, err := x3dh.ParseBundle(bundleBytes)
	if err != nil {
		return err
	}
	// StartSession verifies the signature, runs X3DH and saves the new
	// session, and trusts Bob's identity key from now on (first use).
	if err := alice.mgr.StartSession(ctx, bobAddr, bundle); err != nil {
		return err
	}
	say("   Alice checked the signature and ran X3DH: she can write before Bob is even online")

	say("4. Conversation")
	m1, err := alice.mgr.Encrypt(ctx, bobAddr, []byte("Hi Bob! Lunch at noon?"))
	if err != nil {
		return err
	}
	say("   Alice → Bob   %d-byte prekey message (X3DH header + ratchet message)", len(m1))
	pt, err := bob.mgr.Decrypt(ctx, aliceAddr, m1)
	if err != nil {
		return err
	}
	st, err := bob.mgr.PreKeyStatus(ctx)
	if err != nil {
		return err
	}
	say("   Bob reads     %q (his side of X3DH ran from the header; %d one-time prekeys left)", pt, st.OneTimePreKeys)

	r1, err := bob.mgr.Encrypt(ctx, aliceAddr, []byte("Sure."))
	if err != nil {
		return err
	}
	r2, err := bob.mgr.Encrypt(ctx, aliceAddr, []byte("Same place as last time?"))
	if err != nil {
		return err
	}
	say("   Bob → Alice   %d-byte and %d-byte ratchet messages; the network swaps them", len(r1), len(r2))
	for i, m := range [][]byte{r2, r1} {
		pt, err := alice.mgr.Decrypt(ctx, bobAddr, m)
		if err != nil {
			return err
		}
		note := "the key of the message before it is kept for later"
		if i == 1 {
			note = "with the kept key, which is then deleted"
		}
		say("   Alice reads   %q (%s)", pt, note)
	}
	m2, err := alice.mgr.Encrypt(ctx, bobAddr, []byte("Yes, see you there."))
	if err != nil {
		return err
	}
	say("   Alice → Bob   %d-byte ratchet message (Bob has answered: no more X3DH header)", len(m2))
	if pt, err = bob.mgr.Decrypt(ctx, aliceAddr, m2); err != nil {
		return err
	}
	say("   Bob reads     %q", pt)
	if _, err := bob.mgr.Decrypt(ctx, aliceAddr, m2); err != nil {
		say("   A replay of it is refused: %v", err)
	}

	say("5. Safety number")
	sa, err := alice.mgr.SafetyNumber(ctx, "alice", bobAddr)
	if err != nil {
		return err
	}
	sb, err := bob.mgr.SafetyNumber(ctx, "bob", aliceAddr)
	if err != nil {
		return err
	}
	say("   Alice sees %s", sa)
	if sa == sb {
		say("   Bob sees the same digits: reading them to each other proves no one swapped a key")
	} else {
		return fmt.Errorf("safety numbers differ: %q and %q", sa, sb)
	}

	say("6. Restart")
	m3, err := alice.mgr.Encrypt(ctx, bobAddr, []byte("Sent while Bob's app was closed."))
	if err != nil {
		return err
	}
	if err := bob.close(); err != nil {
		return err
	}
	fi, err := os.Stat(bobFile)
	if err != nil {
		return err
	}
	say("   Bob's program stops; bob.db holds his keys and the session (%d KiB)", (fi.Size()+1023)/1024)
	if bob, err = open(ctx, bobFile); err != nil {
		return err
	}
	if pt, err = bob.mgr.Decrypt(ctx, aliceAddr, m3); err != nil {
		return err
	}
	say("   Reopened, Bob reads %q", pt)
	return nil
}
