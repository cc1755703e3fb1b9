GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
BIN     := bin/workerpool
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: build demo test fuzz vet bench clean

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) .

# demo runs the bundled PHP example in classic mode.
demo: build
	cd examples && ../$(BIN) -i tasks.json -t 4

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt needed"; exit 1; }

test: vet
	$(GO) test -race -count=1 ./...
	$(MAKE) fuzz

# fuzz runs the decoder's fuzz target briefly.
fuzz:
	$(GO) test ./decode -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime 10s

clean:
	rm -rf bin
