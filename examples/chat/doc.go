// Package chat is ratchetkit's end-to-end encrypted chat example: a key
// server and relay that can never read a message, and a terminal client.
//
//   - Package api is the protocol between them: an HTTP JSON API for
//     accounts and prekey bundles, and JSON frames over a WebSocket for
//     envelopes.
//   - Package server distributes prekey bundles (one one-time prekey per
//     fetch, deleted as it is handed out) and relays envelopes, queueing
//     them in SQLite for recipients who are offline until they acknowledge
//     them. It assumes hostile users: its package documentation lists the
//     limits on prekey handouts, registration, queue space, send rate and
//     connections, what each protects, and what a stolen database shows.
//     Command chatserver runs it.
//   - Package client keeps an account's keys and sessions in a ratchetkit
//     SQLite store and turns text into envelopes and back with package
//     session. Command chat is a terminal front end for it.
//
// The end-to-end test in this directory runs the server on loopback and
// three clients through online and offline delivery, restarts, prekey
// exhaustion and an identity reset, then checks that the server's database
// and logs hold no plaintext. The server abuse test plays the attacks of a
// hostile user on the server (queue floods, prekey draining from many
// accounts, a copied identity key, slow clients, and what deleted
// envelopes leave on disk) while legitimate users talk, and checks each
// attack is refused or bounded and every legitimate message arrives once.
//
// Try it in three terminals:
//
//	go run ./examples/chat/cmd/chatserver
//	go run ./examples/chat/cmd/chat -name alice -to bob
//	go run ./examples/chat/cmd/chat -name bob -to alice
package chat
