// Command chatserver runs the chat example's key server and relay (package
// server): it distributes prekey bundles and relays end-to-end encrypted
// envelopes it cannot read.
//
// Usage:
//
//	chatserver [-addr host:port] [-db file] [-tls-cert file -tls-key file] [-log-level debug|info|warn|error]
//
// Each flag defaults to an environment variable: CHAT_ADDR (default
// 127.0.0.1:8080), CHAT_DB (default chatserver.db), CHAT_TLS_CERT,
// CHAT_TLS_KEY and CHAT_LOG_LEVEL (default info). Logs are JSON lines on
// standard error.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
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
	dbPath := fs.String("db", env("CHAT_DB", "chatserver.db"), "SQLite database `file` (CHAT_DB)")
	certFile := fs.String("tls-cert", env("CHAT_TLS_CERT", ""), "TLS certificate `file` (CHAT_TLS_CERT); serve plain HTTP if empty")
	keyFile := fs.String("tls-key", env("CHAT_TLS_KEY", ""), "TLS private key `file` (CHAT_TLS_KEY)")
	level := fs.String("log-level", env("CHAT_LOG_LEVEL", "info"), "log `level`: debug, info, warn or error (CHAT_LOG_LEVEL)")
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
	logger := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: lvl}))

	srv, err := server.New(server.Config{DBPath: *dbPath, Logger: logger})
	if err != nil {
		return err
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
	logger.Info("listening", "url", scheme+"://"+ln.Addr().String(), "db", *dbPath)
	err = srv.Serve(ctx, ln, *certFile, *keyFile)
	if cerr := srv.Close(); err == nil {
		err = cerr
	}
	logger.Info("stopped")
	return err
}
