// Package ucspi is tlsmail's UCSPI-SSL layer: sslserver and sslclient as
// drop-ins for fehcom's ucspi-ssl (../shared/ucspi-ssl.md is the
// behavioural spec; U95 is the older line, UNEW the newer one).
//
// Where the two lines, or fehcom's documentation and code, disagree, this
// package chooses as follows:
//
//   - Defaults are the newer line's: -e on (TCP* variables too), UNEW's
//     -y IP-only rules pass and MAXCONIP, and its order: -y, PTR, ident,
//     -x, all before the program starts.
//   - sslclient exits 110 when the server fails verification (UNEW), 111
//     when it cannot connect or speak TLS; U95 used 111 for both.
//   - -I takes its argument (both lines forgot the colon in getopt).
//   - SSLCTLFD is exported in -n mode only; in immediate mode SSLREADFD
//     and SSLWRITEFD are 0 and 1, where the program's plaintext is.
//     fehcom exports all three in immediate mode too, naming closed
//     descriptors for reading and writing and a control socket that takes
//     no second byte; leaving SSLCTLFD out keeps a program from offering
//     STARTTLS inside TLS.
//   - One process serves all connections and runs TLS itself; only the
//     program is exec'd. So the process drops to -u/-g after binding and
//     reading its keys (fehcom's listening process keeps root and each
//     per-connection TLS process drops); SSL_UID/SSL_GID apply when -u/-g
//     are not given; SSL_CHROOT cannot apply (the programs live outside it).
//     The rules cdbs (-x, -y) and any CERTFILE/KEYFILE a rule names are
//     read per connection by that user, where fehcom reads them as root,
//     so they must be readable by it; a rules cdb that is not is refused
//     at start (exit 111, naming the file).
//   - SIGTERM closes the listening socket at once (a restarted sslserver
//     can bind) and lets running connections finish for up to 10 s
//     (ShutdownGrace); then their programs get SIGTERM and sslserver exits
//     0. fehcom's exits at once and each connection's process goes on
//     alone, which one process cannot do. A second SIGTERM ends it at once.
//   - An accept error that passes (a full descriptor table, no buffers)
//     is logged and waited out with a growing pause; fehcom's loop
//     ignores it and retries at once.
//   - -c counts running programs; a program that outlives its peer gets
//     SIGTERM after -w seconds with no data either way, as from fehcom's
//     TLS handler, and stops counting then. One that closes its output
//     but keeps running gets -w seconds to exit, then SIGTERM (fehcom's
//     handler sends it at once).
//   - Extensions fehcom documents but never implemented: a rule may set
//     MAXCONIP (lower per-address limit), CERTFILE/KEYFILE/CERTCHAINFILE
//     (the certificate for that client) and CCAVERIFY (require a verified
//     client certificate); sslclient -y is client-side UCSPI-TLS with the
//     same control-socket contract as sslserver -n (the GIF lineage's).
//   - CRLFILE (a CRL file or directory, tlsconf's client_crl loader): a
//     client certificate that -m/-z or CCAVERIFY verifies is refused in
//     the handshake when revoked, when its issuer has no CRL there, or
//     when that CRL expired (OpenSSL's crl_check); a CRL that does not
//     load or is not signed by a client CA is an error at start.
//   - VERIFYDEPTH and -V count intermediate CAs as OpenSSL's verify depth
//     does (default 1); DHFILE is accepted and ignored: Go's TLS has no
//     finite-field DHE. The -v start-up lines name the files as fehcom's
//     do (cafile, ccafile, cadir, chainfile, cert, key); "param" gives
//     DHFILE and 0 for the temporary RSA length, which Go does not use.
//   - -1 prints the port alone (U95), not UNEW's "IP : PORT [LIMIT]".
//     -b n sets the listen backlog; without it the backlog is the
//     kernel's somaxconn (as Go listens), not fehcom's 20: one process
//     accepts as fast as the kernel queues, and a short queue only drops
//     SYNs in bursts. -O (the default) drops the IPv4 options a
//     connection inherits from the client's SYN, as tcpserver does; -o
//     keeps them.
//   - sslclient -T x+y: x per address on a first pass, y per timed-out
//     address on a second, x+y for a single address and for TLS.
//   - SSL_KEX_GROUP is added to the TLS environment (the key-exchange
//     group, e.g. X25519MLKEM768).
package ucspi
