// Command transport embeds ratchetkit in a transport of its own: two peers
// talk over a real TCP connection on the loopback interface, in frames of a
// 4-byte big-endian length followed by that many bytes. The library never
// sees the connection. It turns keys into bytes to send (a bundle, a first
// message, ratchet messages) and received bytes into plaintext, so any
// transport that carries byte strings — TCP, a message queue, QR codes,
// carrier pigeons — will do.
//
// Bob plays the server: he listens, sends his prekey bundle as the first
// frame (in a real system a key server would hand it out), and answers.
// Alice dials, runs X3DH on the bundle, and starts the Double Ratchet. Her
// first frame is a prekey message, the X3DH header in front of the ratchet
// message, so Bob can compute the same secret; after that, frames are plain
// ratchet messages. (Package session does this bookkeeping, and storage, for
// applications; this example shows the two layers underneath it.)
//
// Run it with
//
//	go run ./examples/transport
package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"sync"

	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/ratchet"
	"github.com/ratchetkit/ratchetkit/x3dh"
)

// maxFrame bounds a frame's length. A length prefix read from the network
// is attacker-controlled: without a bound, four bytes could make the reader
// allocate 4 GiB.
const maxFrame = 64 << 10

var errFrameTooLarge = errors.New("frame too large")

// prekeyMessage is the type byte of profile v1's prekey message,
// 0x02 || X3DH header || ratchet message, which Alice sends first. (The
// session layer would keep sending it until Bob answers; this example's
// Bob answers at once, on a connection that cannot lose frames.)
const prekeyMessage = 0x02

// writeFrame writes p with its length in front, in one Write so that the
// two never go out as separate segments.
func writeFrame(w io.Writer, p []byte) error {
	if len(p) > maxFrame {
		return errFrameTooLarge
	}
	buf := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(p)), uint32(len(p)))
	_, err := w.Write(append(buf, p...))
	return err
}

// readFrame reads one frame. A connection closed between frames gives
// io.EOF; one closed inside a frame gives io.ErrUnexpectedEOF.
func readFrame(r io.Reader) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > maxFrame {
		return nil, errFrameTooLarge
	}
	p := make([]byte, size)
	if _, err := io.ReadFull(r, p); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return p, nil
}

// outbox holds a peer's consecutive messages until it is the other's turn,
// so that the sender's transcript lines for them all come before the
// receiver's: only the transcript needs this, not the protocol.
type outbox [][]byte

func (o *outbox) add(msg []byte) { *o = append(*o, msg) }

func (o *outbox) flush(w io.Writer) error {
	for _, msg := range *o {
		if err := writeFrame(w, msg); err != nil {
			return err
		}
	}
	*o = (*o)[:0]
	return nil
}

// script is the conversation: who speaks, in order. Alice's first line
// travels with the X3DH header.
var script = []struct {
	alice bool
	text  string
}{
	{true, "Hi Bob, this is Alice over a raw TCP socket."},
	{false, "Hi Alice. The library never touched the socket."},
	{true, "Bytes in, bytes out."},
	{true, "Two in a row: same sending chain, no new DH step."},
	{false, "And my reply turns the DH ratchet again."},
}

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run plays the script between two goroutines over loopback TCP and writes
// a transcript to out.
//
// Each side writes its lines about its frames before sending them and
// after receiving them, so the transcript's order follows the frames,
// however the goroutines are scheduled.
func run(out io.Writer) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format+"\n", args...)
	}
	say("Bob listens on %s", ln.Addr())

	bobErr := make(chan error, 1)
	go func() { bobErr <- bob(ln, say) }()
	aliceErr := alice(ln.Addr().String(), say)
	if err := <-bobErr; err != nil {
		return fmt.Errorf("bob: %w", err)
	}
	if aliceErr != nil {
		return fmt.Errorf("alice: %w", aliceErr)
	}
	return nil
}

// bob accepts one connection, sends his bundle and plays his part of the
// script.
func bob(ln net.Listener, say func(string, ...any)) error {
	ik, err := keys.GenerateIdentityKeyPair()
	if err != nil {
		return err
	}
	spk, err := keys.GenerateSignedPreKey(ik, 1)
	if err != nil {
		return err
	}
	opks, err := keys.GenerateOneTimePreKeys(1, 1)
	if err != nil {
		return err
	}
	conn, err := ln.Accept()
	if err != nil {
		return err
	}
	defer conn.Close()

	bundle, err := (&x3dh.Bundle{
		IdentityKey:           ik.PublicKey(),
		SignedPreKeyID:        spk.ID(),
		SignedPreKey:          spk.PublicKey(),
		SignedPreKeySignature: spk.Signature(),
		OneTimePreKeyID:       opks[0].ID(),
		OneTimePreKey:         opks[0].PublicKey(),
	}).MarshalBinary()
	if err != nil {
		return err
	}
	say("Bob   → bundle, %d bytes (identity key, signed prekey, signature, one-time prekey)", len(bundle))
	if err := writeFrame(conn, bundle); err != nil {
		return err
	}

	var sess *ratchet.Session
	var out outbox
	for i, step := range script {
		if !step.alice {
			msg, err := sess.Encrypt([]byte(step.text))
			if err != nil {
				return err
			}
			say("Bob   → %d-byte ratchet message", len(msg))
			out.add(msg)
			continue
		}
		if err := out.flush(conn); err != nil {
			return err
		}
		frame, err := readFrame(conn)
		if err != nil {
			return err
		}
		msg := frame
		if i == 0 {
			// The first frame is a profile v1 prekey message: type byte
			// 0x02, the X3DH header, then the ratchet message.
			if len(frame) == 0 || frame[0] != prekeyMessage {
				return errors.New("first message is not a prekey message")
			}
			h, rest, err := x3dh.ParseHeader(frame[1:])
			if err != nil {
				return err
			}
			if h.SignedPreKeyID != spk.ID() || !h.HasOneTimePreKey || h.OneTimePreKeyID != opks[0].ID() {
				return errors.New("first message names prekeys Bob does not have")
			}
			resp, err := x3dh.Respond(ik, spk, opks[0], h, nil)
			if err != nil {
				return err
			}
			sess, err = ratchet.NewResponder(resp.SK[:], resp.AD[:], spk.PrivateKey(), nil)
			resp.Clear()
			if err != nil {
				return err
			}
			msg = rest
		}
		pt, err := sess.Decrypt(msg)
		if err != nil {
			return err
		}
		if i == 0 {
			// Decryption confirmed the agreement: now, and not before, the
			// one-time prekey's private half can go.
			opks[0].PrivateKey().Clear()
		}
		say("Bob   ← %q", pt)
	}
	if err := out.flush(conn); err != nil {
		return err
	}
	if _, err := readFrame(conn); err != io.EOF {
		return fmt.Errorf("expected Alice to hang up, got %v", err)
	}
	say("Bob   ← connection closed")
	return nil
}

// alice dials Bob, starts the session from his bundle and plays her part.
func alice(addr string, say func(string, ...any)) error {
	ik, err := keys.GenerateIdentityKeyPair()
	if err != nil {
		return err
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()

	frame, err := readFrame(conn)
	if err != nil {
		return err
	}
	bundle, err := x3dh.ParseBundle(frame)
	if err != nil {
		return err
	}
	// Initiate verifies the signed prekey's signature before anything else.
	in, err := x3dh.Initiate(ik, bundle, nil)
	if err != nil {
		return err
	}
	sess, err := ratchet.NewInitiator(in.SK[:], in.AD[:], bundle.SignedPreKey, nil)
	in.Clear()
	if err != nil {
		return err
	}
	header, err := in.Header.AppendBinary([]byte{prekeyMessage})
	if err != nil {
		return err
	}
	say("Alice ← bundle; signature verified, X3DH done, Double Ratchet started")

	var out outbox
	for i, step := range script {
		if step.alice {
			msg, err := sess.Encrypt([]byte(step.text))
			if err != nil {
				return err
			}
			if i == 0 {
				msg = append(header, msg...)
				say("Alice → %d-byte prekey message (type byte, %d-byte X3DH header, %d-byte ratchet message)",
					len(msg), len(header)-1, len(msg)-len(header))
			} else {
				say("Alice → %d-byte ratchet message", len(msg))
			}
			out.add(msg)
			continue
		}
		if err := out.flush(conn); err != nil {
			return err
		}
		frame, err := readFrame(conn)
		if err != nil {
			return err
		}
		pt, err := sess.Decrypt(frame)
		if err != nil {
			return err
		}
		say("Alice ← %q", pt)
	}
	if err := out.flush(conn); err != nil {
		return err
	}
	sess.Clear()
	say("Alice hangs up")
	return nil
}
