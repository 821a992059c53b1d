// Package libsignaltest loads the vectors that libsignal itself made
// (testdata/libsignal/vectors.json, written by testdata/libsignal/gen.mjs
// with @signalapp/libsignal-client 0.103.0) for the tests of the packages
// that speak the Signal protocol. It is test support: library code never
// imports it.
//
// Byte strings in the file are lowercase hex; Hex decodes them and fails the
// test on a malformed one.
package libsignaltest

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// Vectors is the whole file.
type Vectors struct {
	LibsignalClient  string            `json:"libsignal_client"`
	Keys             KeyVectors        `json:"keys"`
	BundleNegatives  BundleNegatives   `json:"bundle_negatives"`
	Sessions         []Session         `json:"sessions"`
	MessageNegatives []MessageNegative `json:"message_negatives"`
}

// KeyVectors are libsignal's own keys and signatures.
type KeyVectors struct {
	EC []struct {
		Public    string `json:"public"`
		Private   string `json:"private"`
		Message   string `json:"message"`
		Signature string `json:"signature"`
	} `json:"ec"`
	Kyber []struct {
		IdentityKey     string `json:"identity_key"`
		Public          string `json:"public"`
		SecretLibsignal string `json:"secret_libsignal"`
		Signature       string `json:"signature"`
		Record          string `json:"record"`
		PublicRoundtrip bool   `json:"public_roundtrip"`
	} `json:"kyber"`
	BadKEMKeys []BadKey `json:"bad_kem_keys"`
	BadECKeys  []BadKey `json:"bad_ec_keys"`
}

// BadKey is a key encoding and libsignal's error for it (nil: accepted).
type BadKey struct {
	Name   string  `json:"name"`
	Public string  `json:"public"`
	Error  *string `json:"error"`
}

// Error is an error libsignal reported: its ErrorCode and message, and for
// message negatives whether deserializing or decrypting refused.
type Error struct {
	Code    *int   `json:"code"`
	Message string `json:"message"`
	Stage   string `json:"stage"`
}

// BundleNegatives are bundles that processPreKeyBundle refused (or, for
// "valid", accepted).
type BundleNegatives struct {
	IdentityKey  string       `json:"identity_key"`
	SignedPreKey SignedPreKey `json:"signed_prekey"`
	KyberPreKey  KyberPreKey  `json:"kyber_prekey"`
	Cases        []struct {
		Name                  string `json:"name"`
		SignedPreKey          string `json:"signed_prekey"`
		SignedPreKeySignature string `json:"signed_prekey_signature"`
		KyberPreKey           string `json:"kyber_prekey"`
		KyberPreKeySignature  string `json:"kyber_prekey_signature"`
		Error                 *Error `json:"error"`
	} `json:"cases"`
}

// Identity is a party's identity key pair and registration id.
type Identity struct {
	Public         string `json:"public"`
	Private        string `json:"private"`
	SerializedPair string `json:"serialized_pair"`
	RegistrationID uint32 `json:"registration_id"`
}

// SignedPreKey is a signed EC prekey with its private key.
type SignedPreKey struct {
	ID        uint32 `json:"id"`
	Public    string `json:"public"`
	Private   string `json:"private"`
	Signature string `json:"signature"`
}

// OneTimePreKey is a one-time EC prekey with its private key.
type OneTimePreKey struct {
	ID      uint32 `json:"id"`
	Public  string `json:"public"`
	Private string `json:"private"`
}

// KyberPreKey is a Kyber1024 prekey made from a known 64-byte ML-KEM seed,
// as libsignal held it (expanded secret key, record) and signed it.
type KyberPreKey struct {
	ID              uint32 `json:"id"`
	Seed            string `json:"seed"`
	Public          string `json:"public"`
	SecretLibsignal string `json:"secret_libsignal"`
	Signature       string `json:"signature"`
	Record          string `json:"record"`
}

// Bundle is the PreKeyBundle that Alice processed.
type Bundle struct {
	RegistrationID        uint32  `json:"registration_id"`
	DeviceID              uint32  `json:"device_id"`
	PreKeyID              *uint32 `json:"prekey_id"`
	PreKey                *string `json:"prekey"`
	SignedPreKeyID        uint32  `json:"signed_prekey_id"`
	SignedPreKey          string  `json:"signed_prekey"`
	SignedPreKeySignature string  `json:"signed_prekey_signature"`
	IdentityKey           string  `json:"identity_key"`
	KyberPreKeyID         uint32  `json:"kyber_prekey_id"`
	KyberPreKey           string  `json:"kyber_prekey"`
	KyberPreKeySignature  string  `json:"kyber_prekey_signature"`
}

// Chain is one chain of a libsignal session state.
type Chain struct {
	RatchetKey     string `json:"ratchet_key"`
	RatchetPrivate string `json:"ratchet_private"`
	ChainIndex     uint32 `json:"chain_index"`
	ChainKey       string `json:"chain_key"`
}

// State is the current session state of a libsignal SessionRecord.
type State struct {
	SessionVersion   int     `json:"session_version"`
	RootKey          string  `json:"root_key"`
	SenderChain      *Chain  `json:"sender_chain"`
	ReceiverChains   []Chain `json:"receiver_chains"`
	PreviousSessions int     `json:"previous_sessions"`
}

// Message is one wire message of a transcript, in delivery order.
type Message struct {
	Seq           int    `json:"seq"`
	From          string `json:"from"`
	Type          int    `json:"type"`
	Wire          string `json:"wire"`
	Plaintext     string `json:"plaintext"`
	SenderAfter   *State `json:"sender_after"`
	ReceiverAfter *State `json:"receiver_after"`
}

// Party is one side of a session.
type Party struct {
	Address       string         `json:"address"`
	Identity      Identity       `json:"identity"`
	SignedPreKey  *SignedPreKey  `json:"signed_prekey"`
	OneTimePreKey *OneTimePreKey `json:"one_time_prekey"`
	KyberPreKey   *KyberPreKey   `json:"kyber_prekey"`
}

// Session is one PQXDH session between libsignal parties and its
// transcript.
type Session struct {
	Name             string    `json:"name"`
	Alice            Party     `json:"alice"`
	Bob              Party     `json:"bob"`
	Bundle           Bundle    `json:"bundle"`
	AliceAfterBundle *State    `json:"alice_after_bundle"`
	Messages         []Message `json:"messages"`
	KyberMarkedUsed  []struct {
		ID       uint32 `json:"id"`
		SignedID uint32 `json:"signed_id"`
		BaseKey  string `json:"base_key"`
	} `json:"kyber_marked_used"`
	OneTimePreKeyRemoved *bool `json:"one_time_prekey_removed"`
}

// MessageNegative is a tampered SignalMessage and what libsignal said.
type MessageNegative struct {
	Name      string `json:"name"`
	Wire      string `json:"wire"`
	Original  string `json:"original"`
	Plaintext string `json:"plaintext"`
	Error     *Error `json:"error"`
	// StateUnchanged and OriginalDecryptedAfter record that the refusal
	// changed nothing: the untouched message still decrypted.
	StateUnchanged         *bool `json:"state_unchanged"`
	OriginalDecryptedAfter *bool `json:"original_decrypted_after"`
}

var (
	once sync.Once
	vec  *Vectors
	err  error
)

// Path is the file's location, found from this source file so that every
// package's tests read the same one.
func Path() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "libsignal", "vectors.json")
}

// Load parses the file once per test binary and fails t if it cannot.
func Load(t testing.TB) *Vectors {
	t.Helper()
	once.Do(func() {
		var b []byte
		if b, err = os.ReadFile(Path()); err != nil {
			return
		}
		vec = new(Vectors)
		err = json.Unmarshal(b, vec)
	})
	if err != nil {
		t.Fatalf("libsignal vectors: %v", err)
	}
	return vec
}

// Hex decodes s and fails t if it is not hex.
func Hex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex in libsignal vectors: %v", err)
	}
	return b
}

// BytesField returns the first length-delimited field num of the protobuf
// message b, for tests that need one field of a libsignal message without
// the wire package under test. It fails t on a malformed message.
func BytesField(t testing.TB, b []byte, num int) []byte {
	t.Helper()
	for len(b) > 0 {
		key, n := uvarint(b)
		if n == 0 {
			break
		}
		b = b[n:]
		switch key & 7 {
		case 0:
			_, n = uvarint(b)
			if n == 0 {
				t.Fatal("libsignaltest: bad varint")
			}
			b = b[n:]
		case 2:
			l, n := uvarint(b)
			if n == 0 || uint64(len(b)-n) < l {
				t.Fatal("libsignaltest: bad length")
			}
			if int(key>>3) == num {
				return b[n : n+int(l)]
			}
			b = b[n+int(l):]
		default:
			t.Fatalf("libsignaltest: wire type %d", key&7)
		}
	}
	t.Fatalf("libsignaltest: no field %d", num)
	return nil
}

func uvarint(b []byte) (uint64, int) {
	var x uint64
	for i := 0; i < len(b) && i < 10; i++ {
		x |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return x, i + 1
		}
	}
	return 0, 0
}

// Peer is libsignal itself, running testdata/libsignal/live.mjs as the
// responder of one session of the vectors, driven one JSON line at a time.
type Peer struct {
	t   testing.TB
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// Reply is live.mjs's (or live_senderkey.mjs's) answer to a request.
type Reply struct {
	OK        bool   `json:"ok"`
	Error     string `json:"error"`
	Plaintext string `json:"plaintext"`
	Type      int    `json:"type"`
	Wire      string `json:"wire"`
	// Unchanged says, for a failed decrypt of live_senderkey.mjs, whether
	// the member's records were byte-identical afterwards.
	Unchanged *bool `json:"unchanged"`
}

// Live starts libsignal as the responder of the named session. Without Node
// or without `npm ci` in testdata/libsignal the test is skipped, unless
// RATCHETKIT_REQUIRE_LIBSIGNAL=1 (as .ci/run sets it), which makes that a
// failure.
func Live(t testing.TB, session string) *Peer {
	t.Helper()
	return LiveScript(t, "live.mjs", session)
}

// LiveScript starts the Node script of testdata/libsignal with args, under
// the same rules as Live.
func LiveScript(t testing.TB, script string, args ...string) *Peer {
	t.Helper()
	dir := filepath.Dir(Path())
	_, errNode := exec.LookPath("node")
	_, errMod := os.Stat(filepath.Join(dir, "node_modules", "@signalapp", "libsignal-client", "package.json"))
	if errNode != nil || errMod != nil {
		if os.Getenv("RATCHETKIT_REQUIRE_LIBSIGNAL") == "1" {
			t.Fatalf("live libsignal required but unavailable (node: %v; npm ci in %s: %v)", errNode, dir, errMod)
		}
		t.Skip("live libsignal unavailable: run `npm ci` in testdata/libsignal (node must be on PATH)")
	}
	cmd := exec.Command("node", append([]string{script}, args...)...)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Peer{t: t, cmd: cmd, in: in, out: bufio.NewScanner(out)}
	p.out.Buffer(make([]byte, 1<<16), 1<<24)
	t.Cleanup(func() {
		in.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("%s: %v", script, err)
		}
	})
	return p
}

// Call sends one request and returns the answer.
func (p *Peer) Call(req map[string]any) Reply {
	p.t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.in.Write(append(b, '\n')); err != nil {
		p.t.Fatal(err)
	}
	if !p.out.Scan() {
		p.t.Fatalf("live.mjs ended: %v", p.out.Err())
	}
	var r Reply
	if err := json.Unmarshal(p.out.Bytes(), &r); err != nil {
		p.t.Fatal(err)
	}
	return r
}
