package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// What a pairwise session carries, once decrypted, is a content: a JSON
// object, parsed strictly (no unknown field, nothing after it). A
// plaintext that does not start with '{' is the text of a client from
// before contents, and is shown as it is.
//
//   - A text message: Text. On a copy to the sender's own other devices,
//     To names the peer it was sent to.
//   - A group's state (Group) and perhaps, in Dist, the sender device's
//     sender-key distribution message for the group (senderkey
//     DistributionMessage bytes): see groups.go.
//
// Group messages themselves are not contents: they are Sender Key
// messages (senderkey.Record.Encrypt), whose plaintext is the text, told
// apart from session messages by their first byte (0x33; a profile v1
// session message starts with 0x01 or 0x02).
type content struct {
	Text  string      `json:"text,omitempty"`
	To    string      `json:"to,omitempty"`
	Group *groupState `json:"group,omitempty"`
	Dist  []byte      `json:"dist,omitempty"`
}

// groupState is a group as its members know it. ID is its senderkey
// DistributionID, random, and names it everywhere; Name is what users
// call it. Version counts the changes of the member list: a state
// replaces the one a client has only if its version is higher.
type groupState struct {
	ID      []byte   `json:"id"`
	Name    string   `json:"name"`
	Version uint64   `json:"version"`
	Members []string `json:"members"`
}

// senderKeyVersion is the first byte of every Sender Key message.
const senderKeyVersion = 0x33

var errBadContent = errors.New("client: malformed message content")

func (ct *content) bytes() []byte {
	b, err := json.Marshal(ct)
	if err != nil {
		panic(err) // strings and byte slices always marshal
	}
	return b
}

// parseContent decodes a decrypted pairwise plaintext.
func parseContent(pt []byte) (*content, error) {
	if len(pt) == 0 || pt[0] != '{' {
		return &content{Text: string(pt)}, nil
	}
	d := json.NewDecoder(bytes.NewReader(pt))
	d.DisallowUnknownFields()
	var ct content
	if err := d.Decode(&ct); err != nil {
		return nil, errBadContent
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, errBadContent
	}
	return &ct, nil
}
