package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ratchetkit/ratchetkit/examples/chat/api"
)

// serverAPI calls the key server's HTTP API.
type serverAPI struct {
	base  string // scheme://host:port, no trailing slash
	hc    *http.Client
	token string
}

// maxResponse bounds a response body: a bundle is a few hundred bytes.
const maxResponse = 1 << 20

// do sends a JSON request and decodes a JSON response into out. A failure
// the server explains comes back as an *api.Error.
func (s *serverAPI) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e api.ErrorResponse
		if json.Unmarshal(b, &e) == nil && e.Error.Code != "" {
			return &e.Error
		}
		return fmt.Errorf("chat server: %s", resp.Status)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// register claims req.Name; the token in the response is the account's
// only credential.
func (s *serverAPI) register(ctx context.Context, req *api.RegisterRequest) (*api.RegisterResponse, error) {
	var resp api.RegisterResponse
	if err := s.do(ctx, "POST", "/v1/register", req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// replaceKeys publishes a reset identity; it returns the server's count of
// one-time prekeys, as addPreKeys and count do.
func (s *serverAPI) replaceKeys(ctx context.Context, req *api.KeysRequest) (int, error) {
	var c api.PreKeyCount
	err := s.do(ctx, "PUT", "/v1/keys", req, &c)
	return c.OneTimePreKeys, err
}

func (s *serverAPI) setSignedPreKey(ctx context.Context, spk api.SignedPreKey) error {
	return s.do(ctx, "PUT", "/v1/keys/signed", spk, nil)
}

func (s *serverAPI) addPreKeys(ctx context.Context, pks []api.PreKey) (int, error) {
	var c api.PreKeyCount
	err := s.do(ctx, "POST", "/v1/keys/one-time", api.PreKeysRequest{OneTimePreKeys: pks}, &c)
	return c.OneTimePreKeys, err
}

func (s *serverAPI) count(ctx context.Context) (int, error) {
	var c api.PreKeyCount
	err := s.do(ctx, "GET", "/v1/keys/count", nil, &c)
	return c.OneTimePreKeys, err
}

// bundle fetches the bundle of name's device dev, which consumes one of
// its one-time prekeys. A bundle naming another user or device is refused: the keys in it are
// checked by X3DH, but which user they belong to only by this name.
func (s *serverAPI) bundle(ctx context.Context, name string, dev uint32) (*api.Bundle, error) {
	var b api.Bundle
	path := "/v1/users/" + url.PathEscape(name) + "/devices/" + strconv.FormatUint(uint64(dev), 10) + "/bundle"
	if err := s.do(ctx, "GET", path, nil, &b); err != nil {
		return nil, err
	}
	if b.Name != name || b.Device != dev {
		return nil, errors.New("chat server: bundle for another user or device")
	}
	return &b, nil
}

// wsURL turns the server's base URL into the relay's WebSocket URL.
func (s *serverAPI) wsURL() string {
	switch {
	case strings.HasPrefix(s.base, "https://"):
		return "wss://" + strings.TrimPrefix(s.base, "https://") + "/v1/ws"
	default:
		return "ws://" + strings.TrimPrefix(s.base, "http://") + "/v1/ws"
	}
}

// isCode reports whether err is a server error with the given code.
func isCode(err error, code string) bool {
	e, ok := errors.AsType[*api.Error](err)
	return ok && e.Code == code
}
