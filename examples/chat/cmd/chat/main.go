// Command chat is the terminal client of the chat example: end-to-end
// encrypted messages through a chatserver that cannot read them.
//
// Usage:
//
//	chat -name alice [-to bob] [-server http://127.0.0.1:8080] [-dir ~/.ratchetkit-chat/alice] [-ca cert.pem] [-link CODE]
//
// The first run registers the name on the server, or, with -link, joins
// the name's account as another device (the code comes from /device add
// on a device the account has already; give this device its own -dir);
// later runs reuse the account, keys and sessions kept in the directory.
// Type a line to send it to the current peer or group; commands start
// with a slash:
//
//	/to NAME                    talk to NAME
//	/g GROUP [TEXT]             talk to GROUP from now on, or send it TEXT once
//	/group create GROUP [NAME…] make a group of you and the NAMEs
//	/group add GROUP NAME       add NAME to GROUP
//	/group remove GROUP NAME    remove NAME from GROUP (everyone's keys rotate)
//	/groups                     list your groups and their members
//	/device add                 a link code for a new device of yours
//	/devices [NAME]             the devices of NAME (default: you)
//	/safety [NAME]              show the safety number with NAME (default: current peer)
//	/approve NAME               accept NAME's new identity key after comparing numbers
//	/prekeys                    how many one-time prekeys the server holds for you
//	/reset                      replace your own identity key (asks to confirm)
//	/quit                       leave (also Ctrl-D)
//
// CHAT_SERVER sets the default server URL.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ratchetkit/ratchetkit/examples/chat/api"
	"github.com/ratchetkit/ratchetkit/examples/chat/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}
}

// run is the whole program, with its inputs and outputs as parameters so
// that a test can drive it.
func run(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(stdout)
	name := fs.String("name", "", "your user `name` (a-z, 0-9, - and _)")
	to := fs.String("to", "", "the `peer` to talk to first")
	serverURL := fs.String("server", envOr("CHAT_SERVER", "http://127.0.0.1:8080"), "chat server `URL` (CHAT_SERVER)")
	dir := fs.String("dir", "", "state `directory` (default ~/.ratchetkit-chat/NAME)")
	caFile := fs.String("ca", "", "PEM `file` of a CA certificate to trust for https")
	invite := fs.String("invite", envOr("CHAT_INVITE", ""), "invite `code` for registering on a server that asks for one (CHAT_INVITE)")
	link := fs.String("link", "", "link `code` from another device of the account (/device add): join it as a new device")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" {
		return errors.New("-name is required")
	}
	if *dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return err
		}
		*dir = filepath.Join(home, ".ratchetkit-chat", *name)
		if *link != "" {
			*dir += "-" + strconv.FormatInt(time.Now().Unix(), 10)
		}
	}
	hc := http.DefaultClient
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s: no certificate", *caFile)
		}
		hc = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}

	ui := &ui{out: stdout, peer: *to}
	c, err := client.Open(ctx, client.Config{
		Dir: *dir, Server: *serverURL, Name: *name, Invite: *invite, Link: *link, HTTPClient: hc, OnEvent: ui.event,
	})
	if err != nil {
		return err
	}
	defer c.Close()
	ui.c = c
	if err := c.Connect(ctx); err != nil {
		return err
	}
	ui.printf("You are %s, device %d. Type /help for commands.", c.Name(), c.Device())
	if ui.peer != "" {
		ui.printf("Talking to %s.", ui.peer)
	}

	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case line, ok := <-lines:
			if !ok {
				return nil
			}
			if quit := ui.command(ctx, line, lines); quit {
				return nil
			}
		}
	}
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// ui prints events and runs commands. Output from the client's goroutines
// and from commands goes through one lock, line by line.
type ui struct {
	c     *client.Client
	mu    sync.Mutex
	out   io.Writer
	peer  string // only the command loop touches peer and group
	group string // set: lines go to this group instead
}

func (u *ui) printf(format string, args ...any) {
	u.mu.Lock()
	defer u.mu.Unlock()
	fmt.Fprintf(u.out, format+"\n", args...)
}

func (u *ui) event(ev client.Event) {
	switch ev.Kind {
	case client.EventMessage:
		switch {
		case ev.Group != "":
			u.printf("[%s/%s] %s", ev.Group, ev.Peer, sanitize(ev.Text))
		case ev.To != "":
			u.printf("[you → %s, from device %d] %s", ev.To, ev.Device, sanitize(ev.Text))
		default:
			u.printf("[%s] %s", ev.Peer, sanitize(ev.Text))
		}
	case client.EventDeviceRejected:
		u.printf("!! The server lists a device %d of %s whose identity key is not %s's: nothing goes to it, and its messages are held. Someone who controls the server may have added it.", ev.Device, ev.Peer, ev.Peer)
	case client.EventGroup:
		u.printf("(%s: %s, by %s; members: %s.)", ev.Group, ev.Text, ev.Peer, strings.Join(ev.Members, ", "))
	case client.EventIdentityChanged:
		u.warnIdentity(ev.Peer, ev.Safety)
	case client.EventUndecryptable:
		u.printf("!! A message from %s could not be decrypted and was dropped (%v).", ev.Peer, ev.Err)
		u.printf("!! If %s reset their identity, the next message from them sets things right.", ev.Peer)
	case client.EventDropped:
		// A flood is reported at 1, 10, 100... drops, not line by line.
		if isPowerOfTen(ev.Count) {
			u.printf("!! %d message(s) from %s dropped unread: %v.", ev.Count, ev.Peer, ev.Err)
		}
	case client.EventHeldFull:
		u.printf("!! %d messages from %s are held back; the server keeps the rest until you /approve %s.", ev.Count, ev.Peer, ev.Peer)
	case client.EventSendFailed:
		u.printf("!! Sending to %s failed: %v", ev.Peer, ev.Err)
	case client.EventError:
		u.printf("!! %v", ev.Err)
	case client.EventSessionStarted:
		if ev.Peer == u.c.Name() {
			// The device list is the server's word: say so when it grows.
			u.printf("!! Your account has a device %d this one had not written to before. If you did not add it (/device add), someone who had your link code did: it reads what you send from now on.", ev.Device)
		}
		if !ev.OneTimePreKey {
			u.printf("(The server had no one-time prekey left for %s: this session starts from the signed prekey alone.)", ev.Peer)
		}
	case client.EventPreKeysUploaded:
		u.printf("(Uploaded one-time prekeys; the server now holds %d.)", ev.Count)
	case client.EventConnected:
		u.printf("(Connected.)")
	case client.EventDisconnected:
		if ev.Err != nil {
			u.printf("(Disconnected: %v. Reconnecting...)", ev.Err)
		}
	}
}

func (u *ui) warnIdentity(peer, safety string) {
	bar := strings.Repeat("!", 64)
	u.printf("%s\n"+
		"!! WARNING: the identity key of %s has CHANGED.\n"+
		"!! Either %s reset or reinstalled, or someone is intercepting\n"+
		"!! this conversation. Messages from %s are held back until you approve.\n"+
		"!! Compare this safety number with %s in person or on a call:\n"+
		"!!     %s\n"+
		"!! If it matches what %s sees, type: /approve %s\n"+
		"%s", bar, peer, peer, peer, peer, safety, peer, peer, bar)
}

// command runs one input line; it reports whether to quit.
func (u *ui) command(ctx context.Context, line string, lines <-chan string) bool {
	cmd, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
	arg = strings.TrimSpace(arg)
	if !strings.HasPrefix(cmd, "/") {
		u.send(ctx, line)
		return false
	}
	switch cmd {
	case "/quit", "/exit":
		return true
	case "/help":
		u.printf("/to NAME · /g GROUP [TEXT] · /group create|add|remove GROUP [NAME…] · /groups · /device add · /devices [NAME] · /safety [NAME] · /approve NAME · /prekeys · /reset · /quit")
	case "/to":
		if !api.ValidName(arg) {
			u.printf("Usage: /to NAME")
			return false
		}
		u.peer, u.group = arg, ""
		u.printf("Talking to %s.", arg)
	case "/g":
		group, text, _ := strings.Cut(arg, " ")
		if !api.ValidName(group) {
			u.printf("Usage: /g GROUP [TEXT]")
			return false
		}
		if text = strings.TrimSpace(text); text != "" {
			u.sendGroup(ctx, group, text)
			return false
		}
		u.group = group
		u.printf("Talking to group %s.", group)
	case "/group":
		u.groupCommand(ctx, strings.Fields(arg))
	case "/groups":
		gs, err := u.c.Groups(ctx)
		if err != nil {
			u.printf("!! %v", err)
			return false
		}
		for _, g := range gs {
			left := ""
			if !g.Member {
				left = " (you were removed)"
			}
			u.printf("%s: %s%s", g.Name, strings.Join(g.Members, ", "), left)
		}
		if len(gs) == 0 {
			u.printf("No groups yet: /group create GROUP NAME…")
		}
	case "/device":
		if arg != "add" {
			u.printf("Usage: /device add")
			return false
		}
		code, err := u.c.LinkCode(ctx)
		if err != nil {
			u.printf("!! %v", err)
			return false
		}
		u.printf("On the new device, within 10 minutes, run:\n    chat -name %s -link %s\nThe code works once and gives the new device your identity key. Anyone who has it can add a device that reads your messages from then on: keep it to yourself.", u.c.Name(), code)
	case "/devices":
		who := u.c.Name()
		if arg != "" {
			who = arg
		}
		ids, err := u.c.Devices(ctx, who)
		if err != nil {
			u.printf("!! %v", err)
			return false
		}
		u.printf("%s has devices %v.", who, ids)
	case "/safety":
		peer := u.peer
		if arg != "" {
			peer = arg
		}
		n, err := u.c.SafetyNumber(ctx, peer)
		if err != nil {
			u.printf("No safety number with %s yet: exchange a message first.", peer)
			return false
		}
		u.printf("Safety number with %s:\n    %s\nIt must match the one %s sees.", peer, n, peer)
	case "/approve":
		if err := u.c.ApproveIdentity(ctx, arg); err != nil {
			u.printf("!! %v", err)
			return false
		}
		u.printf("Approved the new identity key of %s.", arg)
	case "/prekeys":
		n, err := u.c.PreKeyCount(ctx)
		if err != nil {
			u.printf("!! %v", err)
			return false
		}
		u.printf("The server holds %d of your one-time prekeys.", n)
	case "/reset":
		u.printf("This replaces your identity key: every contact will see a warning, and messages sent to your old key are lost. Type yes to go on.")
		select {
		case answer := <-lines:
			if strings.TrimSpace(answer) != "yes" {
				u.printf("Not reset.")
				return false
			}
		case <-ctx.Done():
			return true
		}
		if err := u.c.ResetIdentity(ctx); err != nil {
			u.printf("!! %v", err)
			return false
		}
		u.printf("New identity key in place. Write to your contacts first, so they can approve it.")
	default:
		u.printf("Unknown command %s; try /help.", sanitize(cmd))
	}
	return false
}

// groupCommand runs /group create|add|remove.
func (u *ui) groupCommand(ctx context.Context, args []string) {
	if len(args) < 2 || (args[0] != "create" && len(args) != 3) {
		u.printf("Usage: /group create GROUP [NAME…] · /group add GROUP NAME · /group remove GROUP NAME")
		return
	}
	var err error
	switch args[0] {
	case "create":
		err = u.c.CreateGroup(ctx, args[1], args[2:]...)
	case "add":
		err = u.c.AddMember(ctx, args[1], args[2])
	case "remove":
		err = u.c.RemoveMember(ctx, args[1], args[2])
	default:
		u.printf("Unknown group command %s.", sanitize(args[0]))
		return
	}
	if err != nil {
		u.printf("!! %v", err)
		return
	}
	u.printf("Done: group %s %s.", args[1], args[0])
}

func (u *ui) sendGroup(ctx context.Context, group, text string) {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	u.sent(u.c.SendGroup(sctx, group, text))
}

// sent reports what went wrong with a send, if anything.
func (u *ui) sent(err error) {
	if ie, ok := errors.AsType[*client.IdentityChangedError](err); ok {
		u.warnIdentity(ie.Peer, ie.Safety)
		return
	}
	if errors.Is(err, context.DeadlineExceeded) {
		u.printf("(Queued; it goes out when the server is reachable.)")
		return
	}
	if err != nil {
		u.printf("!! %v", err)
	}
}

func (u *ui) send(ctx context.Context, text string) {
	if u.group != "" && strings.TrimSpace(text) != "" {
		u.sendGroup(ctx, u.group, text)
		return
	}
	if u.peer == "" {
		u.printf("Choose someone to talk to first: /to NAME")
		return
	}
	if strings.TrimSpace(text) == "" {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	u.sent(u.c.Send(sctx, u.peer, text))
}

func isPowerOfTen(n int) bool {
	for n >= 10 && n%10 == 0 {
		n /= 10
	}
	return n == 1
}

// sanitize makes a peer's text safe to print: control characters (which
// could move the cursor, clear the screen or set the window title) and
// invisible formatting characters (which could reorder what is shown) are
// shown as escapes, as is invalid UTF-8.
func sanitize(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\t' || strconv.IsPrint(r):
			b.WriteRune(r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}
