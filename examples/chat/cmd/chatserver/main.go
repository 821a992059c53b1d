// Command chatserver runs the chat example's key server and relay (package
// server): it distributes prekey bundles and relays end-to-end encrypted
// envelopes it cannot read.
//
// Usage:
//
//	chatserver [-addr host:port] [-db file] [-tls-cert file -tls-key file] [-log-level debug|info|warn|error]
//	           [-invite-codes file] [-ipv4-prefix bits] [-ipv6-prefix bits]
//	           [-max-queue-bytes n] [-max-total-queue-bytes n] [-max-conns-per-ip n] [-max-conns-per-user n]
//
// -db is a SQLite file (one instance) or a PostgreSQL URL such as
// postgres://chat:secret@127.0.0.1:5432/chat?sslmode=disable, which any
// number of instances may share (see the server package's "Backends");
// the schema is created or migrated on start.
//
// Each of the first five flags defaults to an environment variable:
// CHAT_ADDR (default 127.0.0.1:8080), CHAT_DB (default chatserver.db),
// CHAT_TLS_CERT, CHAT_TLS_KEY and CHAT_LOG_LEVEL (default info); so does
// -invite-codes, CHAT_INVITE_CODES. Logs are JSON lines on standard error.
//
// The other flags set the abuse limits of server.Config, whose
// documentation says what each protects; 0 means its default:
//
//   - -invite-codes: a file of invite codes, one per line (blank lines and
//     lines starting with # are skipped), each good for one registration;
//     without it anyone can register. Codes must be at least 16
//     characters; make them random (for example `openssl rand -hex 16`).
//     Edit the file and restart to add or revoke codes.
//   - -ipv4-prefix, -ipv6-prefix: how many leading bits of a client's
//     address make one client for the limits per address (32 and 64).
//     Behind a reverse proxy every client has the proxy's address; set
//     the per-address limits high there and enforce them at the proxy.
//   - -max-queue-bytes: bytes queued for one recipient (16 MiB); one
//     sender may fill a quarter of it.
//   - -max-total-queue-bytes: bytes queued for all users (1 GiB).
//   - -max-conns-per-ip: open connections per client address (32).
//   - -max-conns-per-user: requests and WebSocket connections in progress
//     per account (8).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/ratchetkit/ratchetkit/examples/chat/server"
)

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "chatserver:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends. Logs go to logOut as JSON lines.
func run(ctx context.Context, args []string, logOut io.Writer) error {
	fs := flag.NewFlagSet("chatserver", flag.ContinueOnError)
	fs.SetOutput(logOut)
	addr := fs.String("addr", env("CHAT_ADDR", "127.0.0.1:8080"), "listen `address` (CHAT_ADDR)")
	dbPath := fs.String("db", env("CHAT_DB", "chatserver.db"), "SQLite database `file`, or postgres://user:password@host/db (CHAT_DB)")
	certFile := fs.String("tls-cert", env("CHAT_TLS_CERT", ""), "TLS certificate `file` (CHAT_TLS_CERT); serve plain HTTP if empty")
	keyFile := fs.String("tls-key", env("CHAT_TLS_KEY", ""), "TLS private key `file` (CHAT_TLS_KEY)")
	level := fs.String("log-level", env("CHAT_LOG_LEVEL", "info"), "log `level`: debug, info, warn or error (CHAT_LOG_LEVEL)")
	invites := fs.String("invite-codes", env("CHAT_INVITE_CODES", ""), "`file` of invite codes, one per line; registration needs one (CHAT_INVITE_CODES)")
	var cfg server.Config
	fs.IntVar(&cfg.IPv4Prefix, "ipv4-prefix", 0, "leading `bits` of an IPv4 address that make one client (default 32)")
	fs.IntVar(&cfg.IPv6Prefix, "ipv6-prefix", 0, "leading `bits` of an IPv6 address that make one client (default 64)")
	fs.Int64Var(&cfg.MaxQueueBytes, "max-queue-bytes", 0, "`bytes` queued for one recipient (default 16 MiB)")
	fs.Int64Var(&cfg.MaxTotalQueueBytes, "max-total-queue-bytes", 0, "`bytes` queued for all users (default 1 GiB)")
	fs.IntVar(&cfg.MaxConnsPerIP, "max-conns-per-ip", 0, "open connections per client address (default 32)")
	fs.IntVar(&cfg.MaxConnsPerUser, "max-conns-per-user", 0, "requests and WebSocket connections in progress per account (default 8)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("log level: %w", err)
	}
	if (*certFile == "") != (*keyFile == "") {
		return fmt.Errorf("give both -tls-cert and -tls-key, or neither")
	}
	if *invites != "" {
		codes, err := readInviteCodes(*invites)
		if err != nil {
			return err
		}
		cfg.InviteCodes = codes
	}
	logger := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: lvl}))

	cfg.DBPath, cfg.Logger = *dbPath, logger
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	if len(cfg.InviteCodes) > 0 {
		logger.Info("registration needs an invite code", "codes", len(cfg.InviteCodes))
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		srv.Close()
		return err
	}
	scheme := "http"
	if *certFile != "" {
		scheme = "https"
	}
	logger.Info("listening", "url", scheme+"://"+ln.Addr().String(), "db", dbName(*dbPath))
	err = srv.Serve(ctx, ln, *certFile, *keyFile)
	if cerr := srv.Close(); err == nil {
		err = cerr
	}
	logger.Info("stopped")
	return err
}

// dbName is what the log says of the database: a SQLite file's path, or
// a PostgreSQL URL's host and database, never its password.
func dbName(dbPath string) string {
	u, err := url.Parse(dbPath)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return dbPath
	}
	return "postgres://" + u.Host + u.Path
}

// readInviteCodes reads a file of invite codes, one per line, skipping
// blank lines and lines that start with #. An empty list is an error: it
// would open registration while the operator meant to close it.
func readInviteCodes(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var codes []string
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			codes = append(codes, line)
		}
	}
	if len(codes) == 0 {
		return nil, fmt.Errorf("invite codes: %s lists none", path)
	}
	return codes, nil
}
