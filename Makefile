# fanline: `make test` is the whole suite CI runs.
GO ?= go
# Core packages run under the race detector; e2e runs them too, over real sockets.
# e2e/large holds thousands of connections in one process, past the race detector's
# limit of 8,128 goroutines: it runs without it.
RACE_PKGS = ./internal/... ./timeline/... ./groupstream/... ./coldstore/... ./media/... ./dispatch/... ./cs-routing/... ./gateway/... ./client/... ./server/... ./web/... ./e2e

.PHONY: test lint build fuzz bench-direct soak

build:
	$(GO) build -o bin/fanline ./cmd/fanline

STATICCHECK = honnef.co/go/tools/cmd/staticcheck@v0.8.2

# deployments/validate is a module of its own (the artifacts' parsers stay out of the
# product's go.mod): linted and tested from its directory.
VALIDATE = deployments/validate

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) mod tidy -diff
	cd $(VALIDATE) && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./... && $(GO) mod tidy -diff

test: lint
	$(GO) test -race -count=1 -timeout 20m $(RACE_PKGS)
	$(GO) test -count=1 -timeout 10m ./e2e/large/ ./cmd/...
	cd $(VALIDATE) && $(GO) test -count=1 -timeout 10m ./...

# Longer fuzzing sessions (not part of `make test`, where the seed corpora under
# testdata/fuzz/ run as ordinary tests). go test -fuzz takes one target per package
# invocation, so every Fuzz function of the tree runs in turn, FUZZTIME each; the
# targets are pkg:name pairs, found in the *_test.go files unless given, e.g.
# make fuzz FUZZ_TARGETS=./cs-routing:FuzzRules FUZZTIME=5m
FUZZTIME ?= 60s
FUZZ_TARGETS ?= $(shell grep -rHo --include='*_test.go' --exclude-dir=.git --exclude-dir=testdata \
	'^func Fuzz[A-Za-z0-9_]*' . | sed 's|/[^/]*:func |:|' | sort)

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz: $$name in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run=NONE -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) "$$pkg/"; \
	done

# The fault-injection suite of e2e/faults_test.go for longer than in `make test`:
# FANLINE_SOAK is the total time of its eight runs (an eighth each), every run
# injecting its faults over and over, e.g. make soak FANLINE_SOAK=30m
FANLINE_SOAK ?= 10m

soak:
	FANLINE_SOAK=$(FANLINE_SOAK) $(GO) test -race -count=1 -timeout 3h -run '^TestFaults$$' -v ./e2e/
