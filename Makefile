# ragparity: see README.md. `make services` starts what the tests need.
GO      ?= go
BIN     ?= bin/ragparity
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: build test test-race bench lint fmt services services-stop demo clean fuzz

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/ragparity

# The README's test command: every package, against the real services.
test:
	bash scripts/test.sh

test-race:
	bash scripts/test.sh -race

# Fuzz each target for FUZZTIME (seeds also run in `make test`).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./config/
	$(GO) test -run '^$$' -fuzz FuzzCanonicalPayload -fuzztime $(FUZZTIME) ./parity/
	$(GO) test -run '^$$' -fuzz FuzzOpenURL -fuzztime $(FUZZTIME) ./adapters/pgvector/
	$(GO) test -run '^$$' -fuzz FuzzParseBaseline -fuzztime $(FUZZTIME) ./gate/

# Benchmarks print their figures (see README "Benchmarks").
bench:
	bash scripts/bench.sh

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1)
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

services:
	bash scripts/services.sh

services-stop:
	bash scripts/services.sh stop

demo:
	$(GO) run ./cmd/ragparity demo

clean:
	rm -rf bin test.log
