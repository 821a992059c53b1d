package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/ratchetkit/ratchetkit/examples/chat/api"
)

// The relay keeps one WebSocket connection per device. Every envelope goes
// through the queue table, whether its recipient is online or not: sending
// stores it, a per-connection pusher sends whatever is queued for its user,
// and only the recipient's ack deletes it. One path for online and offline
// delivery means a crash, a dropped connection or a slow client can delay a
// message but never lose one that the sender was told is stored.

// writeTimeout bounds one frame write; a client that stops reading is
// dropped rather than allowed to pile up goroutines.
const writeTimeout = 10 * time.Second

// pushBatch is how many queued envelopes one query fetches.
const pushBatch = 64

type wsConn struct {
	dev device
	c   *websocket.Conn
	// wake tells the pusher that something was queued; prekeys carries a
	// one-time prekey count to report. Both hold at most one pending value,
	// so notifying never blocks.
	wake    chan struct{}
	prekeys chan int
}

type hub struct {
	mu     sync.Mutex
	closed bool
	conns  map[string]*wsConn // by device.key()
}

// add registers c as its device's connection and returns the one it
// replaces, if any. It fails once the server is closing; otherwise the
// caller must call s.wg.Done when the connection ends.
func (s *Server) addConn(c *wsConn) (old *wsConn, ok bool) {
	h := &s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, false
	}
	s.wg.Add(1)
	old = h.conns[c.dev.key()]
	h.conns[c.dev.key()] = c
	return old, true
}

func (h *hub) remove(c *wsConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conns[c.dev.key()] == c {
		delete(h.conns, c.dev.key())
	}
}

func (h *hub) get(dev string) *wsConn {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.conns[dev]
}

// wake tells the connection of dev (a device.key()), if any, to push what
// is queued.
func (h *hub) wake(dev string) {
	if c := h.get(dev); c != nil {
		c.notify()
	}
}

// notify wakes the pusher without blocking: one pending wake is enough.
func (c *wsConn) notify() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// preKeys reports a device's one-time prekey count to its connection,
// replacing a count not yet sent.
func (h *hub) preKeys(dev string, n int) {
	if c := h.get(dev); c != nil {
		c.reportPreKeys(n)
	}
}

func (c *wsConn) reportPreKeys(n int) {
	for {
		select {
		case c.prekeys <- n:
			return
		default:
		}
		select {
		case <-c.prekeys:
		default:
		}
	}
}

// wakeAll wakes every connection, after events may have been lost.
func (h *hub) wakeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.conns {
		c.notify()
	}
}

// onEvent acts on what another instance published. A device's connection
// here closes when another instance says the device connected there; if
// it connects there and then here again within the time a notification
// takes, the late one can close the newest connection, which the client
// reconnects after its backoff.
func (s *Server) onEvent(ev event) {
	switch ev.kind {
	case evQueued:
		s.hub.wake(ev.dev)
	case evPreKeys:
		s.hub.preKeys(ev.dev, ev.n)
	case evConnected:
		if c := s.hub.get(ev.dev); c != nil {
			go c.c.Close(websocket.StatusPolicyViolation, "replaced by a newer connection")
		}
	case evResync:
		s.hub.wakeAll()
	}
}

// goingAway is the reason of the close frame at shutdown.
const goingAway = "server shutting down; reconnect"

// closeAll closes every connection with a "going away" status and refuses
// new ones.
func (h *hub) closeAll() {
	h.mu.Lock()
	h.closed = true
	conns := make([]*wsConn, 0, len(h.conns))
	for _, c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() { c.c.Close(websocket.StatusGoingAway, goingAway) })
	}
	wg.Wait()
}

func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	dev := authDevice(r)
	// Clients are programs, not browsers; Accept's default origin check
	// still refuses cross-origin pages.
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		// Accept has answered the request with an error.
		return
	}
	c.SetReadLimit(api.MaxFrameSize)
	conn := &wsConn{dev: dev, c: c, wake: make(chan struct{}, 1), prekeys: make(chan int, 1)}
	old, ok := s.addConn(conn)
	if !ok {
		c.Close(websocket.StatusGoingAway, goingAway)
		return
	}
	defer s.wg.Done()
	defer s.hub.remove(conn)
	if old != nil {
		// One connection per device: the newest wins, so a client that lost
		// its connection without noticing can come straight back.
		go old.c.Close(websocket.StatusPolicyViolation, "replaced by a newer connection")
	}
	// The same across instances: one that holds an older connection of
	// this device closes it when it hears of this one.
	s.st.publish(s.ctx, event{kind: evConnected, dev: dev.key()})
	s.log.Info("connected", "user", dev.user, "device", dev.id)

	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	if n, err := s.st.countPreKeys(ctx, dev); err == nil {
		conn.reportPreKeys(n)
	}
	// The pusher starts by reading the queue anyway; the wake only makes
	// sure it does not wait first. A sender may have woken it already.
	conn.notify()

	var wg sync.WaitGroup
	var pushErr error
	wg.Go(func() {
		pushErr = s.push(ctx, conn)
		cancel()
	})
	wg.Go(func() { s.ping(ctx, conn, cancel) })
	err = s.readLoop(ctx, conn)
	cancel()
	wg.Wait()
	c.CloseNow()
	if pushErr != nil && !errors.Is(pushErr, context.Canceled) {
		err = pushErr
	}
	s.log.Info("disconnected", "user", dev.user, "device", dev.id, "status", websocket.CloseStatus(err).String(), "reason", closeReason(err))
}

// closeReason says why a connection ended, without echoing anything the
// peer sent.
func closeReason(err error) string {
	var ce websocket.CloseError
	switch {
	case errors.As(err, &ce):
		return "closed by peer"
	case errors.Is(err, websocket.ErrMessageTooBig):
		return fmt.Sprintf("frame over %d bytes", api.MaxFrameSize)
	case errors.Is(err, errSlowFrame):
		return "frame too slow"
	case errors.Is(err, context.Canceled):
		return "closed by server"
	default:
		return "connection error"
	}
}

// readLoop reads and handles frames until the connection ends. Waiting
// for a frame has no deadline (pings find dead peers), but once a frame
// has begun it must be whole within ReadTimeout: a client that trickles a
// frame byte by byte cannot answer pings meanwhile, and would otherwise
// hold the connection until the ping timeout; one that fragments a frame
// and answers pings between the pieces would hold it for ever.
func (s *Server) readLoop(ctx context.Context, conn *wsConn) error {
	for {
		typ, data, err := s.readFrame(ctx, conn)
		if err != nil {
			return err
		}
		if typ != websocket.MessageText {
			s.sendError(ctx, conn, "", api.CodeBadRequest, "frames are JSON text messages")
			continue
		}
		var f api.Frame
		if err := decodeStrict(data, &f); err != nil {
			s.sendError(ctx, conn, "", api.CodeBadRequest, err.Error())
			continue
		}
		switch f.Type {
		case api.FrameSend:
			s.relay(ctx, conn, &f)
		case api.FrameAck:
			if f.Seq <= 0 {
				s.sendError(ctx, conn, f.ID, api.CodeBadRequest, "ack without a sequence number")
				continue
			}
			if err := s.st.ack(ctx, conn.dev, f.Seq); err != nil {
				s.log.Error("ack", "user", conn.dev.user, "device", conn.dev.id, "err", err)
				s.sendError(ctx, conn, f.ID, api.CodeInternal, "internal server error")
			}
		default:
			s.sendError(ctx, conn, f.ID, api.CodeBadRequest, "unknown frame type")
		}
	}
}

// readFrame reads one whole message, closing the connection if it takes
// longer than ReadTimeout from its first frame header on. The read limit
// set at Accept applies.
func (s *Server) readFrame(ctx context.Context, conn *wsConn) (websocket.MessageType, []byte, error) {
	typ, r, err := conn.c.Reader(ctx)
	if err != nil {
		return 0, nil, err
	}
	slow := time.AfterFunc(s.cfg.ReadTimeout, func() { conn.c.CloseNow() })
	data, err := io.ReadAll(r)
	if !slow.Stop() {
		return 0, nil, errSlowFrame
	}
	return typ, data, err
}

// errSlowFrame ends a connection whose frame took longer than ReadTimeout.
var errSlowFrame = errors.New("frame not read within the read timeout")

// relay queues a send frame's envelope for its recipient device (device 1
// if the frame names none). A device may send to its own account's other
// devices, not to itself.
func (s *Server) relay(ctx context.Context, conn *wsConn, f *api.Frame) {
	if len(f.ID) > api.MaxIDLen {
		s.sendError(ctx, conn, "", api.CodeBadRequest, fmt.Sprintf("id over %d bytes", api.MaxIDLen))
		return
	}
	if len(f.Body) == 0 {
		s.sendError(ctx, conn, f.ID, api.CodeBadRequest, "empty envelope")
		return
	}
	if len(f.Body) > api.MaxEnvelopeSize {
		s.sendError(ctx, conn, f.ID, api.CodeTooLarge, fmt.Sprintf("envelope over %d bytes", api.MaxEnvelopeSize))
		return
	}
	if ok, wait := s.sends.allow(ctx, conn.dev.user); !ok {
		s.sendError(ctx, conn, f.ID, api.CodeRateLimited, fmt.Sprintf(
			"too many sends: at most %d at once, then %g per second; retry in %d s",
			s.cfg.SendBurst, s.cfg.SendRate, int(wait.Seconds())+1))
		return
	}
	if !api.ValidName(f.To) {
		s.sendError(ctx, conn, f.ID, api.CodeUnknownUser, "no such user")
		return
	}
	to := device{f.To, max(f.Device, 1)}
	if to == conn.dev {
		s.sendError(ctx, conn, f.ID, api.CodeBadRequest, "a device cannot send to itself")
		return
	}
	switch ok, err := s.st.deviceExists(ctx, to); {
	case err != nil:
		s.log.Error("relay", "err", err)
		s.sendError(ctx, conn, f.ID, api.CodeInternal, "internal server error")
		return
	case !ok:
		// Unknown user and unknown device are told apart, so that a
		// client can refresh a stale device list; both are as easy to
		// learn from GET /v1/users/{name}/devices.
		if ok, err := s.st.userExists(ctx, to.user); err == nil && ok {
			s.sendError(ctx, conn, f.ID, api.CodeUnknownDevice, "no such device")
		} else {
			s.sendError(ctx, conn, f.ID, api.CodeUnknownUser, "no such user")
		}
		return
	}
	seq, err := s.st.enqueue(ctx, conn.dev, to, f.Body)
	if r, ok := errors.AsType[*refusal](err); ok {
		s.sendError(ctx, conn, f.ID, r.code, r.msg)
		return
	}
	if err != nil {
		s.log.Error("enqueue", "err", err)
		s.sendError(ctx, conn, f.ID, api.CodeInternal, "internal server error")
		return
	}
	s.log.Debug("queued", "from", conn.dev.user, "from_device", conn.dev.id, "to", to.user, "device", to.id, "seq", seq, "size", len(f.Body))
	s.hub.wake(to.key())
	s.write(ctx, conn, &api.Frame{Type: api.FrameSent, ID: f.ID, Seq: seq})
}

// push sends conn's device everything queued for it, then waits for more.
// Envelopes already pushed on this connection are not pushed again; on the
// next connection everything unacknowledged is.
//
// Reading only what is above the last sequence number pushed is safe
// because one recipient's envelopes commit in the order of their sequence
// numbers: SQLite has one writer, and PostgreSQL's enqueue holds a lock on
// the recipient until it commits. With PostgreSQL the wake usually comes
// from another instance's NOTIFY, which can be lost (see postgresStorage),
// so the queue is also re-read every RereadInterval.
func (s *Server) push(ctx context.Context, conn *wsConn) error {
	var last int64
	var reread <-chan time.Time
	if s.reread > 0 {
		t := time.NewTicker(s.reread)
		defer t.Stop()
		reread = t.C
	}
	for {
		batch, err := s.st.pending(ctx, conn.dev, last, pushBatch)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("read queue", "user", conn.dev.user, "device", conn.dev.id, "err", err)
			}
			return err
		}
		for _, q := range batch {
			if err := s.write(ctx, conn, &api.Frame{Type: api.FrameMessage, Seq: q.seq, From: q.from.user, FromDevice: q.from.id, Body: q.body}); err != nil {
				return err
			}
			s.log.Debug("pushed", "to", conn.dev.user, "device", conn.dev.id, "seq", q.seq, "size", len(q.body))
			last = q.seq
		}
		if len(batch) == pushBatch {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-conn.wake:
		case <-reread:
		case n := <-conn.prekeys:
			if err := s.write(ctx, conn, &api.Frame{Type: api.FramePreKeys, Remaining: &n}); err != nil {
				return err
			}
		}
	}
}

func (s *Server) ping(ctx context.Context, conn *wsConn, cancel context.CancelFunc) {
	t := time.NewTicker(s.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, pcancel := context.WithTimeout(ctx, writeTimeout)
		err := conn.c.Ping(pctx)
		pcancel()
		if err != nil {
			cancel()
			return
		}
	}
}

func (s *Server) sendError(ctx context.Context, conn *wsConn, id, code, msg string) {
	s.log.Warn("bad frame", "user", conn.dev.user, "device", conn.dev.id, "error", code)
	s.write(ctx, conn, &api.Frame{Type: api.FrameError, ID: id, Code: code, Message: msg})
}

func (s *Server) write(ctx context.Context, conn *wsConn, f *api.Frame) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return conn.c.Write(ctx, websocket.MessageText, b)
}
