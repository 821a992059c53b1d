// Package server is the chat example's key-distribution server and message
// relay. It stores each user's public keys and hands out prekey bundles, and
// it routes envelopes between users over WebSockets, queueing them in SQLite
// or PostgreSQL for users who are offline. It never holds a private key, and envelopes are
// ciphertexts it cannot read: everything here could run on a machine the
// users do not trust, except for the limits listed below.
//
// The HTTP and WebSocket protocol is described in package api.
//
// # Authentication
//
// Registration claims a free name and returns a random 256-bit token; the
// client sends it as a bearer token with every later request, and the
// server stores only its SHA-256 hash. This is how Signal's servers
// authenticate accounts too (a random password per device), and it keeps
// the server's authentication separate from the end-to-end identity keys:
// resetting an identity (new identity key) keeps the account, and the
// identity key is never used to sign anything but prekeys. The alternative,
// signing a server challenge with the identity key, would tie the name to
// the key and make a lost key a lost name, for no gain in a demo.
//
// # Devices
//
// An account has up to MaxDevices devices (api.MaxDevices, 6). Each has
// its own token, signed and one-time prekeys, and queue, and all of them
// the account's one identity key; envelopes are addressed to one device,
// and the limits on prekey handouts and queue space apply per device, the
// send rate per account. The first device is the one that registered the
// name. Another joins with a link code: an existing device registers one
// (POST /v1/devices/link) with a provisioning message, the user types the
// code into the new device, which fetches the message (POST
// /v1/devices/provision) and registers (POST /v1/devices). The code the
// server stores, as a hash, is itself a hash of the 128-bit secret the
// user carries, good once and for ten minutes (a new one voids the last);
// the provisioning message is the account's identity private key,
// encrypted under a key derived from that secret (package client). So the
// server can let a device in, but cannot give it the identity key.
//
// Why approval by an existing device, rather than the account's
// credentials (a password, or the first device's token copied over): a
// token is a long-lived secret that would then live on two machines, and
// could never be told apart or revoked separately, and neither a password
// nor a token can carry the identity key, which the server must not see.
// A link code is short-lived and single-use, needs a device the user
// already holds, gives the new device a token of its own, and carries
// the identity key past the server. That is what makes the server's
// device list harmless: a device the server (or whoever controls it)
// adds on its own has another identity key, and clients refuse it (they
// pin every device of a user to the key of the user's devices they
// already trust), so that nobody encrypts to it and its messages are held
// as an identity change. What the code does not protect against is being
// seen: whoever reads it within its ten minutes can join the account as
// the user would, and read what is sent to it from then on. This is
// Signal's design too (one identity key per account, handed to a linked
// device over a channel the server cannot read).
//
// The server knows nothing of groups: a group message is an envelope,
// sent once per member device, and counts against the sender's send rate
// and the recipients' queue limits like any other (see package client).
//
// # What this server does not protect
//
//   - Who the keys belong to. The server, or anyone who controls it, can hand
//     out a bundle under its own identity key and read that conversation.
//     Clients defend themselves with safety numbers and by warning when a
//     contact's identity key changes; the server cannot.
//   - Metadata. The server sees who registers, who fetches whose bundle,
//     who sends to whom, when, and how large each envelope is.
//   - Names. The first to register a name gets it; there is no recovery of
//     a lost token and no protection against look-alike names beyond the
//     narrow alphabet of api.ValidName.
//   - The token in transit. Without TLS (the -tls-cert and -tls-key flags)
//     anyone on the path can read tokens and act as their owners towards the
//     server: fetch bundles, drain one-time prekeys, acknowledge (delete)
//     queued envelopes, upload one-time prekeys of their own that make
//     first messages fail. They still cannot read or forge messages: a
//     signed prekey must be signed by the stored identity key, and
//     replacing the identity key itself shows as an identity change to
//     every contact.
//   - Availability against many accounts. The limits below bound what one
//     account or one address can do, and registration bounds how many
//     accounts one address gets; a client with many addresses (or many
//     invite codes) still gets many accounts. Behind a reverse proxy every
//     client shares the proxy's address: the limits per address then
//     belong in the proxy.
//   - Durability beyond what the backend promises; see Backends.
//
// # Threat model: the limits and what each protects
//
// Anyone can register an account (unless invite codes are on), and an
// account can fetch anyone's bundle and send anything to anyone. Each
// limit is a field of Config with a default meant for a small real
// deployment; a refused request or frame gets an error that names the
// limit and its value, and changes nothing.
//
//   - One-time prekeys. BundleRate/BundleBurst (per fetching account) and
//     PreKeyRate/PreKeyBurst (per owner, across all fetchers; 10 at once,
//     then 1 a minute) bound how fast a user's one-time prekeys go. Over
//     the owner's limit a bundle carries the signed prekey alone
//     (api.Bundle.Withheld): the session still starts, with the weaker
//     forward secrecy of a signed prekey, rather than the fetcher being
//     refused, so that draining the allowance does not also make the user
//     unreachable. Measured in process: 20 accounts from 20 addresses took
//     all 81 of a user's one-time prekeys in 49 ms before the per-owner
//     limit, and 10 of 81 in 400 fetches after it.
//   - Registration. RegisterRate/RegisterBurst per client address, where
//     IPv4 addresses count one by one (IPv4Prefix, default 32) and IPv6
//     addresses by their /64 (IPv6Prefix), the network one subscriber
//     gets: keyed by full address, one IPv6 host would have 2^64 budgets.
//     InviteCodes closes registration to holders of a code.
//   - Identity keys. An identity key registered to one name is refused for
//     another (api.CodeKeyTaken): two names with one key would be an
//     unknown key-share, where contacts of "alice2" run X3DH with alice's
//     keys and alice reads what was meant for "alice2".
//   - Queue space. MaxQueue and MaxQueueBytes per recipient (1000
//     envelopes, 16 MiB), SenderShare of both for one sender in one
//     recipient's queue (a quarter), MaxTotalQueueBytes for all queues (1
//     GiB), and SendRate/SendBurst per sender (10 per second after 200).
//     One sender can no longer lock everyone else out of a recipient's
//     queue: before these limits, 1000 envelopes of 48 KiB from one
//     account filled a queue in 4 s (51 MB on disk) and every other sender
//     was refused; now the 86th is refused with api.CodeShareFull and
//     others' envelopes are stored.
//   - Devices. MaxDevices per account (6); link codes LinkRate/LinkBurst
//     per account (5 at once, then 1 a minute), one live at a time, and
//     identity resets the same (each claims a key for good); a
//     provisioning fetch and a device registration each spend the client
//     address's registration allowance, so that guessing link codes (256
//     bits as the server sees them, 128 as the user types them) costs
//     what registering accounts does. Device lists are limited per
//     fetching account at twice the bundle allowance. Groups cost the
//     server nothing of their own: a group message is one envelope per
//     member device, each counted by the send rate and queue limits.
//   - Connections. Serve sets ReadTimeout (a request's headers and body,
//     and each WebSocket frame from its first byte on), WriteTimeout and
//     IdleTimeout, and caps open connections per client address
//     (MaxConnsPerIP, grouped like the rate limits) and requests in
//     progress per account (MaxConnsPerUser). 200 request bodies sent one
//     byte every 3 s all stayed open before; now 168 are refused at once
//     (the cap of 32 per address) and the rest end after ReadTimeout.
//   - Parsing. Bodies are at most api.MaxBodySize and frames
//     api.MaxFrameSize, decoded strictly: one JSON value, no unknown field,
//     no key twice in one object (case folded as encoding/json folds it,
//     so that no two readers of one request disagree on its meaning).
//     Errors never repeat the request's bytes. A path with "." or ".."
//     segments is refused rather than redirected.
//
// # Backends
//
// Config.DBPath chooses where the state lives (chatserver -db):
//
//   - A SQLite file (the default, chatserver.db): no setup, one instance.
//     The file runs in WAL mode with synchronous=NORMAL: a crash of the
//     process loses nothing committed, a power loss or kernel crash may
//     lose the last commits, envelopes a sender was told were stored
//     included (the recipient's ratchet skips over them). The total of
//     queued bytes and the rate limits are kept in the process, so they
//     start afresh (full allowances) after a restart. Back up the file
//     with SQLite's backup API or `sqlite3 chatserver.db .backup`, not by
//     copying it while the server runs.
//   - A PostgreSQL URL (postgres://…): any number of instances, behind a
//     load balancer, share one database. Migrations are embedded and run
//     on start, under an advisory lock, so instances may start together.
//     Durability is the database's: with the default synchronous_commit
//     = on, an envelope is on the database's disk before its sender
//     hears "sent"; an operator who turns it off, or runs asynchronous
//     replicas and fails over to one, may lose the last commits as with
//     SQLite. The total of queued bytes (table queue_total) and the rate
//     limits (table rate_limits) are shared rows, so a client that
//     spreads requests over the instances gets what one instance would
//     give it. Back up with pg_dump or continuous archiving of the
//     database; the instances hold nothing that is not in it.
//
// What holds on both:
//
//   - Ordering. Each recipient's envelopes commit in the order of their
//     sequence numbers (SQLite has one writer; on PostgreSQL enqueue holds
//     a lock on the recipient until it commits), and are pushed in that
//     order; a client sends its outbox one envelope at a time, so one
//     sender's envelopes reach a recipient in the order sent.
//   - Delivery. Every envelope goes through the queue and is deleted only
//     when its recipient acknowledges it. A redelivery after a lost ack or
//     a crash carries the same sequence number, which the client
//     recognises and drops; an envelope the sender did not hear about (an
//     instance died between commit and answer) is sent again from the
//     client's outbox and stored twice, and the recipient's ratchet drops
//     the second copy as a duplicate.
//   - An instance crash (kill -9, a lost machine) loses no committed
//     envelope: its clients' connections drop, they reconnect (through
//     the load balancer, to another instance), and everything
//     unacknowledged is pushed again. Measured in the load test: with
//     three instances and one killed mid-run, every acknowledged message
//     arrived once, in order.
//
// How the instances find each other's recipients: the instance that
// commits an envelope sends NOTIFY on a channel named after the schema, in
// the same transaction, so the notification goes out if and when the
// envelope is committed; every instance LISTENs on a connection of its own
// and wakes the recipient's WebSocket if it holds it. NOTIFY promises
// delivery, once and in commit order, only to sessions listening at the
// time of the commit; a listener that loses its connection misses what was
// sent meanwhile, and a payload is not durable. So notifications are only
// hints: after the listener reconnects every connection re-reads its
// queue, and each connection re-reads it every RereadInterval (5 seconds)
// anyway, which bounds how late a message whose notification was lost
// arrives. The same channel carries "this user connected here" (so that
// an older connection on another instance closes, one connection per user
// as on one instance) and low one-time prekey counts. The caps on
// connections (MaxConnsPerIP, MaxConnsPerUser) are per instance: they
// bound what one process holds open.
//
// # Registration abuse: invite codes or proof of work
//
// Everything above is bounded per account, so the price of an account is
// what bounds abuse by many accounts. Two common ways to raise it:
//
//   - Invite codes (implemented: Config.InviteCodes, chatserver
//     -invite-codes). The operator hands out random codes, each good for
//     one registration; the server keeps their SHA-256 hashes and marks
//     each with the name that used it. Accounts are then bounded by the
//     codes handed out, whatever the attacker's resources, which is what a
//     small deployment (a family, a club, a company) wants; the cost is an
//     operator step per user.
//   - Proof of work. The server would require a hash over the name and
//     identity key with a number of leading zero bits; since names and
//     identity keys are unique, each solution is good once without any
//     server state. It keeps registration open, but its price is CPU
//     time, which an attacker with GPUs or a botnet pays far more cheaply
//     than a user on a phone; at a difficulty that hurts an attacker it
//     hurts users too.
//
// Invite codes were chosen because they bound the number of accounts
// rather than their rate, and need no client-side work beyond sending a
// string (api.RegisterRequest.Invite).
//
// # What a stolen database shows
//
// The database holds, per user: the name, and per device the SHA-256
// hash of the device's token (useless to log in with, the token being 256
// random bits), the public identity key, signed prekey and signature, the
// registration time, and the public one-time prekeys not yet handed out (their count and ids show
// roughly how many sessions others have started with the user). For each
// envelope still queued it holds sender, recipient, time, size and the
// ciphertext; it holds nothing of envelopes already delivered: deleted rows
// are zeroed (secure_delete) and the write-ahead log is truncated after
// deletes (see CheckpointInterval), and the files are readable by their
// owner only. SQLite's sequence counter shows how many envelopes the server
// has relayed in all. With invite codes, it holds each code's hash and the
// name that used it. For a link code not yet used or expired, it holds
// the code's hash, the account, the expiry and the provisioning message:
// the account's identity private key, encrypted under a key the server
// never had (a hash of the code the server sees is no help: the code is
// itself a hash of a 128-bit secret).
//
// A PostgreSQL database holds the same tables, and two more: rate_limits,
// whose keys are user names and client address prefixes with the time of
// their recent activity, and queue_total. PostgreSQL does not zero what it
// deletes: a delivered envelope's row stays in the table's files until
// VACUUM reuses its space, and in the write-ahead log and any archive or
// replica for as long as those are kept. A stolen PostgreSQL database,
// its WAL archive or a backup therefore shows envelopes already delivered
// (their ciphertexts, senders, recipients and times) going back as far as
// those files do; they are still ciphertexts, and the rest of this
// section holds for them. It holds no private key and no plaintext: whoever
// takes the database learns who is waiting for messages from whom, and
// everyone's public keys, but cannot read a message or log in as anyone.
//
// # Logs
//
// The server logs with log/slog: requests (method, route pattern, status,
// duration, authenticated user), connections, and envelope sequence numbers
// and sizes at debug level. It never logs request bodies, envelopes, tokens
// or keys, so its logs hold metadata only.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ratchetkit/ratchetkit/examples/chat/api"
)

// Config configures a Server. The zero value of each field but DBPath means
// the default shown.
type Config struct {
	// DBPath is the SQLite database file, created if missing, or the URL
	// of a PostgreSQL database (postgres://user:password@host/db), whose
	// schema (the one search_path selects) is created or migrated on
	// start. Any number of instances may share one PostgreSQL database;
	// a SQLite file belongs to one. See "Backends" in the package
	// documentation.
	DBPath string
	// Logger receives the server's logs; default slog.Default().
	Logger *slog.Logger
	// BundleRate and BundleBurst limit bundle fetches per user: BundleBurst
	// at once, then BundleRate per second (default 1 per second, burst 20).
	// Every fetch consumes a one-time prekey, so this is what stops one
	// account from draining everyone's prekeys; PreKeyRate is what stops
	// many accounts from draining one user's.
	BundleRate  float64
	BundleBurst int
	// PreKeyRate and PreKeyBurst limit the one-time prekeys handed out of
	// one user's stock, whoever fetches them: PreKeyBurst at once, then
	// PreKeyRate per second (default 1 per minute, burst 10). A fetch over
	// the limit still gets a bundle, with the signed prekey alone
	// (api.Bundle.Withheld), so many accounts together cannot drain one
	// user's stock faster than this, and cannot keep anyone from reaching
	// the user either.
	PreKeyRate  float64
	PreKeyBurst int
	// RegisterRate and RegisterBurst limit registrations per client
	// address, as grouped by IPv4Prefix and IPv6Prefix (default 1 per
	// minute, burst 10).
	RegisterRate  float64
	RegisterBurst int
	// IPv4Prefix and IPv6Prefix are the prefix lengths that group client
	// addresses into one client for the limits per address (default 32,
	// each IPv4 address on its own, and 64, a subscriber's IPv6 network).
	IPv4Prefix int
	IPv6Prefix int
	// InviteCodes, if not empty, makes registration require one of these
	// codes, each good for one registration. The server stores only their
	// SHA-256 hashes; codes must be at least 16 bytes (use random ones).
	// A code no longer listed can no longer be used.
	InviteCodes []string
	// MaxPreKeys bounds the one-time prekeys stored per user (default
	// api.MaxPreKeys).
	MaxPreKeys int
	// MaxQueue and MaxQueueBytes bound the envelopes queued for one user,
	// by count and by their total size (default 1000 and 16 MiB).
	MaxQueue      int
	MaxQueueBytes int64
	// SenderShare is the fraction of MaxQueue and of MaxQueueBytes that
	// one sender's envelopes may take of one recipient's queue (default
	// 0.25), so that no one sender can fill it for everyone else.
	SenderShare float64
	// MaxTotalQueueBytes bounds the envelopes queued for all users
	// together (default 1 GiB).
	MaxTotalQueueBytes int64
	// SendRate and SendBurst limit the envelopes one user may send:
	// SendBurst at once, then SendRate per second (default 10 per second,
	// burst 200).
	SendRate  float64
	SendBurst int
	// LowPreKeys is the count of one-time prekeys at or below which the
	// server tells an online user after each fetch (default 10).
	LowPreKeys int
	// PingInterval is how often idle WebSocket connections are pinged
	// (default 30 seconds).
	PingInterval time.Duration
	// ReadTimeout bounds the reading of one request, headers and body, and
	// of one WebSocket frame from its first byte to its last (default 30
	// seconds); headers alone must arrive within 10 seconds or ReadTimeout,
	// whichever is less. WriteTimeout bounds the writing of one response
	// (default 30 seconds); WebSocket frames have their own 10-second
	// write deadline. IdleTimeout ends a keep-alive connection that sends
	// no next request (default 2 minutes). The HTTP timeouts apply to
	// Serve only; the deadline of a WebSocket frame applies to Handler on
	// any server.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	IdleTimeout  time.Duration
	// MaxConnsPerIP bounds the open connections of one client address, as
	// grouped by IPv4Prefix and IPv6Prefix (default 32); Serve closes
	// further ones at once. MaxConnsPerUser bounds the requests in
	// progress, WebSocket connections included, of one account (default
	// 8).
	MaxConnsPerIP   int
	MaxConnsPerUser int
	// CheckpointInterval is how often, at most, the SQLite write-ahead log
	// is copied into the database and truncated after deletes (default 1
	// second). It bounds how long a delivered envelope's bytes stay in the
	// -wal file.
	CheckpointInterval time.Duration
	// RereadInterval is how often, with PostgreSQL, each WebSocket
	// connection re-reads its user's queue whether or not a notification
	// came (default 5 seconds): the bound on how late a message whose
	// notification was lost arrives. MaxDBConns bounds the connections
	// to PostgreSQL of one instance, besides its listener (default 16).
	RereadInterval time.Duration
	MaxDBConns     int
	// MaxDevices bounds the devices of one account (default and at most
	// api.MaxDevices). LinkRate and LinkBurst limit the link codes one
	// account asks for (default 1 per minute, burst 5), and, apart, its
	// identity resets.
	MaxDevices int
	LinkRate   float64
	LinkBurst  int
}

// setDefaults puts the default of each unset limit in place and checks the
// ones with a range.
func (cfg *Config) setDefaults() error {
	setDefault(&cfg.BundleRate, 1)
	setDefault(&cfg.BundleBurst, 20)
	setDefault(&cfg.PreKeyRate, 1.0/60)
	setDefault(&cfg.PreKeyBurst, 10)
	setDefault(&cfg.IPv4Prefix, 32)
	setDefault(&cfg.IPv6Prefix, 64)
	setDefault(&cfg.RegisterRate, 1.0/60)
	setDefault(&cfg.RegisterBurst, 10)
	setDefault(&cfg.MaxPreKeys, api.MaxPreKeys)
	setDefault(&cfg.MaxQueue, 1000)
	setDefault(&cfg.MaxQueueBytes, 16<<20)
	setDefault(&cfg.SenderShare, 0.25)
	setDefault(&cfg.MaxTotalQueueBytes, 1<<30)
	setDefault(&cfg.SendRate, 10)
	setDefault(&cfg.SendBurst, 200)
	setDefault(&cfg.LowPreKeys, 10)
	setDefault(&cfg.PingInterval, 30*time.Second)
	setDefault(&cfg.ReadTimeout, 30*time.Second)
	setDefault(&cfg.WriteTimeout, 30*time.Second)
	setDefault(&cfg.IdleTimeout, 2*time.Minute)
	setDefault(&cfg.MaxConnsPerIP, 32)
	setDefault(&cfg.MaxConnsPerUser, 8)
	setDefault(&cfg.CheckpointInterval, time.Second)
	setDefault(&cfg.RereadInterval, 5*time.Second)
	setDefault(&cfg.MaxDBConns, 16)
	setDefault(&cfg.MaxDevices, api.MaxDevices)
	setDefault(&cfg.LinkRate, 1.0/60)
	setDefault(&cfg.LinkBurst, 5)
	if cfg.MaxDevices > api.MaxDevices {
		return fmt.Errorf("server: MaxDevices above %d", api.MaxDevices)
	}
	if cfg.SenderShare < 0 || cfg.SenderShare > 1 {
		return errors.New("server: SenderShare is not between 0 and 1")
	}
	if cfg.IPv4Prefix < 0 || cfg.IPv4Prefix > 32 || cfg.IPv6Prefix < 0 || cfg.IPv6Prefix > 128 {
		return errors.New("server: IPv4Prefix or IPv6Prefix out of range")
	}
	for _, c := range cfg.InviteCodes {
		if len(c) < minInviteLen {
			return fmt.Errorf("server: an invite code is shorter than %d bytes", minInviteLen)
		}
	}
	return nil
}

// setDefault sets *v to def if it is the zero value.
func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Server is the key server and relay. Its methods are safe for concurrent
// use.
type Server struct {
	cfg      Config
	st       storage
	log      *slog.Logger
	now      func() time.Time
	bundles  rateLimiter
	prekeys  rateLimiter
	registry rateLimiter
	sends    rateLimiter
	lists    rateLimiter
	links    rateLimiter
	resets   rateLimiter
	ipConns  *counter
	busy     *counter // requests in progress per user
	hub      hub
	mux      *http.ServeMux

	// ctx ends every WebSocket connection when the server closes; wg waits
	// for them. listenDone closes when the listener for other instances'
	// events has ended. draining is set once shutdown has begun.
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	listenDone chan struct{}
	draining   atomic.Bool
	// reread is how often a connection re-reads its queue unprompted;
	// zero with SQLite, where every enqueue wakes the connection itself.
	reread time.Duration
}

// New opens the database and returns a Server ready to serve.
func New(cfg Config) (*Server, error) {
	if cfg.DBPath == "" {
		return nil, errors.New("server: no database path")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:        cfg,
		log:        cfg.Logger,
		now:        time.Now,
		ctx:        ctx,
		cancel:     cancel,
		listenDone: make(chan struct{}),
	}
	// s.cfg, not cfg: the storage keeps a pointer to it.
	var err error
	if isPostgres(cfg.DBPath) {
		s.st, err = openPostgres(ctx, &s.cfg, cfg.DBPath, s.now)
		s.reread = cfg.RereadInterval
	} else {
		s.st, err = openSQLite(ctx, &s.cfg, s.now)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	s.bundles = s.st.limiter("bundles", cfg.BundleRate, cfg.BundleBurst)
	s.registry = s.st.limiter("register", cfg.RegisterRate, cfg.RegisterBurst)
	s.sends = s.st.limiter("sends", cfg.SendRate, cfg.SendBurst)
	s.prekeys = s.st.limiter("prekeys", cfg.PreKeyRate, cfg.PreKeyBurst)
	s.lists = s.st.limiter("devices", 2*cfg.BundleRate, 2*cfg.BundleBurst)
	s.links = s.st.limiter("links", cfg.LinkRate, cfg.LinkBurst)
	s.resets = s.st.limiter("resets", cfg.LinkRate, cfg.LinkBurst)
	s.ipConns = newCounter(cfg.MaxConnsPerIP)
	s.busy = newCounter(cfg.MaxConnsPerUser)
	if err := s.st.loadInvites(ctx, cfg.InviteCodes); err != nil {
		cancel()
		s.st.close()
		return nil, err
	}
	s.hub.conns = make(map[string]*wsConn)
	s.routes()
	// Serve only once other instances' events arrive: a message queued for
	// a user who connects here before then would wait for the re-read.
	listening := make(chan struct{})
	ready := sync.OnceFunc(func() { close(listening) })
	go func() {
		defer close(s.listenDone)
		s.st.listen(ctx, func(ev event) {
			if ev.kind == evResync {
				ready()
			}
			s.onEvent(ev)
		})
	}()
	select {
	case <-listening:
	case <-time.After(listenWait):
		s.log.Warn("not yet listening for other instances; messages from them wait for the re-read until then")
	}
	return s, nil
}

// listenWait is how long New waits for the listener for other instances'
// events to be up.
const listenWait = 10 * time.Second

// Handler returns the server's HTTP handler: the API and the relay.
func (s *Server) Handler() http.Handler { return s.logRequests(s.canonicalPaths(s.mux)) }

// Close ends every WebSocket connection and closes the database. Stop the
// HTTP server first.
func (s *Server) Close() error {
	s.draining.Store(true)
	s.hub.closeAll()
	s.cancel()
	s.wg.Wait()
	<-s.listenDone
	return s.st.close()
}

// Serve serves on ln until ctx is done, then shuts down gracefully: /healthz
// answers 503 from then on, so that a load balancer stops sending new
// clients; the listener closes, requests in progress get up to 5 seconds
// to finish, and then every WebSocket connection is closed with status
// 1001 (going away), which the client takes as the hint to reconnect at
// once, through the load balancer to another instance. Nothing queued is
// lost: envelopes are committed before their sender hears so, and an ack
// that did not make it means a redelivery with the same sequence number,
// which the client drops. With certFile and keyFile set it serves TLS
// (HTTPS and WSS).
//
// Serve applies the timeouts of Config and the cap on connections per
// address, which need the connection: a Handler mounted on another
// http.Server gets neither, only the limits per account.
func (s *Server) Serve(ctx context.Context, ln net.Listener, certFile, keyFile string) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: min(10*time.Second, s.cfg.ReadTimeout),
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	// The cap comes before TLS, so that handshakes count too.
	ln = &capListener{Listener: ln, s: s}
	if certFile != "" || keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return err
		}
		hs.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, hs.TLSConfig)
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.draining.Store(true)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Shutdown does not wait for hijacked (WebSocket) connections; Close
	// ends those.
	err := hs.Shutdown(sctx)
	<-errc
	s.hub.closeAll()
	return err
}

// maxHeaderBytes bounds a request's headers: a bearer token and a
// WebSocket handshake need a few hundred bytes, not net/http's default
// megabyte.
const maxHeaderBytes = 16 << 10

func newToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
