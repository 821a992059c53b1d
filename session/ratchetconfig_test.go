package session_test

import (
	"strings"
	"testing"

	"github.com/ratchetkit/ratchetkit/aead"
	"github.com/ratchetkit/ratchetkit/ratchet"
	"github.com/ratchetkit/ratchetkit/session"
	"github.com/ratchetkit/ratchetkit/store/memory"
)

// TestNewChecksRatchetConfig checks that New refuses a ratchet.Config that
// the ratchet would refuse at the first session, with ratchet's own reason.
func TestNewChecksRatchetConfig(t *testing.T) {
	type foreign struct{ aead.Suite }
	for name, rc := range map[string]ratchet.Config{
		"MaxSkip":        {MaxSkip: ratchet.MaxLimit + 1},
		"MaxSkippedKeys": {MaxSkippedKeys: ratchet.MaxLimit + 1},
		"Suite":          {Suite: foreign{aead.AES256GCM()}},
	} {
		_, err := session.New(memory.New(), &session.Config{Ratchet: rc})
		if err == nil || !strings.Contains(err.Error(), "Config."+name) {
			t.Errorf("%s: New = %v, want ratchet's error for %s", name, err, name)
		}
	}
	if _, err := session.New(memory.New(), &session.Config{Ratchet: ratchet.Config{MaxSkip: ratchet.MaxLimit, Suite: aead.ChaCha20Poly1305()}}); err != nil {
		t.Errorf("New with a valid ratchet.Config: %v", err)
	}
}
