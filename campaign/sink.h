/*
 * sink.h - `edm sink`: a local capture SMTP server. It accepts every
 * message on loopback, saves each one byte for byte as a file in a Maildir
 * and prints one line per message, so a whole campaign can be run locally
 * and the results opened in a mail client. Nothing is ever relayed.
 *
 * Contract: sink_main() parses its own options (argv[0] is "sink"), runs
 * until SIGINT/SIGTERM or --count messages, and returns a sysexits(3)
 * code: 0 stopped normally; 64 usage; 69 cannot listen; 71 event loop or
 * signal setup failed; 73 the Maildir or port file cannot be created, or a
 * message could not be saved. The protocol is engine/smtp_server.c, the
 * socket engine/conn.c (conn_listen, conn_listener_close), the store
 * campaign/maildir.c.
 */
#ifndef EDM_SINK_H
#define EDM_SINK_H

/* The text of `edm sink --help`. */
extern const char sink_usage[];

/* The `edm sink` command. */
int sink_main(int argc, char **argv);

#endif
