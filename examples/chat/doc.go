// Package chat is ratchetkit's end-to-end encrypted chat example: a key
// server and relay that can never read a message, and a terminal client.
//
//   - Package api is the protocol between them: an HTTP JSON API for
//     accounts and prekey bundles, and JSON frames over a WebSocket for
//     envelopes.
//   - Package server distributes prekey bundles (one one-time prekey per
//     fetch, deleted as it is handed out) for each device of each user,
//     admits a user's further devices with link codes from an existing
//     one, and relays envelopes to single devices, queueing
//     them for recipients who are offline until they acknowledge them:
//     in SQLite for one instance, or in PostgreSQL, which several
//     instances share (its package documentation says what each backend
//     promises). It assumes hostile users: its package documentation lists the
//     limits on prekey handouts, registration, queue space, send rate and
//     connections, what each protects, and what a stolen database shows.
//     Command chatserver runs it.
//   - Package client keeps a device's keys, sessions and sender keys in a
//     ratchetkit SQLite store and turns text into envelopes and back with
//     package session: a message goes to every device of its recipient,
//     with a copy to the sender's other devices (session's fan-out), and
//     a group message is encrypted once with Sender Keys (package
//     senderkey) for every member device, the sender keys travelling over
//     the pairwise sessions and rotating when a member is removed. The
//     server stores no group membership: the sender names the devices of
//     each envelope. Command chat is a terminal front end for it.
//
// The end-to-end test in this directory runs the server on loopback and
// three clients through online and offline delivery, restarts, prekey
// exhaustion and an identity reset, then checks that the server's database
// and logs hold no plaintext. The groups end-to-end test (TestEndToEndGroups)
// runs three users, one with two devices, and a group of all of them,
// online and offline and across a restart; removes a member, hands the
// ciphertexts sent afterwards to the removed member's client (as a
// hostile server could) and checks that they fail to decrypt for want of
// the senders' new chains; adds a device late, which gets the messages
// sent from then on and none from before; adds the removed member back,
// who reads what is sent from then on; and checks that every
// plaintext arrived exactly once on each device meant to show it and on
// no other, and that the server's files and logs hold none (on SQLite;
// on PostgreSQL, its tables). The server abuse test plays the attacks of a
// hostile user on the server (queue floods, prekey draining from many
// accounts, a copied identity key, slow clients, and what deleted
// envelopes leave on disk) while legitimate users talk, and checks each
// attack is refused or bounded and every legitimate message arrives once.
// The load and fault test (TestLoad) runs server instances as child
// processes on one PostgreSQL database, simulated clients spread over
// them, and kills one instance with SIGKILL mid-run: every message the
// server acknowledged must arrive once, in order, and no plaintext may
// cross the wire. With -load.full it compares 1 instance on SQLite, 1 on
// PostgreSQL and 3 on PostgreSQL, 200 clients each.
//
// Try it in three terminals:
//
//	go run ./examples/chat/cmd/chatserver
//	go run ./examples/chat/cmd/chat -name alice -to bob
//	go run ./examples/chat/cmd/chat -name bob -to alice
//
// A second device for alice: type /device add in her client, then
//
//	go run ./examples/chat/cmd/chat -name alice -dir /tmp/alice-2 -link CODE
//
// and a group: /group create team bob, then /g team hello.
package chat
