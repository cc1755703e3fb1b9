GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
BIN     := bin/workerpool
LDFLAGS := -s -w -X main.version=$(VERSION)

# Platforms the code must build and vet for.
PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 freebsd/amd64 freebsd/arm64 windows/amd64 windows/arm64

# Linters, run through go run at pinned versions.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
DEADCODE    := golang.org/x/tools/cmd/deadcode@v0.52.0

.PHONY: build install uninstall dist demo check test test-php fuzz vet cross lint bench clean

# build makes a static binary: without cgo, a process limit reached
# (ulimit -u) cannot abort the runtime in pthread_create.
build:
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) .

# install builds as build does and installs the binary in
# $(DESTDIR)$(PREFIX)/bin, e.g. make install PREFIX=$$HOME/.local.
PREFIX ?= /usr/local
install: build
	install -d '$(DESTDIR)$(PREFIX)/bin'
	install -m 0755 $(BIN) '$(DESTDIR)$(PREFIX)/bin/workerpool'

uninstall:
	rm -f '$(DESTDIR)$(PREFIX)/bin/workerpool'

# dist writes a release archive per platform to dist/, the binary with
# README.md and LICENSE in a folder of the same name:
# workerpool-$(VERSION)-OS-ARCH.tar.gz, or .zip with workerpool.exe for
# windows; then dist/SHA256SUMS. internal/tools/pack writes them, so that
# it takes no tar, zip or sha256sum, and the same tree and Go give the same
# bytes: entries are dated SOURCE_DATE_EPOCH, by default the last commit's.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)
dist:
	rm -rf dist
	@for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; name=workerpool-$(VERSION)-$$os-$$arch; \
		exe=workerpool; ext=tar.gz; \
		if [ $$os = windows ]; then exe=workerpool.exe; ext=zip; fi; \
		echo "dist/$$name.$$ext"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/$$name/$$exe . || exit 1; \
		SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GO) run ./internal/tools/pack dist/$$name.$$ext dist/$$name/$$exe README.md LICENSE || exit 1; \
		rm -rf dist/$$name; \
	done
	$(GO) run ./internal/tools/pack -sums dist/SHA256SUMS dist/*.tar.gz dist/*.zip

# demo runs the bundled example tasks twice: through the PHP client, which
# prints each result as its task finishes, then in classic mode, one JSON
# array, shaped by jq when it is installed. One task fails on purpose, so
# the pool's exit status 1 is expected.
demo: build
	@echo '== the PHP client (examples/client.php): each result as its task finishes'
	@WORKERPOOL=$(BIN) php examples/client.php
	@echo '== classic mode: workerpool -i tasks.json -t 4 --report report.html, one JSON array'
	@cd examples && { ../$(BIN) -i tasks.json -t 4 --report ../bin/report.html || test $$? -eq 1; } > ../bin/demo.json
	@if command -v jq >/dev/null; then \
		jq -r '.[] | "\(.identifier)\texit \(.exit_code)\t\(.duration_ms | round) ms\t\(.result_body | fromjson? | .greeting // "")"' bin/demo.json; \
	else cat bin/demo.json; fi
	@echo '== the report of that run (open it in a browser):'
	@echo '$(CURDIR)/bin/report.html'

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt needed"; exit 1; }

# cross builds and vets every package, tests included, for each platform.
cross:
	@for p in $(PLATFORMS); do \
		echo "GOOS=$${p%/*} GOARCH=$${p#*/} go vet -trimpath ./..."; \
		GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) vet -trimpath ./... || exit 1; \
	done

# lint reports unused and dead code, and what staticcheck finds. Code only
# tests reach is dead to the program, but for internal/sshtest,
# internal/slurmtest, internal/browsertest, internal/testlab and
# dispatch/dispatchtest, which are there for the tests.
lint:
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(DEADCODE) -test ./...
	@dead="$$($(GO) run $(DEADCODE) ./... | grep -v -e '^internal/sshtest/' -e '^internal/slurmtest/' -e '^internal/browsertest/' -e '^internal/testlab/' -e '^dispatch/dispatchtest/')"; test -z "$$dead" || { echo "$$dead"; exit 1; }

# check is the fast loop while working: vet, and the tests of every
# package but the end-to-end suite (internal/e2e), with the race detector.
check: vet
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /internal/e2e$$)

# test is the full gate: check's vet, the builds for every platform, the
# linters, every test (the end-to-end suite too), the fuzz targets and the
# PHP client's tests.
test: vet cross lint
	$(GO) test -race -count=1 -timeout 30m ./...
	$(MAKE) fuzz
	$(MAKE) test-php

# test-php runs the PHP client's tests (clients/php) against the binary
# just built (needs php-cli and phpunit).
test-php: build
	WORKERPOOL_BIN=$(CURDIR)/$(BIN) phpunit -c clients/php/phpunit.xml.dist

# fuzz runs the fuzz targets briefly: the decoder's, its reader of a
# task's members, and the encoder's, which checks that all it writes is
# valid UTF-8 JSON. The budgets are
# counts of runs, not durations: up to Go 1.26 a duration can end while a
# worker is busy, and the run fails with "context deadline exceeded"
# though nothing was found (go.dev/issue/75804).
fuzz:
	$(GO) test ./decode -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime 30000x
	$(GO) test ./decode -run '^$$' -fuzz '^FuzzMembers$$' -fuzztime 30000x
	$(GO) test ./encode -run '^$$' -fuzz '^FuzzEncode$$' -fuzztime 20000x

clean:
	rm -rf bin dist

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

# bench-wide measures 10,000 tasks at once (-t 10000, sleep 2) against a C
# peer that only spawns them, xargs -P and GNU parallel -j, and replaces
# the "## Wide pools" section of BENCHMARKS.md (bench/wide.sh).
.PHONY: bench-wide
bench-wide:
	BENCH_WIDE_OUT=BENCHMARKS.md bash bench/wide.sh

# bench-pipe measures --pipe and --pipepart on a generated input of 1 GiB
# against GNU parallel's, at -j 8: throughput and peak RSS, which must stay
# under 100 MB; it replaces the "## --pipe" section of BENCHMARKS.md
# (bench/pipe.sh).
.PHONY: bench-pipe
bench-pipe:
	BENCH_PIPE_OUT=BENCHMARKS.md bash bench/pipe.sh

# bench-slurm measures --slurm in an allocation of a Slurm cluster on
# 127.0.0.1 (internal/slurmtest; needs root and the Slurm daemons) against
# a local run and GNU parallel with one srun per task, and replaces the
# "## On Slurm" section of BENCHMARKS.md (bench/slurm.sh, run by the Go
# test TestBenchSlurm, which starts the cluster).
.PHONY: bench-slurm
bench-slurm:
	BENCH_SLURM_OUT=BENCHMARKS.md WORKERPOOL_BENCH_SLURM=1 $(GO) test -v -count=1 -timeout 90m -run '^TestBenchSlurm$$' ./internal/e2e

# report-png draws docs/report.png, the README's picture of a report: the
# report of 2,000 tasks over two throwaway sshd hosts, one killed mid-run,
# rendered by headless Chromium (TestReportHostLost).
.PHONY: report-png
report-png:
	WORKERPOOL_REPORT_PNG=$(CURDIR)/docs/report.png $(GO) test -count=1 -run '^TestReportHostLost$$' ./internal/e2e

# bench-go runs the Go benchmarks often enough for benchstat:
# make bench-go > new.txt; benchstat old.txt new.txt
.PHONY: bench-go
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -count $(or $(BENCH_COUNT),6) ./decode ./encode ./dispatch ./pipeline
