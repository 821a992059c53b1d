package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ratchetkit/ratchetkit/examples/chat/api"
	"github.com/ratchetkit/ratchetkit/keys"
	"github.com/ratchetkit/ratchetkit/x3dh"
)

// routes maps the API of package api onto handlers. Method-qualified
// patterns let the mux answer a wrong method with 405; everything else
// falls through to a JSON 404, so clients always get an ErrorResponse.
func (s *Server) routes() {
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /v1/register", s.handleRegister)
	s.mux.HandleFunc("PUT /v1/keys", s.authed(s.handleReplaceKeys))
	s.mux.HandleFunc("PUT /v1/keys/signed", s.authed(s.handleSignedPreKey))
	s.mux.HandleFunc("POST /v1/keys/one-time", s.authed(s.handleAddPreKeys))
	s.mux.HandleFunc("GET /v1/keys/count", s.authed(s.handleCount))
	s.mux.HandleFunc("GET /v1/users/{name}/bundle", s.authed(s.handleBundle))
	s.mux.HandleFunc("GET /v1/users/{name}/devices", s.authed(s.handleDevices))
	s.mux.HandleFunc("GET /v1/users/{name}/devices/{device}/bundle", s.authed(s.handleBundle))
	s.mux.HandleFunc("POST /v1/devices/link", s.authed(s.handleLink))
	s.mux.HandleFunc("POST /v1/devices", s.handleAddDevice)
	s.mux.HandleFunc("POST /v1/devices/provision", s.handleProvision)
	s.mux.HandleFunc("GET /v1/ws", s.authed(s.handleWS))
	s.mux.HandleFunc("GET /healthz", s.handleHealth)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, http.StatusNotFound, api.CodeNotFound, "no such endpoint")
	})
}

// canonicalPaths refuses a request whose path is not in the canonical
// form. http.ServeMux would answer it with a redirect to the cleaned path,
// so that GET /v1/users/alice/../bob/bundle leads a client that follows
// redirects, bearer token and all, to bob's bundle. No client of this API
// sends such a path, so it is an error rather than a detour.
func (s *Server) canonicalPaths(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.EscapedPath(); r.Method != http.MethodConnect && p != cleanPath(p) {
			s.fail(w, r, http.StatusBadRequest, api.CodeBadRequest, "path has empty, '.' or '..' segments")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// apiError is a failure with its HTTP status.
type apiError struct {
	status int
	code   string
	msg    string
}

// fail answers with an api.ErrorResponse. Messages are fixed texts, with
// at most a number or a limit of the server's in them: they never echo
// request bytes back (not even a field name), which could carry keys or
// terminal escapes.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	if rec, ok := w.(*statusRecorder); ok {
		rec.code = code
	}
	writeJSON(w, status, api.ErrorResponse{Error: api.Error{Code: code, Message: msg}})
}

func (s *Server) failErr(w http.ResponseWriter, r *http.Request, e *apiError) {
	s.fail(w, r, e.status, e.code, e.msg)
}

// internal reports a failure of the server itself. The error goes to the
// log (database errors name no stored values); the client learns only that
// nothing was changed.
func (s *Server) internal(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("internal error", "route", r.Pattern, "err", err)
	s.fail(w, r, http.StatusInternalServerError, api.CodeInternal, "internal server error")
}

// writeJSON answers with v. nosniff keeps browsers from reading a JSON
// body as anything else.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// decode reads r's body as exactly one JSON value into v: at most
// api.MaxBodySize bytes, no unknown fields, nothing after the value.
func decode(w http.ResponseWriter, r *http.Request, v any) *apiError {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, api.MaxBodySize))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return &apiError{http.StatusRequestEntityTooLarge, api.CodeTooLarge,
				fmt.Sprintf("request body over %d bytes", api.MaxBodySize)}
		}
		return &apiError{http.StatusBadRequest, api.CodeBadRequest, "cannot read request body"}
	}
	if err := decodeStrict(body, v); err != nil {
		return &apiError{http.StatusBadRequest, api.CodeBadRequest, err.Error()}
	}
	return nil
}

type userKey struct{}

// authed runs h for requests with a valid bearer token, with the device
// it authenticates in the context. The cap on requests in progress is per
// account, all its devices together.
func (s *Server) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" || len(token) > 128 {
			s.fail(w, r, http.StatusUnauthorized, api.CodeUnauthorized, "missing bearer token")
			return
		}
		dev, err := s.st.userByToken(r.Context(), token)
		if errors.Is(err, errUnknownUser) {
			s.fail(w, r, http.StatusUnauthorized, api.CodeUnauthorized, "unknown token")
			return
		}
		if err != nil {
			s.internal(w, r, err)
			return
		}
		name := dev.user
		if rec, ok := w.(*statusRecorder); ok {
			rec.user = name
		}
		if !s.busy.acquire(name) {
			s.fail(w, r, http.StatusTooManyRequests, api.CodeRateLimited,
				fmt.Sprintf("this account has %d requests or connections in progress, the most allowed; retry when one is done", s.cfg.MaxConnsPerUser))
			return
		}
		defer s.busy.release(name)
		h(w, r.WithContext(context.WithValue(r.Context(), userKey{}, dev)))
	}
}

// authDevice returns the device authed put in r's context.
func authDevice(r *http.Request) device { return r.Context().Value(userKey{}).(device) }

// user returns the name of the account authed put in r's context.
func user(r *http.Request) string { return authDevice(r).user }

// checkKeys validates the public keys of a registration or reset before
// anything is stored: every key decodes, none has small order, and the
// signed prekey's signature verifies under the identity key. Each one-time
// prekey goes through the same x3dh.Bundle.Verify a client will run on the
// bundle that carries it, so the server never hands out a bundle that
// Initiate refuses.
func checkKeys(ik []byte, spk api.SignedPreKey, opks []api.PreKey) (*keySet, *apiError) {
	b := &api.Bundle{IdentityKey: ik, SignedPreKey: spk}
	xb, err := b.X3DH()
	if err != nil {
		return nil, &apiError{http.StatusBadRequest, api.CodeBadKey, "key does not decode: " + err.Error()}
	}
	if e := verifyBundle(xb); e != nil {
		return nil, e
	}
	if e := checkPreKeys(xb, opks); e != nil {
		return nil, e
	}
	return &keySet{identityKey: ik, spk: spk, opks: opks}, nil
}

// verifyBundle maps x3dh.Bundle.Verify's verdict to API errors. Verify
// judges the keys before the signature, so a small-order key is reported
// as a bad key rather than as a bad signature.
func verifyBundle(xb *x3dh.Bundle) *apiError {
	switch err := xb.Verify(); {
	case err == nil:
		return nil
	case errors.Is(err, x3dh.ErrInvalidSignature):
		return &apiError{http.StatusBadRequest, api.CodeBadSignature, "signed prekey signature does not verify under the identity key"}
	case errors.Is(err, x3dh.ErrSmallOrder):
		return &apiError{http.StatusBadRequest, api.CodeBadKey, "key of small order"}
	default:
		return &apiError{http.StatusBadRequest, api.CodeBadRequest, "bundle: " + err.Error()}
	}
}

// checkPreKeys checks a batch of one-time prekeys against xb, the owner's
// verified bundle without one.
func checkPreKeys(xb *x3dh.Bundle, opks []api.PreKey) *apiError {
	if len(opks) > api.MaxPreKeysPerRequest {
		return &apiError{http.StatusRequestEntityTooLarge, api.CodeTooLarge,
			fmt.Sprintf("more than %d one-time prekeys in one request", api.MaxPreKeysPerRequest)}
	}
	seen := make(map[uint32]bool, len(opks))
	for _, pk := range opks {
		if seen[pk.ID] {
			return &apiError{http.StatusConflict, api.CodePreKeyExists, fmt.Sprintf("one-time prekey id %d repeated", pk.ID)}
		}
		seen[pk.ID] = true
		k, err := keys.DecodePublicKey(pk.Key)
		if err != nil {
			return &apiError{http.StatusBadRequest, api.CodeBadKey, fmt.Sprintf("one-time prekey %d does not decode", pk.ID)}
		}
		withOPK := *xb
		withOPK.OneTimePreKeyID, withOPK.OneTimePreKey = pk.ID, k
		if e := verifyBundle(&withOPK); e != nil {
			e.msg = fmt.Sprintf("one-time prekey %d: %s", pk.ID, e.msg)
			return e
		}
	}
	return nil
}

// remoteIP is the peer address, for the log. Behind a reverse proxy it is
// the proxy's; this server trusts no forwarding headers, which any client
// could forge.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// clientKey is the key of r's client for limits per address: its address
// grouped by the configured prefix lengths (see addrKey).
func (s *Server) clientKey(r *http.Request) string {
	return addrKey(r.RemoteAddr, s.cfg.IPv4Prefix, s.cfg.IPv6Prefix)
}

func (s *Server) rateLimited(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
	s.fail(w, r, http.StatusTooManyRequests, api.CodeRateLimited, "too many requests; retry later")
}

// keyTaken refuses an identity key that another name holds.
var keyTaken = &apiError{http.StatusConflict, api.CodeKeyTaken, "this identity key is registered to another name; generate a new one"}

// badInvite refuses a registration without a usable invite code.
var badInvite = &apiError{http.StatusForbidden, api.CodeInvite, "registration on this server needs an invite code that has not been used"}

// admit runs the first checks of a registration, of an account or a
// device, in this order: the limit per client address, so that a flood
// costs no decoding; the body into req; the name, which decoding stores
// in *name. It reports whether to go on, having answered if not.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, req any, name *string) bool {
	if ok, wait := s.registry.allow(r.Context(), s.clientKey(r)); !ok {
		s.rateLimited(w, r, wait)
		return false
	}
	if e := decode(w, r, req); e != nil {
		s.failErr(w, r, e)
		return false
	}
	if !api.ValidName(*name) {
		s.fail(w, r, http.StatusBadRequest, api.CodeBadRequest,
			fmt.Sprintf("a name is 1 to %d characters of a-z, 0-9, '-' and '_'", api.MaxNameLen))
		return false
	}
	return true
}

// handleRegister claims a name. The rate limit comes first, then the
// invite code if the server needs one, so that a flood costs no signature
// checks; the keys are verified before anything is stored, and name, keys
// and the use of the code are stored in one transaction.
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	var req api.RegisterRequest
	if !s.admit(w, r, &req, &req.Name) {
		return
	}
	switch ok, err := s.st.inviteUsable(r.Context(), req.Invite); {
	case err != nil:
		s.internal(w, r, err)
		return
	case !ok:
		s.failErr(w, r, badInvite)
		return
	}
	ks, e := checkKeys(req.IdentityKey, req.SignedPreKey, req.OneTimePreKeys)
	if e != nil {
		s.failErr(w, r, e)
		return
	}
	token := newToken()
	switch err := s.st.register(r.Context(), req.Name, token, req.Invite, ks); {
	case errors.Is(err, errBadInvite):
		s.failErr(w, r, badInvite)
		return
	case errors.Is(err, errNameTaken):
		s.fail(w, r, http.StatusConflict, api.CodeNameTaken, "name already registered")
		return
	case errors.Is(err, errKeyTaken):
		s.failErr(w, r, keyTaken)
		return
	case errors.Is(err, errTooMany):
		s.fail(w, r, http.StatusConflict, api.CodeTooMany, fmt.Sprintf("at most %d one-time prekeys per user", s.cfg.MaxPreKeys))
		return
	case err != nil:
		s.internal(w, r, err)
		return
	}
	if rec, ok := w.(*statusRecorder); ok {
		rec.user = req.Name
	}
	s.log.Info("registered", "user", req.Name, "one_time_prekeys", len(ks.opks))
	writeJSON(w, http.StatusCreated, api.RegisterResponse{Token: token, OneTimePreKeys: len(ks.opks), Device: 1})
}

// handleReplaceKeys is an identity reset: the caller's identity key,
// signed prekey and one-time prekeys are all replaced at once. Queued
// envelopes stay; those made for the old identity will not decrypt, which
// the client reports.
//
// Resets are limited per account, as link codes are: each claims its new
// identity key for the account for good (checkIdentityFree), so that
// unlimited resets would grow the database without bound.
func (s *Server) handleReplaceKeys(w http.ResponseWriter, r *http.Request) {
	if ok, wait := s.resets.allow(r.Context(), user(r)); !ok {
		s.rateLimited(w, r, wait)
		return
	}
	var req api.KeysRequest
	if e := decode(w, r, &req); e != nil {
		s.failErr(w, r, e)
		return
	}
	ks, e := checkKeys(req.IdentityKey, req.SignedPreKey, req.OneTimePreKeys)
	if e != nil {
		s.failErr(w, r, e)
		return
	}
	switch err := s.st.replaceKeys(r.Context(), authDevice(r), ks); {
	case errors.Is(err, errKeyTaken):
		s.failErr(w, r, keyTaken)
		return
	case errors.Is(err, errTooMany):
		s.fail(w, r, http.StatusConflict, api.CodeTooMany, fmt.Sprintf("at most %d one-time prekeys per user", s.cfg.MaxPreKeys))
		return
	case err != nil:
		s.internal(w, r, err)
		return
	}
	s.log.Info("identity replaced", "user", user(r), "device", authDevice(r).id, "one_time_prekeys", len(ks.opks))
	writeJSON(w, http.StatusOK, api.PreKeyCount{OneTimePreKeys: len(ks.opks)})
}

// handleSignedPreKey publishes a rotated signed prekey, which must be
// signed by the identity key already stored: a stolen token alone cannot
// make bundles carry a signed prekey of the thief's. Clients publish on
// every connection, so that a rotation whose upload failed is not lost;
// publishing the current one again changes nothing.
func (s *Server) handleSignedPreKey(w http.ResponseWriter, r *http.Request) {
	var spk api.SignedPreKey
	if e := decode(w, r, &spk); e != nil {
		s.failErr(w, r, e)
		return
	}
	ik, err := s.st.identityKey(r.Context(), authDevice(r))
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if _, e := checkKeys(ik, spk, nil); e != nil {
		s.failErr(w, r, e)
		return
	}
	changed, err := s.st.setSignedPreKey(r.Context(), authDevice(r), spk)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if changed {
		s.log.Info("signed prekey replaced", "user", user(r), "spk_id", spk.ID)
	}
	s.handleCount(w, r)
}

// handleAddPreKeys stores more one-time prekeys, all or none: each is
// checked as part of a bundle with the stored keys, ids must be new, and
// the total stays within MaxPreKeys. A one-time prekey carries no
// signature (X3DH has none for it), so a stolen token can upload keys of
// the thief's. First messages made with them fail to decrypt, since the
// owner lacks their private halves: a denial of service, not a loss of
// confidentiality, because SK also rests on DH1 to DH3, which involve the
// owner's identity and signed prekeys.
func (s *Server) handleAddPreKeys(w http.ResponseWriter, r *http.Request) {
	var req api.PreKeysRequest
	if e := decode(w, r, &req); e != nil {
		s.failErr(w, r, e)
		return
	}
	xb, err := s.st.storedBundle(r.Context(), authDevice(r))
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if e := checkPreKeys(xb, req.OneTimePreKeys); e != nil {
		s.failErr(w, r, e)
		return
	}
	switch err := s.st.addPreKeys(r.Context(), authDevice(r), req.OneTimePreKeys); {
	case errors.Is(err, errPreKeyExists):
		s.fail(w, r, http.StatusConflict, api.CodePreKeyExists, "a one-time prekey id is already stored")
		return
	case errors.Is(err, errTooMany):
		s.fail(w, r, http.StatusConflict, api.CodeTooMany, fmt.Sprintf("at most %d one-time prekeys per user", s.cfg.MaxPreKeys))
		return
	case err != nil:
		s.internal(w, r, err)
		return
	}
	s.log.Info("one-time prekeys added", "user", user(r), "count", len(req.OneTimePreKeys))
	s.handleCount(w, r)
}

func (s *Server) handleCount(w http.ResponseWriter, r *http.Request) {
	n, err := s.st.countPreKeys(r.Context(), authDevice(r))
	if err != nil {
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.PreKeyCount{OneTimePreKeys: n})
}

// handleBundle hands out a device's bundle (device 1's on the route
// without a device), consuming one one-time prekey. Two
// limits apply, since each fetch costs the owner a prekey: one per fetching
// user, which refuses the fetch, and one per owner across all fetchers
// (Config.PreKeyRate), over which the bundle carries no one-time prekey.
// An invalid name is answered like an unknown one, without a database
// query. When the owner's stock runs low, its connection, if any, is told.
func (s *Server) handleBundle(w http.ResponseWriter, r *http.Request) {
	if ok, wait := s.bundles.allow(r.Context(), user(r)); !ok {
		s.rateLimited(w, r, wait)
		return
	}
	name := r.PathValue("name")
	if !api.ValidName(name) {
		s.fail(w, r, http.StatusNotFound, api.CodeUnknownUser, "no such user")
		return
	}
	d := device{name, 1}
	if p := r.PathValue("device"); p != "" {
		id, err := strconv.ParseUint(p, 10, 32)
		if err != nil || id == 0 || id > api.MaxDevices*1000 || strconv.FormatUint(id, 10) != p {
			s.fail(w, r, http.StatusNotFound, api.CodeUnknownDevice, "no such device")
			return
		}
		d.id = uint32(id)
	}
	b, remaining, err := s.st.takeBundle(r.Context(), d, func() bool {
		ok, _ := s.prekeys.allow(r.Context(), d.key())
		return ok
	})
	switch {
	case errors.Is(err, errUnknownUser):
		s.fail(w, r, http.StatusNotFound, api.CodeUnknownUser, "no such user")
		return
	case errors.Is(err, errUnknownDevice):
		s.fail(w, r, http.StatusNotFound, api.CodeUnknownDevice, "no such device")
		return
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	switch {
	case b.Exhausted:
		s.log.Warn("one-time prekeys exhausted; bundle has the signed prekey only", "owner", name, "device", d.id)
	case b.Withheld:
		s.log.Warn("one-time prekey handouts over the owner's limit; bundle has the signed prekey only", "owner", name, "device", d.id)
	}
	if remaining <= s.cfg.LowPreKeys {
		s.hub.preKeys(d.key(), remaining)
		s.st.publish(r.Context(), event{kind: evPreKeys, dev: d.key(), n: remaining})
	}
	writeJSON(w, http.StatusOK, b)
}

// handleDevices lists a user's devices. It is rate limited with the
// bundle fetches of the caller (a list is cheap, but a client asks for
// one before it fetches bundles anyway), at half a fetch each: two lists
// cost one bundle's allowance.
func (s *Server) handleDevices(w http.ResponseWriter, r *http.Request) {
	if ok, wait := s.lists.allow(r.Context(), user(r)); !ok {
		s.rateLimited(w, r, wait)
		return
	}
	name := r.PathValue("name")
	if !api.ValidName(name) {
		s.fail(w, r, http.StatusNotFound, api.CodeUnknownUser, "no such user")
		return
	}
	ids, err := s.st.devices(r.Context(), name)
	if errors.Is(err, errUnknownUser) {
		s.fail(w, r, http.StatusNotFound, api.CodeUnknownUser, "no such user")
		return
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.Devices{Name: name, Devices: ids})
}

// handleLink registers an existing device's link code for a new one:
// kept as a hash, good for one device within api.LinkTTL seconds, with
// its provisioning message. A new code voids the account's previous one,
// so an account has at most one live code. Codes are rate limited per
// account.
func (s *Server) handleLink(w http.ResponseWriter, r *http.Request) {
	if ok, wait := s.links.allow(r.Context(), user(r)); !ok {
		s.rateLimited(w, r, wait)
		return
	}
	var req api.LinkRequest
	if e := decode(w, r, &req); e != nil {
		s.failErr(w, r, e)
		return
	}
	if !validLinkCode(req.Code) {
		s.fail(w, r, http.StatusBadRequest, api.CodeBadRequest, fmt.Sprintf("a link code is %d hexadecimal digits", api.LinkCodeLen))
		return
	}
	if len(req.Provision) == 0 {
		s.fail(w, r, http.StatusBadRequest, api.CodeBadRequest, "no provisioning message")
		return
	}
	if len(req.Provision) > api.MaxProvisionSize {
		s.fail(w, r, http.StatusRequestEntityTooLarge, api.CodeTooLarge, fmt.Sprintf("a provisioning message is 1 to %d bytes", api.MaxProvisionSize))
		return
	}
	n, err := s.st.devices(r.Context(), user(r))
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if len(n) >= s.cfg.MaxDevices {
		s.failErr(w, r, tooManyDevices(s.cfg.MaxDevices))
		return
	}
	expires := s.now().Unix() + api.LinkTTL
	if err := s.st.createLink(r.Context(), user(r), req.Code, req.Provision, expires); err != nil {
		s.internal(w, r, err)
		return
	}
	s.log.Info("link code issued", "user", user(r), "device", authDevice(r).id)
	writeJSON(w, http.StatusCreated, api.LinkResponse{Expires: expires})
}

// validLinkCode reports whether code has the form of a link code: a
// lower-case hexadecimal hash, which is also what makes looking it up by
// its own hash safe.
func validLinkCode(code string) bool {
	if len(code) != api.LinkCodeLen {
		return false
	}
	for i := 0; i < len(code); i++ {
		if c := code[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// handleProvision gives a new device the provisioning message of its link
// code. It is a guess at a code like a registration is, and spends the
// same allowance of the client's address.
func (s *Server) handleProvision(w http.ResponseWriter, r *http.Request) {
	var req api.ProvisionRequest
	if !s.admit(w, r, &req, &req.Name) {
		return
	}
	if !validLinkCode(req.LinkCode) {
		s.failErr(w, r, badLink)
		return
	}
	p, err := s.st.provision(r.Context(), req.Name, req.LinkCode)
	switch {
	case errors.Is(err, errBadLink):
		s.failErr(w, r, badLink)
		return
	case err != nil:
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.Provision{Provision: p})
}

func tooManyDevices(n int) *apiError {
	return &apiError{http.StatusConflict, api.CodeTooManyDevices, fmt.Sprintf("an account has at most %d devices", n)}
}

// badLink refuses a device registration without a usable link code.
var badLink = &apiError{http.StatusForbidden, api.CodeLink, "a new device needs a link code from an existing device of the account, unused and less than 10 minutes old"}

// handleAddDevice adds a device to an account, as handleRegister adds an
// account: the same limit per client address first (a device is as
// costly as an account), then the link code, then the keys; code, device
// and keys are checked and stored in one transaction.
func (s *Server) handleAddDevice(w http.ResponseWriter, r *http.Request) {
	var req api.DeviceRequest
	if !s.admit(w, r, &req, &req.Name) {
		return
	}
	if !validLinkCode(req.LinkCode) {
		s.failErr(w, r, badLink)
		return
	}
	ks, e := checkKeys(req.IdentityKey, req.SignedPreKey, req.OneTimePreKeys)
	if e != nil {
		s.failErr(w, r, e)
		return
	}
	token := newToken()
	id, err := s.st.addDevice(r.Context(), req.Name, token, req.LinkCode, ks)
	switch {
	case errors.Is(err, errBadLink):
		s.failErr(w, r, badLink)
		return
	case errors.Is(err, errTooManyDevices):
		s.failErr(w, r, tooManyDevices(s.cfg.MaxDevices))
		return
	case errors.Is(err, errKeyTaken):
		s.failErr(w, r, keyTaken)
		return
	case errors.Is(err, errTooMany):
		s.fail(w, r, http.StatusConflict, api.CodeTooMany, fmt.Sprintf("at most %d one-time prekeys per device", s.cfg.MaxPreKeys))
		return
	case err != nil:
		s.internal(w, r, err)
		return
	}
	if rec, ok := w.(*statusRecorder); ok {
		rec.user = req.Name
	}
	s.log.Info("device added", "user", req.Name, "device", id, "one_time_prekeys", len(ks.opks))
	writeJSON(w, http.StatusCreated, api.RegisterResponse{Token: token, OneTimePreKeys: len(ks.opks), Device: id})
}

// healthTimeout bounds the database check of /healthz.
const healthTimeout = 2 * time.Second

// handleHealth answers a load balancer's health check: 200 if this
// instance serves and its database answers within healthTimeout, 503 once
// shutdown has begun or if the database does not answer. It needs no
// token and says nothing but that.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, api.Health{Status: "draining"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	if err := s.st.ping(ctx); err != nil {
		s.log.Error("health check", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, api.Health{Status: "database unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, api.Health{Status: "ok"})
}

// statusRecorder remembers what a handler answered, for the request log.
type statusRecorder struct {
	http.ResponseWriter
	status int
	code   string
	user   string
}

func (r *statusRecorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController and the WebSocket upgrade reach the
// connection underneath.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// logRequests logs one line per request. It logs the route pattern, not the
// path, so user names in paths stay out of the logs, and never bodies or
// headers, which hold tokens and keys.
func (s *Server) logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		level := slog.LevelInfo
		if rec.status >= 400 {
			level = slog.LevelWarn
		}
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("route", r.Pattern),
			slog.Int("status", rec.status),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote", remoteIP(r)),
		}
		if rec.user != "" {
			attrs = append(attrs, slog.String("user", rec.user))
		}
		if rec.code != "" {
			attrs = append(attrs, slog.String("error", rec.code))
		}
		s.log.LogAttrs(r.Context(), level, "request", attrs...)
	})
}
