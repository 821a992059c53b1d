package client

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ratchetkit/ratchetkit/examples/chat/api"
	"github.com/ratchetkit/ratchetkit/senderkey"
	"github.com/ratchetkit/ratchetkit/session"
	"github.com/ratchetkit/ratchetkit/store"
)

// MaxGroupMembers bounds the members of a group, the client's own user
// included; MaxGroups bounds the groups a client keeps.
const (
	MaxGroupMembers = 32
	MaxGroups       = 100
)

// maxVersionStep bounds how far past the version a client holds a
// group's new state may go: far more changes than members make between
// two messages, and far too few for a member to push a group to the end
// of its version range (2^44 states).
const maxVersionStep = 1 << 20

// Group is a group as the client knows it.
type Group struct {
	Name    string
	Members []string
	// Member is false once the user was removed from the group.
	Member bool
}

type storedGroup struct {
	groupState
	id     senderkey.DistributionID
	member bool
}

func loadGroup(ctx context.Context, db *sql.DB, where string, arg any) (*storedGroup, error) {
	var g storedGroup
	var id []byte
	var members string
	err := db.QueryRowContext(ctx, `SELECT id, name, version, members, member FROM groups WHERE `+where+` = ?`, arg).
		Scan(&id, &g.Name, &g.Version, &members, &g.member)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	copy(g.id[:], id)
	g.ID = id
	g.Members = strings.Split(members, ",")
	return &g, nil
}

func saveGroup(ctx context.Context, db *sql.DB, g *storedGroup) error {
	_, err := db.ExecContext(ctx, `INSERT INTO groups (id, name, version, members, member) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET version = excluded.version, members = excluded.members, member = excluded.member`,
		g.id[:], g.Name, g.Version, strings.Join(g.Members, ","), g.member)
	return err
}

// validState checks a group state from a peer: a 16-byte id, a valid
// name, between 1 and MaxGroupMembers valid member names, none twice.
func validState(st *groupState) bool {
	if len(st.ID) != len(senderkey.DistributionID{}) || !api.ValidName(st.Name) ||
		len(st.Members) == 0 || len(st.Members) > MaxGroupMembers {
		return false
	}
	for i, m := range st.Members {
		if !api.ValidName(m) || slices.Contains(st.Members[:i], m) {
			return false
		}
	}
	return true
}

// Groups lists the groups the client knows.
func (c *Client) Groups(ctx context.Context) ([]Group, error) {
	rows, err := c.chat.QueryContext(ctx, `SELECT name, members, member FROM groups ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Group
	for rows.Next() {
		var g Group
		var members string
		if err := rows.Scan(&g.Name, &members, &g.Member); err != nil {
			return nil, err
		}
		g.Members = strings.Split(members, ",")
		out = append(out, g)
	}
	return out, rows.Err()
}

// CreateGroup makes a group called name of the user and members, and
// tells every member device (and this account's other devices).
func (c *Client) CreateGroup(ctx context.Context, name string, members ...string) error {
	st := groupState{Name: name, Version: 1, Members: append([]string{c.name}, members...)}
	id := senderkey.NewDistributionID()
	st.ID = id[:]
	if !validState(&st) {
		return fmt.Errorf("client: a group needs a valid name and 1 to %d distinct valid members, you included", MaxGroupMembers)
	}
	return c.changeGroup(ctx, "", func(*storedGroup) (*storedGroup, []string, error) {
		if g, err := loadGroup(ctx, c.chat, "name", name); err != nil || g != nil {
			if err == nil {
				err = fmt.Errorf("client: there is a group called %s already", name)
			}
			return nil, nil, err
		}
		if err := c.checkGroupCount(ctx); err != nil {
			return nil, nil, err
		}
		return &storedGroup{groupState: st, id: id, member: true}, nil, nil
	})
}

// AddMember adds user to the group called name.
func (c *Client) AddMember(ctx context.Context, name, user string) error {
	return c.changeGroup(ctx, name, func(g *storedGroup) (*storedGroup, []string, error) {
		if slices.Contains(g.Members, user) {
			return nil, nil, fmt.Errorf("client: %s is in %s already", user, name)
		}
		n := *g
		n.Version++
		n.Members = append(slices.Clone(g.Members), user)
		if !validState(&n.groupState) {
			return nil, nil, fmt.Errorf("client: %q is not a valid name, or %s has %d members already", user, name, MaxGroupMembers)
		}
		return &n, nil, nil
	})
}

// RemoveMember removes user from the group called name and rotates this
// device's sender key for it; the other members rotate theirs when they
// hear of it. user is told, and gets nothing sent from then on.
func (c *Client) RemoveMember(ctx context.Context, name, user string) error {
	return c.changeGroup(ctx, name, func(g *storedGroup) (*storedGroup, []string, error) {
		if user == c.name || !slices.Contains(g.Members, user) {
			return nil, nil, fmt.Errorf("client: %s is not another member of %s", user, name)
		}
		n := *g
		n.Version++
		n.Members = slices.DeleteFunc(slices.Clone(g.Members), func(m string) bool { return m == user })
		return &n, []string{user}, nil
	})
}

func (c *Client) checkGroupCount(ctx context.Context) error {
	var n int
	if err := c.chat.QueryRowContext(ctx, `SELECT count(*) FROM groups`).Scan(&n); err != nil {
		return err
	}
	if n >= MaxGroups {
		return fmt.Errorf("client: at most %d groups", MaxGroups)
	}
	return nil
}

// changeGroup applies change to the group called name (none for a new
// group), saves the result, rotates this device's sender key if members
// were removed, and sends the new state to every member device, the
// removed members' and this account's other devices. The state goes
// without a sender key: each device distributes its own before its next
// message.
func (c *Client) changeGroup(ctx context.Context, name string, change func(*storedGroup) (*storedGroup, []string, error)) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	c.keysMu.RLock()
	defer c.keysMu.RUnlock()
	var g *storedGroup
	if name != "" {
		var err error
		if g, err = loadGroup(ctx, c.chat, "name", name); err != nil {
			return err
		}
		if g == nil || !g.member {
			return fmt.Errorf("client: you are in no group called %s", name)
		}
	}
	n, removed, err := change(g)
	if err != nil {
		return err
	}
	if err := saveGroup(ctx, c.chat, n); err != nil {
		return err
	}
	if len(removed) > 0 {
		if err := c.rotate(ctx, n.id); err != nil {
			return err
		}
	}
	pt := (&content{Group: &n.groupState}).bytes()
	var envs []envelope
	for _, m := range append(slices.Clone(n.Members), removed...) {
		e, err := c.fanout(ctx, m, pt, nil)
		if err != nil {
			return err
		}
		envs = append(envs, e...)
	}
	ids, done, err := c.enqueue(ctx, envs, true)
	if err != nil {
		return err
	}
	return c.wait(ctx, ids, done)
}

// rotate drops this device's sender chain for group id and the record of
// who had it: the next group message starts a new chain. Called with
// keysMu held.
func (c *Client) rotate(ctx context.Context, id senderkey.DistributionID) error {
	err := c.st.Update(ctx, func(tx store.Tx) error {
		sk, err := store.SenderKeysOf(tx)
		if err != nil {
			return err
		}
		if err := sk.Delete(ctx, devAddr(c.name, c.device), id); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	_, err = c.chat.ExecContext(ctx, `DELETE FROM sk_shared WHERE grp = ?`, id[:])
	return err
}

// loadRecord returns the sender-key record of a for group id, or an empty
// one if there is none.
func loadRecord(ctx context.Context, sk store.SenderKeys, a store.Address, id senderkey.DistributionID) (*senderkey.Record, error) {
	b, err := sk.Load(ctx, a, id)
	if errors.Is(err, store.ErrNotFound) {
		return new(senderkey.Record), nil
	}
	if err != nil {
		return nil, err
	}
	return senderkey.ParseRecord(b)
}

// SendGroup sends text to the group called name: its distribution
// message first, pairwise, to each member device that lacks this
// device's current chain, then the one group message to every member
// device. It returns once the server has stored every envelope.
func (c *Client) SendGroup(ctx context.Context, name, text string) error {
	if len(text) > MaxMessageSize {
		return fmt.Errorf("client: message over %d bytes", MaxMessageSize)
	}
	ids, done, err := c.encryptGroup(ctx, name, text)
	if err != nil {
		return err
	}
	return c.wait(ctx, ids, done)
}

func (c *Client) encryptGroup(ctx context.Context, name, text string) ([]int64, chan error, error) {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	c.keysMu.RLock()
	defer c.keysMu.RUnlock()
	g, err := loadGroup(ctx, c.chat, "name", name)
	if err != nil {
		return nil, nil, err
	}
	if g == nil || !g.member {
		return nil, nil, fmt.Errorf("client: you are in no group called %s", name)
	}
	self := devAddr(c.name, c.device)
	var rec *senderkey.Record
	var msg []byte
	var dist []byte
	err = c.st.Update(ctx, func(tx store.Tx) error {
		sk, err := store.SenderKeysOf(tx)
		if err != nil {
			return err
		}
		if rec, err = loadRecord(ctx, sk, self, g.id); err != nil {
			return err
		}
		dm, err := rec.DistributionMessage(g.id)
		if err != nil {
			return err
		}
		dist = dm.Bytes()
		if msg, err = rec.Encrypt(g.id, []byte(text)); err != nil {
			return err
		}
		return sk.Save(ctx, self, g.id, rec.Bytes())
	})
	if rec != nil {
		rec.Clear()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("client: group encryption: %w", err)
	}
	// The distribution message is of the chain before this message, so
	// that a device that gets it can read this message too.
	shared, err := c.sharedWith(ctx, g.id)
	if err != nil {
		return nil, nil, err
	}
	var need []session.DeviceList
	for _, m := range g.Members {
		devs, err := c.lists.get(ctx, c.api, m)
		if err != nil {
			return nil, nil, err
		}
		l := session.DeviceList{Name: m}
		for _, d := range devs {
			if a := devAddr(m, d); a != self && !shared[a] {
				l.Devices = append(l.Devices, d)
			}
		}
		if len(l.Devices) > 0 {
			need = append(need, l)
		}
	}
	// The distribution message goes first, pairwise, to the devices that
	// lack it; then the group message to every device that could be
	// given it, those that just were included.
	first, err := c.encryptToDevices(ctx, need, (&content{Group: &g.groupState, Dist: dist}).bytes())
	if err != nil {
		return nil, nil, err
	}
	var msgs []envelope
	var newly []store.Address
	for _, e := range first {
		newly = append(newly, e.to)
	}
	for _, m := range g.Members {
		devs, err := c.lists.get(ctx, c.api, m)
		if err != nil {
			return nil, nil, err
		}
		for _, d := range devs {
			if a := devAddr(m, d); a != self && (shared[a] || slices.Contains(newly, a)) {
				msgs = append(msgs, envelope{a, msg})
			}
		}
	}
	ids, done, err := c.enqueue(ctx, append(first, msgs...), true)
	if err != nil {
		return nil, nil, err
	}
	for _, a := range newly {
		if _, err := c.chat.ExecContext(ctx, `INSERT OR IGNORE INTO sk_shared (grp, user, device) VALUES (?, ?, ?)`, g.id[:], a.Name, a.DeviceID); err != nil {
			return nil, nil, err
		}
	}
	return ids, done, nil
}

// sharedWith returns the devices that have this device's current chain
// for group id.
func (c *Client) sharedWith(ctx context.Context, id senderkey.DistributionID) (map[store.Address]bool, error) {
	rows, err := c.chat.QueryContext(ctx, `SELECT user, device FROM sk_shared WHERE grp = ?`, id[:])
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[store.Address]bool{}
	for rows.Next() {
		var a store.Address
		if err := rows.Scan(&a.Name, &a.DeviceID); err != nil {
			return nil, err
		}
		out[a] = true
	}
	return out, rows.Err()
}

// errNotMember reports a group message or change from someone who is not
// a member of the group, as this client knows it.
var errNotMember = errors.New("client: group message from a non-member, or to a group the user left")

// onGroup takes a group's state, and a sender key perhaps, from fromDev.
// Called with procMu and keysMu held.
func (c *Client) onGroup(ctx context.Context, fromDev device, ct *content) {
	from := fromDev.user
	st := ct.Group
	if !validState(st) {
		c.failures.take(from)
		c.emit(Event{Kind: EventUndecryptable, Peer: from, Device: fromDev.id, Err: errBadContent})
		return
	}
	var id senderkey.DistributionID
	copy(id[:], st.ID)
	cur, err := loadGroup(ctx, c.chat, "id", id[:])
	if err != nil {
		c.emit(Event{Kind: EventError, Err: err})
		return
	}
	own := from == c.name
	// A group not known yet is taken only from one of its members and
	// with the user in it: one without the user is nothing to keep.
	authorized := own || (cur != nil && slices.Contains(cur.Members, from)) ||
		(cur == nil && slices.Contains(st.Members, from) && slices.Contains(st.Members, c.name))
	if !authorized {
		c.emit(Event{Kind: EventUndecryptable, Peer: from, Device: fromDev.id, Err: errNotMember})
		return
	}
	// A state may run at most maxVersionStep ahead of the one held (of
	// none, for a new group): one at the highest version would make the
	// next change wrap to 0, which every member ignores, and so a member
	// who sent it could never be removed.
	var held uint64
	if cur != nil {
		held = cur.Version
	}
	if st.Version > held && st.Version-held > maxVersionStep {
		c.failures.take(from)
		c.emit(Event{Kind: EventUndecryptable, Peer: from, Device: fromDev.id, Err: errBadContent})
		return
	}
	g := cur
	if cur == nil || st.Version > cur.Version {
		if cur == nil {
			if err := c.checkGroupCount(ctx); err != nil {
				c.emit(Event{Kind: EventError, Err: err})
				return
			}
		}
		n := &storedGroup{groupState: *st, id: id, member: slices.Contains(st.Members, c.name)}
		if cur != nil {
			n.Name = cur.Name // the local name stays
		} else if other, err := loadGroup(ctx, c.chat, "name", st.Name); err == nil && other != nil {
			n.Name = fmt.Sprintf("%s-%x", st.Name, id[:2])
		}
		if err := saveGroup(ctx, c.chat, n); err != nil {
			c.emit(Event{Kind: EventError, Err: err})
			return
		}
		var removed []string
		if cur != nil {
			for _, m := range cur.Members {
				if !slices.Contains(n.Members, m) {
					removed = append(removed, m)
				}
			}
		}
		if len(removed) > 0 {
			if err := c.rotate(ctx, id); err != nil {
				c.emit(Event{Kind: EventError, Err: err})
			}
		}
		g = n
		c.emit(Event{Kind: EventGroup, Peer: from, Device: fromDev.id, Group: n.Name, Members: n.Members, Text: describeChange(cur, n, removed)})
	}
	if ct.Dist == nil {
		return
	}
	dm, err := senderkey.ParseDistributionMessage(ct.Dist)
	if err != nil || dm.DistributionID != id || !(own || slices.Contains(g.Members, from)) {
		if err == nil {
			err = errNotMember
		}
		c.failures.take(from)
		c.emit(Event{Kind: EventUndecryptable, Peer: from, Device: fromDev.id, Group: g.Name, Err: err})
		return
	}
	err = c.st.Update(ctx, func(tx store.Tx) error {
		sk, err := store.SenderKeysOf(tx)
		if err != nil {
			return err
		}
		a := devAddr(from, fromDev.id)
		rec, err := loadRecord(ctx, sk, a, id)
		if err != nil {
			return err
		}
		defer rec.Clear()
		rec.Process(dm)
		return sk.Save(ctx, a, id, rec.Bytes())
	})
	if err != nil {
		c.emit(Event{Kind: EventError, Err: fmt.Errorf("client: storing %s's sender key: %w", from, err)})
	}
}

func describeChange(old, n *storedGroup, removed []string) string {
	switch {
	case old == nil:
		return "you were added to " + n.Name
	case !n.member:
		return "you were removed from " + n.Name
	case len(removed) > 0:
		return strings.Join(removed, ", ") + " removed from " + n.Name
	default:
		return n.Name + " now has " + strings.Join(n.Members, ", ")
	}
}

// decryptGroup decrypts a group message from fromDev with the sender key
// it distributed, in one store transaction that saves the advanced record
// only if decryption succeeds. The message is read even if the group, as
// this client knows it, no longer has the sender or the user: what
// refuses a removed member is that no one sends it a new chain, not that
// its client declines to try. Only then is the message dropped, unless
// the sender is a member and the user too. Called with procMu and keysMu
// held.
func (c *Client) decryptGroup(ctx context.Context, fromDev device, body []byte) error {
	from := fromDev.user
	fail := func(group string, err error) error {
		c.failures.take(from)
		c.emit(Event{Kind: EventUndecryptable, Peer: from, Device: fromDev.id, Group: group, Err: err})
		return nil
	}
	hdr, err := senderkey.ParseMessage(body)
	if err != nil {
		return fail("", err)
	}
	g, err := loadGroup(ctx, c.chat, "id", hdr.DistributionID[:])
	if err != nil {
		return errTransient{err}
	}
	if g == nil {
		return fail("", senderkey.ErrNoState)
	}
	var pt []byte
	err = c.st.Update(ctx, func(tx store.Tx) error {
		sk, err := store.SenderKeysOf(tx)
		if err != nil {
			return err
		}
		a := devAddr(from, fromDev.id)
		b, err := sk.Load(ctx, a, g.id)
		if errors.Is(err, store.ErrNotFound) {
			return senderkey.ErrNoState
		}
		if err != nil {
			return err
		}
		rec, err := senderkey.ParseRecord(b)
		if err != nil {
			return err
		}
		defer rec.Clear()
		if pt, err = rec.Decrypt(body); err != nil {
			return err
		}
		return sk.Save(ctx, a, g.id, rec.Bytes())
	})
	switch {
	case errors.Is(err, senderkey.ErrDuplicate):
		c.failures.take(from)
		return nil
	case errors.Is(err, senderkey.ErrNoState), errors.Is(err, senderkey.ErrInvalidSignature),
		errors.Is(err, senderkey.ErrTooFarInFuture), errors.Is(err, senderkey.ErrDecrypt), errors.Is(err, senderkey.ErrMalformed):
		return fail(g.Name, err)
	case err != nil:
		return errTransient{err}
	}
	if !g.member || !(from == c.name || slices.Contains(g.Members, from)) {
		return fail(g.Name, errNotMember)
	}
	c.emit(Event{Kind: EventMessage, Peer: from, Device: fromDev.id, Group: g.Name, Text: string(pt)})
	return nil
}
