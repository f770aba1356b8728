# glint build. Every artifact is reproducible: the same commit gives the same
# bytes in any directory (see README, "Check a published hash").
SHELL := /bin/bash
export CGO_ENABLED := 0
export GOFLAGS := -trimpath -buildvcs=false
LDFLAGS := -s -w -buildid=
OUT := out

.PHONY: all build lint test unit fuzz-short e2e payload rom demo bench clean deps

all: build

build: $(OUT)/glint

$(OUT)/glint: $(shell find cmd internal -name '*.go' -not -name '*_test.go') go.mod go.sum
	@mkdir -p $(OUT)
	go build -ldflags='$(LDFLAGS)' -o $@ ./cmd/glint

deps:
	bash scripts/install-deps.sh

lint:
	@fmt=$$(gofmt -l cmd internal); if [ -n "$$fmt" ]; then echo "gofmt needed:"; echo "$$fmt"; exit 1; fi
	go vet ./...
	go run honnef.co/go/tools/cmd/staticcheck@v0.7.0 ./...

# unit + real-part tests (swtpm, gpg, cryptsetup, flashrom, cbfstool)
unit:
	go test -count=1 ./...

# every fuzz target for a few seconds
fuzz-short:
	bash scripts/fuzz-short.sh

test: lint unit fuzz-short e2e

clean:
	rm -rf $(OUT)
