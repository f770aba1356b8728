# glint build. Every artifact is reproducible: the same commit gives the same
# bytes in any directory (see README, "Check a published hash").
SHELL := /bin/bash
export CGO_ENABLED := 0
export GOFLAGS := -trimpath -buildvcs=false
# The build date glint compares the clock with is the commit date: reproducible.
BUILD_DATE := $(shell git log -1 --format=%cs 2>/dev/null || echo 2026-11-25)
LDFLAGS := -s -w -buildid= -X main.buildDate=$(BUILD_DATE)
OUT := out

.PHONY: all build lint test unit fuzz-short e2e payload rom demo demo-swtpm laptop laptop-reset bench clean deps kernel boards server

all: build

build: $(OUT)/glint

$(OUT)/glint: $(shell find cmd internal -name '*.go' -not -name '*_test.go') go.mod go.sum
	@mkdir -p $(OUT)
	go build -ldflags='$(LDFLAGS)' -o $@ ./cmd/glint

# the attestation server: glint with `attest serve` and its database drivers and dashboard
# (-tags attestserver). Kept out of out/glint, which runs as /init from flash.
server: $(OUT)/glint-server

$(OUT)/glint-server: $(shell find cmd internal -name '*.go' -not -name '*_test.go') $(shell find internal/attest -name '*.html' -o -name '*.css') go.mod go.sum
	@mkdir -p $(OUT)
	go build -tags attestserver -ldflags='$(LDFLAGS)' -o $@ ./cmd/glint

deps:
	bash scripts/install-deps.sh

lint:
	@fmt=$$(gofmt -l cmd internal); if [ -n "$$fmt" ]; then echo "gofmt needed:"; echo "$$fmt"; exit 1; fi
	go vet ./...
	go vet -tags attestserver ./cmd/glint
	go vet -tags payload ./cmd/glint
	go run honnef.co/go/tools/cmd/staticcheck@v0.7.0 ./...
	go run honnef.co/go/tools/cmd/staticcheck@v0.7.0 -tags attestserver ./cmd/glint
	go run honnef.co/go/tools/cmd/staticcheck@v0.7.0 -tags payload ./cmd/glint

# unit + real-part tests (swtpm, gpg, cryptsetup, flashrom, cbfstool)
unit:
	bash scripts/fetch-kernel.sh >/dev/null
	bash internal/kexec/testdata/fetch-xen.sh >/dev/null
	go test -count=1 ./...
	go test -tags payload -count=1 -run TestPayloadBuildVerbs ./cmd/glint/

# every fuzz target for a few seconds
fuzz-short:
	bash scripts/fuzz-short.sh

# glint's payload kernel (out/kernel/bzImage): Debian's linux-source-6.1 with kernel/glint.config,
# everything built in; reproducible, cached outside the checkout by its inputs
# (${XDG_CACHE_HOME:-~/.cache}/glint/kernel): a cold build is about 13 CPU-minutes.
kernel:
	bash scripts/build-kernel.sh >/dev/null
	@ls -l $(OUT)/kernel/bzImage

# glint's initramfs (coreboot's initrd): /init = the payload build of glint, no modules (the
# kernel has what glint needs built in); deterministic.
payload: $(OUT)/payload.cpio.xz

# The glint that runs from flash: -tags payload leaves out the workstation-only verbs (attest,
# card, disk, own, otp: cmd/glint/payload.go), -gcflags=all=-l turns inlining off (0.4 MB less
# flash once compressed; the payload's hot paths are assembly hashing and TPM round trips:
# bench/payload-inlining.sh). docs/kernel.md has the size table.
PAYLOAD_BUILD := -tags payload -gcflags=all=-l

$(OUT)/glint-payload: $(shell find cmd internal -name '*.go' -not -name '*_test.go') go.mod go.sum
	@mkdir -p $(OUT)
	go build $(PAYLOAD_BUILD) -ldflags='$(LDFLAGS)' -o $@ ./cmd/glint

$(OUT)/payload.cpio.xz: $(OUT)/glint-payload $(shell find cmd/mkpayload -name '*.go' -not -name '*_test.go')
	go run ./cmd/mkpayload -init $(OUT)/glint-payload -o $@

# real coreboot 4.15 (Debian's source) for QEMU q35 with TPM 2.0 and TPM 1.2, with glint's
# kernel and payload; cached on inputs
rom: payload kernel
	bash scripts/build-coreboot.sh tpm2 >/dev/null
	bash scripts/build-coreboot.sh tpm1 >/dev/null
	@ls -l $(OUT)/coreboot-tpm2.rom $(OUT)/coreboot-tpm1.rom

# the emulated laptop: QEMU + swtpm + coreboot/OVMF, the scenario table in e2e/; then real
# kexec into Linux and Xen (multiboot2), and LUKS2 unlocked by real Debian and dracut initrds
# with glint's injected key
e2e: build rom payload
	bash scripts/fetch-kernel.sh >/dev/null
	bash internal/luks/qemutest/build-os.sh >/dev/null
	go test -tags qemu -count=1 -timeout 15m -v ./kernel/kerneltest/
	go test -tags e2e -count=1 -timeout 40m -v ./e2e/
	bash internal/kexec/testdata/fetch-xen.sh >/dev/null
	go test -tags qemu -count=1 -timeout 20m -v ./internal/kexec/qemutest/ ./internal/luks/qemutest/ ./internal/card/qemutest/

# ThinkPad X230 and T430 ROMs (coreboot 4.15 from Debian's source, glint's kernel and payload,
# microcode from Debian's intel-microcode): stock and maximized BIOS-region layouts, then the
# checks that can be made without the hardware (boards/boards_test.go). Not part of make test:
# see docs/boards.md.
boards: payload kernel
	for b in x230 t430; do for l in stock maximized; do bash scripts/build-board.sh $$b $$l >/dev/null || exit 1; done; done
	go test -tags boards -count=1 -v ./boards/
	go test -tags boards -count=1 -v -run TestThinkPadAssembly ./internal/rom/
	@cd $(OUT)/boards && sha256sum *.rom

test: deps lint unit fuzz-short e2e

# the main job on the emulated laptop: a vendor's laptop made yours (re-ownership with a simulated
# security key), your code and your first boot, a tampered kernel refused (docs/own.md)
demo: deps build payload
	bash scripts/demo.sh

# the quick demo on a software TPM, without the emulated laptop
demo-swtpm: deps build
	bash scripts/demo-swtpm.sh

# the emulated laptop in your terminal, state kept in out/laptop (README: Try it yourself)
laptop: build payload
	bash scripts/laptop.sh

laptop-reset:
	rm -rf $(OUT)/laptop

clean:
	rm -rf $(OUT)
