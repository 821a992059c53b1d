// Package hazmat connects ratchetkit's own tools and known-answer tests to the
// deterministic variants of operations that normally draw fresh keys from
// crypto/rand: the X3DH ephemeral key and the Double Ratchet's new ratchet
// key pairs. Reproducing a published transcript byte for byte needs those
// keys injected; nothing outside this module can reach this package, and
// nothing in the library's normal paths sets a KeySource.
//
// Each setter is installed by the package that owns the target type, in its
// init function, so that this package does not import them (they import it).
// The targets are typed any for the same reason; a setter panics on a target
// of the wrong type, which is a bug in ratchetkit itself.
package hazmat

import "github.com/ratchetkit/ratchetkit/keys"

// KeySource returns the private key that an operation uses in place of the
// next key it would generate. Returning an error aborts the operation.
type KeySource func() (*keys.PrivateKey, error)

// Setters, installed by the owning packages.
var (
	// SetX3DHKeySource sets the source of the ephemeral key on an *x3dh.Config.
	SetX3DHKeySource func(cfg any, src KeySource)
	// SetRatchetKeySource sets the source of new ratchet key pairs on a
	// *ratchet.Config (for sessions made with it) or a *ratchet.Session.
	SetRatchetKeySource func(target any, src KeySource)
	// SetSessionKeySource sets the key source that a *session.Config passes
	// on to the X3DH and ratchet operations it runs.
	SetSessionKeySource func(cfg any, src KeySource)
)

// Keys returns a KeySource that hands out ks in order and then fails.
func Keys(ks ...*keys.PrivateKey) KeySource {
	return func() (*keys.PrivateKey, error) {
		if len(ks) == 0 {
			return nil, errNoKeys
		}
		k := ks[0]
		ks = ks[1:]
		return k, nil
	}
}

type hazmatError string

func (e hazmatError) Error() string { return string(e) }

const errNoKeys = hazmatError("hazmat: key source exhausted")
