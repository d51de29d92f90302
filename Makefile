# fanline: `make test` is the whole suite CI runs.
GO ?= go
# Core packages run under the race detector; e2e runs them too, over real sockets.
# e2e/large holds thousands of connections in one process, past the race detector's
# limit of 8,128 goroutines: it runs without it.
RACE_PKGS = ./internal/... ./timeline/... ./groupstream/... ./dispatch/... ./cs-routing/... ./gateway/... ./client/... ./server/... ./e2e

.PHONY: test lint build fuzz bench-direct

build:
	$(GO) build -o bin/fanline ./cmd/fanline

STATICCHECK = honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) mod tidy -diff

test: lint
	$(GO) test -race -count=1 -timeout 20m $(RACE_PKGS)
	$(GO) test -count=1 -timeout 10m ./e2e/large/ ./cmd/...

# A longer fuzzing session of the WebSocket frame decoder (not part of `make test`;
# the seed corpus runs there).
fuzz:
	$(GO) test -run=NONE -fuzz=FuzzDecodeFrame -fuzztime=60s ./internal/wire/
