package client

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/ratchetkit/ratchetkit/senderkey"
)

// crafted encrypts content bytes from c to peer's first device, as a
// hostile client would, and returns the envelope body.
func crafted(t *testing.T, c *Client, peer string, pt []byte) []byte {
	t.Helper()
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	c.keysMu.RLock()
	defer c.keysMu.RUnlock()
	envs, err := c.fanout(ctx(t), peer, pt, nil)
	if err != nil || len(envs) != 1 {
		t.Fatalf("crafting an envelope: %d, %v", len(envs), err)
	}
	return envs[0].body
}

// lastErr returns the error of rec's last event of kind.
func (r *recorder) lastErr(kind EventKind) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.events) - 1; i >= 0; i-- {
		if r.events[i].Kind == kind {
			return r.events[i].Err
		}
	}
	return nil
}

// A contact who is not in a group can neither change it nor hand out a
// sender key for it; malformed contents and states are refused; a group
// message without a distributed chain fails; and a contact can put the
// user in at most MaxGroups groups.
func TestGroupHostileContact(t *testing.T) {
	ts := newServer(t)
	var ra, rb, rm recorder
	alice := ts.open(t, t.TempDir(), "alice", &ra)
	bob := ts.openWith(t, t.TempDir(), "bob", &rb, func(c *Config) { c.FailedDecryptBurst = 1000 })
	mallory := ts.open(t, t.TempDir(), "mallory", &rm)
	for _, c := range []*Client{alice, bob} {
		if err := c.Connect(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	if err := alice.CreateGroup(ctx(t), "team", "bob"); err != nil {
		t.Fatal(err)
	}
	if err := alice.SendGroup(ctx(t), "team", "hello"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bob to read alice's group message", func() bool { return len(rb.texts("alice")) == 1 })
	bob.Disconnect()
	team, err := loadGroup(ctx(t), bob.chat, "name", "team")
	if err != nil || team == nil {
		t.Fatalf("bob's group: %+v, %v", team, err)
	}

	seq := int64(1 << 40)
	deliver := func(pt []byte) {
		t.Helper()
		seq++
		if err := bob.receive(ctx(t), seq, "mallory", crafted(t, mallory, "bob", pt)); err != nil {
			t.Fatal(err)
		}
	}
	refused := func(what string, want error) {
		t.Helper()
		if err := rb.lastErr(EventUndecryptable); !errors.Is(err, want) {
			t.Fatalf("%s: bob's last failure %v, want %v", what, err, want)
		}
		g, err := loadGroup(ctx(t), bob.chat, "id", team.id[:])
		if err != nil || g.Version != team.Version || len(g.Members) != 2 {
			t.Fatalf("%s changed bob's group: %+v, %v", what, g, err)
		}
	}

	// Mallory learned the group's id: a newer state with her in it is
	// not hers to make.
	st := team.groupState
	st.Version = 99
	st.Members = []string{"alice", "bob", "mallory"}
	deliver((&content{Group: &st}).bytes())
	refused("a state from a non-member", errNotMember)

	var rec senderkey.Record
	dm, err := rec.DistributionMessage(team.id)
	if err != nil {
		t.Fatal(err)
	}
	deliver((&content{Group: &team.groupState, Dist: dm.Bytes()}).bytes())
	refused("a sender key from a non-member", errNotMember)
	forged, err := rec.Encrypt(team.id, []byte("I am in the group"))
	if err != nil {
		t.Fatal(err)
	}
	seq++
	if err := bob.receive(ctx(t), seq, "mallory", forged); err != nil {
		t.Fatal(err)
	}
	refused("a group message without a chain", senderkey.ErrNoState)

	big := team.groupState
	big.Version = 100
	big.Members = nil
	for i := range MaxGroupMembers + 1 {
		big.Members = append(big.Members, fmt.Sprintf("m%d", i))
	}
	for what, bad := range map[string]groupState{
		"too many members":  big,
		"a repeated member": {ID: team.ID, Name: "team", Version: 100, Members: []string{"alice", "alice"}},
		"a bad name":        {ID: team.ID, Name: "Team!", Version: 100, Members: []string{"alice"}},
		"a short id":        {ID: team.ID[:8], Name: "team", Version: 100, Members: []string{"alice"}},
	} {
		deliver((&content{Group: &bad}).bytes())
		refused(what, errBadContent)
	}
	deliver([]byte(`{"text":"hi","extra":1}`))
	refused("an unknown field", errBadContent)
	deliver([]byte(`{"text":"hi"} {}`))
	refused("two values", errBadContent)
	if n := len(rb.texts("mallory")); n != 0 {
		t.Fatalf("bob shows %d texts of mallory's", n)
	}

	// Mallory makes groups of herself and bob: the first MaxGroups - 1
	// are kept (bob has one already), the rest refused.
	for i := range MaxGroups + 5 {
		id := senderkey.NewDistributionID()
		deliver((&content{Group: &groupState{ID: id[:], Name: fmt.Sprintf("spam%d", i), Version: 1, Members: []string{"mallory", "bob"}}}).bytes())
	}
	gs, err := bob.Groups(ctx(t))
	if err != nil || len(gs) != MaxGroups {
		t.Fatalf("bob has %d groups, %v; want %d", len(gs), err, MaxGroups)
	}
	if rb.count(EventError) < 5 {
		t.Fatalf("bob reported %d refused groups, want 5", rb.count(EventError))
	}
}

// A member cannot make herself unremovable by sending a state at the
// highest version: the next change would wrap to 0 and every member would
// ignore it. A state that jumps more than maxVersionStep past the one
// held is refused, so the removal that follows is taken.
func TestGroupVersionJumpRefused(t *testing.T) {
	ts := newServer(t)
	var ra, rb, rm recorder
	alice := ts.open(t, t.TempDir(), "alice", &ra)
	bob := ts.open(t, t.TempDir(), "bob", &rb)
	mallory := ts.open(t, t.TempDir(), "mallory", &rm)
	for _, c := range []*Client{alice, bob, mallory} {
		if err := c.Connect(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	if err := alice.CreateGroup(ctx(t), "team", "bob", "mallory"); err != nil {
		t.Fatal(err)
	}
	hasGroup := func(c *Client, version uint64) func() bool {
		return func() bool {
			g, err := loadGroup(ctx(t), c.chat, "name", "team")
			return err == nil && g != nil && g.Version == version
		}
	}
	waitFor(t, "bob to learn of the group", hasGroup(bob, 1))
	waitFor(t, "mallory to learn of the group", hasGroup(mallory, 1))
	team, err := loadGroup(ctx(t), mallory.chat, "name", "team")
	if err != nil {
		t.Fatal(err)
	}
	for _, peer := range []string{"alice", "bob"} {
		st := team.groupState
		st.Version = ^uint64(0)
		if err := mallory.sendContent(ctx(t), peer, &content{Group: &st}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "bob to refuse mallory's state", func() bool { return errors.Is(rb.lastErr(EventUndecryptable), errBadContent) })
	waitFor(t, "alice to refuse mallory's state", func() bool { return errors.Is(ra.lastErr(EventUndecryptable), errBadContent) })
	if err := alice.RemoveMember(ctx(t), "team", "mallory"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bob to take mallory's removal", hasGroup(bob, 2))
	g, err := loadGroup(ctx(t), bob.chat, "name", "team")
	if err != nil || len(g.Members) != 2 {
		t.Fatalf("bob's group after the removal: %+v, %v", g, err)
	}
}

// sendContent sends ct to every device of peer through the server, as a
// hostile client would.
func (c *Client) sendContent(ctx context.Context, peer string, ct *content) error {
	c.sendMu.Lock()
	c.keysMu.RLock()
	envs, err := c.fanout(ctx, peer, ct.bytes(), nil)
	var ids []int64
	var done chan error
	if err == nil {
		ids, done, err = c.enqueue(ctx, envs, true)
	}
	c.keysMu.RUnlock()
	c.sendMu.Unlock()
	if err != nil {
		return err
	}
	return c.wait(ctx, ids, done)
}

// A group the client has not heard of is taken only with the user in it:
// a stranger's state of a group without the user would be stored, take
// one of the MaxGroups places and be shown as "you were added".
func TestGroupNewWithoutUserRefused(t *testing.T) {
	ts := newServer(t)
	var rb, rm recorder
	bob := ts.open(t, t.TempDir(), "bob", &rb)
	mallory := ts.open(t, t.TempDir(), "mallory", &rm)
	id := senderkey.NewDistributionID()
	st := groupState{ID: id[:], Name: "club", Version: 1, Members: []string{"mallory", "carol"}}
	if err := bob.receive(ctx(t), 1<<40, "mallory", crafted(t, mallory, "bob", (&content{Group: &st}).bytes())); err != nil {
		t.Fatal(err)
	}
	if err := rb.lastErr(EventUndecryptable); !errors.Is(err, errNotMember) {
		t.Fatalf("bob's last failure %v, want %v", err, errNotMember)
	}
	if gs, err := bob.Groups(ctx(t)); err != nil || len(gs) != 0 {
		t.Fatalf("bob keeps groups %+v, %v", gs, err)
	}
}
