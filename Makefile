# tlsmail — build and test.
#
#   make test    install the Debian test peers if missing (root), then go vet,
#                staticcheck and go test -race -count=1 -timeout 45m ./...
#                (.ci/run runs the same steps)
#   make stress  the unit-test packages (all but ./test/e2e; PKGS=... for some)
#                with go test -race -count=5 -cpu 1,2 while busy loops keep
#                every core busy: run it when touching concurrency or timing
#                (scripts/stress.sh). CI stays `make test`.
#   make build   build ./tlsmail
#   make deb     the Debian package in ./dist (nfpm as a Go tool)
#   make install build and install tlsmail into $(PREFIX)/bin (default
#                /usr/local; PREFIX=$$HOME/.local without root) and its man
#                pages into $(PREFIX)/share/man
#   make fuzz    run each fuzz target for FUZZTIME (default 30s)
#   make fuzz-smtpwire  only the SMTP codec's targets (DATA, lines, BDAT),
#                each for FUZZTIME (their seed corpora run in every go test)
#   make bench   tlsmail vs a private Postfix (root) vs the no-queue sink: the
#                issue-13 table (RUNS=3 MSGS=2000; quick: RUNS=1 MSGS=300),
#                see bench/compare.sh
#   make bench-cpu   server CPU µs per message, tlsmail vs the sink (bench/cpu.sh):
#                the figure a loaded machine does not distort
#   make bench-records  the TLS record store on vs off (issue 16): two servers,
#                alternating runs; msgs/s and server CPU µs per message with the
#                on/off ratios (bench/records.sh; RUNS=5 MSGS=2000)
#   make bench-send  client PIPELINING vs lock-step at 1 ms RTT, tlsmail send vs msmtp
#   make bench-outbound  outbound relaying vs Postfix's smtp client (root)
#   make bench-ssl   tlsmail sslserver vs stunnel4: conn/s, bulk MB/s, idle memory
#   make bench-dkim  DKIM signing on vs off: two servers relaying authenticated
#                submission to bench/sink, alternating runs (bench/dkim.sh;
#                KEY=rsa for RSA-2048, RUNS=3 MSGS=2000)

GO          ?= go
BIN         := $(CURDIR)/.bin
STATICCHECK := $(BIN)/staticcheck
STATICCHECK_VERSION := v0.8.2
FUZZTIME    ?= 30s

.PHONY: test stress build install deb peers lint vet staticcheck fuzz fuzz-smtpwire bench bench-cpu bench-records bench-send bench-outbound bench-ssl bench-dkim

# -count=1: the e2e tests run a tlsmail binary they build themselves, which
# go test's cache does not see, so a cached result could hide a change.
test: peers vet staticcheck
	$(GO) test -race -count=1 -timeout 45m ./...

stress:
	GO=$(GO) bash scripts/stress.sh

build:
	$(GO) build -o tlsmail ./cmd/tlsmail

PREFIX ?= /usr/local
# -buildvcs=auto: stamp the git commit (`tlsmail version`) even where
# GOFLAGS turns it off.
install:
	mkdir -p $(DESTDIR)$(PREFIX)/bin
	$(GO) build -buildvcs=auto -trimpath -o $(DESTDIR)$(PREFIX)/bin/tlsmail ./cmd/tlsmail
	$(DESTDIR)$(PREFIX)/bin/tlsmail man --out $(DESTDIR)$(PREFIX)/share/man
	@case ":$$PATH:" in *":$(PREFIX)/bin:"*) ;; *) echo "note: $(PREFIX)/bin is not on your PATH";; esac

peers:
	bash scripts/install-peers.sh

vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi

$(STATICCHECK):
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

staticcheck: $(STATICCHECK)
	$(STATICCHECK) ./...

fuzz:
	bash scripts/fuzz.sh $(FUZZTIME)

fuzz-smtpwire:
	for f in FuzzReadData FuzzReadLine FuzzBDAT; do \
		$(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) ./internal/smtpwire || exit 1; done

# deb: the Debian package (nfpm, pinned as a Go tool in packaging/tools)
# in ./dist; see packaging/.
deb:
	bash scripts/build-deb.sh dist

bench:
	bash bench/compare.sh

bench-cpu:
	bash bench/cpu.sh

bench-records:
	bash bench/records.sh

bench-send:
	go run ./bench/sendbench

bench-outbound:
	bash bench/outbound.sh

bench-ssl:
	bash bench/sslserver.sh

bench-dkim:
	bash bench/dkim.sh
