GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
BIN     := bin/workerpool
LDFLAGS := -s -w -X main.version=$(VERSION)

# Platforms the code must build and vet for.
PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 freebsd/amd64 freebsd/arm64 windows/amd64 windows/arm64

# Linters, run through go run at pinned versions.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
DEADCODE    := golang.org/x/tools/cmd/deadcode@v0.52.0

.PHONY: build demo test fuzz vet cross lint bench clean

# build makes a static binary: without cgo, a process limit reached
# (ulimit -u) cannot abort the runtime in pthread_create.
build:
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) .

# demo runs the bundled PHP example in classic mode. One of its tasks fails
# on purpose, so the pool's exit status 1 is expected.
demo: build
	cd examples && { ../$(BIN) -i tasks.json -t 4 || test $$? -eq 1; }

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt needed"; exit 1; }

# cross builds and vets every package, tests included, for each platform.
cross:
	@for p in $(PLATFORMS); do \
		echo "GOOS=$${p%/*} GOARCH=$${p#*/} go vet ./..."; \
		GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) vet ./... || exit 1; \
	done

# lint reports unused and dead code, and what staticcheck finds. Code only
# tests reach is dead to the program, but for internal/sshtest, which is
# there for the tests.
lint:
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(DEADCODE) -test ./...
	@dead="$$($(GO) run $(DEADCODE) ./... | grep -v '^internal/sshtest/')"; test -z "$$dead" || { echo "$$dead"; exit 1; }

test: vet cross lint
	$(GO) test -race -count=1 ./...
	$(MAKE) fuzz

# fuzz runs the fuzz targets briefly: the decoder's, and the encoder's,
# which checks that all it writes is valid UTF-8 JSON.
fuzz:
	$(GO) test ./decode -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime 10s
	$(GO) test ./encode -run '^$$' -fuzz '^FuzzEncode$$' -fuzztime 10s

clean:
	rm -rf bin

# bench measures throughput, memory and large output against a spawn
# baseline, xargs and GNU parallel, and writes BENCHMARKS.md (bench/run.sh).
bench:
	bash bench/run.sh

# bench-remote measures the many-machines mode (-S over ssh to a throwaway
# sshd on this machine) against a local run and GNU parallel -S, and
# replaces the "## Many machines" section of BENCHMARKS.md (bench/remote.sh).
.PHONY: bench-remote
bench-remote:
	BENCH_REMOTE_OUT=BENCHMARKS.md bash bench/remote.sh

# bench-go runs the Go benchmarks often enough for benchstat:
# make bench-go > new.txt; benchstat old.txt new.txt
.PHONY: bench-go
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -count $(or $(BENCH_COUNT),6) ./decode ./encode
