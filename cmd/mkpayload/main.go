// Command mkpayload builds glint's initramfs: the initrd that coreboot carries beside the
// kernel in flash, so every byte of it is measured into PCR 2 before it runs.
//
// The archive is built deterministically, so the same glint binary and kernel modules give
// the same bytes in any directory on any machine (and therefore the same PCR 2 value):
// entries are sorted by name, owned by 0:0, dated 1970-01-01, numbered 1, 2, 3... in
// archive order, and compressed by a pure-Go compressor with fixed settings.
//
// Contents:
//
//	/init                      glint (static binary)
//	/dev/console, /dev/null    so the kernel can open the console before devtmpfs exists
//	/proc /sys /tmp /boot ...  empty mount points
//
// glint's own kernel (kernel/glint.config) has every driver glint needs built in, so the payload
// carries no modules. For a payload run by a distribution kernel instead (Debian's, say),
// -modules adds the modules named by -load with their dependencies:
//
//	/lib/modules/<ver>/...     the modules glint loads (finit_module) before it looks for disks
//	/lib/modules/load-order    their paths relative to /lib/modules, one a line, dependencies first
//
// Usage:
//
//	mkpayload -init out/glint -o out/payload.cpio.xz
//	mkpayload -init out/glint -modules cache/kernel/modules/6.1.0-56-amd64 -o debian-payload.cpio.xz
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "mkpayload: %v\n", err)
		os.Exit(1)
	}
}

// debianModules are what glint needs from Debian's generic kernel to read /boot from a virtio
// disk (the emulated laptop's SSD) and the owner's key stick (vfat, code page 437, ASCII/UTF-8
// names: the FAT defaults in Debian's config). crc32c_generic is ext4's soft dependency
// (metadata checksums); xhci_pci, usb_storage and sd_mod reach USB sticks (ISO boot, issue 20);
// virtio_net reaches the attestation server (owner configuration attest.*) on the emulated
// laptop's network card. Used only with -modules: glint's own kernel has all of it built in.
const debianModules = "virtio_pci,virtio_blk,crc32c_generic,ext4,vfat,nls_cp437,nls_ascii,nls_utf8,xhci_pci,usb_storage,sd_mod,virtio_net"

func run(args []string) error {
	fs := flag.NewFlagSet("mkpayload", flag.ContinueOnError)
	initPath := fs.String("init", "", "the binary that becomes /init (glint)")
	modDir := fs.String("modules", "", "a kernel's module tree: .../lib/modules/<version>")
	mods := fs.String("load", debianModules, "with -modules: comma-separated modules to include (their dependencies are added)")
	out := fs.String("o", "", "output file; .xz, .gz or .cpio decides the compression")
	var extra multiFlag
	fs.Var(&extra, "file", "extra file DEST=SRC (repeatable), e.g. for test payloads")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *initPath == "" || *out == "" {
		return fmt.Errorf("-init and -o are required")
	}
	p := &payload{}
	if err := p.addFile("init", *initPath, 0o755); err != nil {
		return err
	}
	for _, e := range extra {
		dst, src, ok := strings.Cut(e, "=")
		if !ok {
			return fmt.Errorf("-file %q: want DEST=SRC", e)
		}
		perm := uint64(0o644)
		if st, err := os.Stat(src); err == nil && st.Mode()&0o111 != 0 {
			perm = 0o755
		}
		if err := p.addFile(strings.TrimPrefix(dst, "/"), src, perm); err != nil {
			return err
		}
	}
	if *modDir != "" {
		var names []string
		for _, m := range strings.Split(*mods, ",") {
			if m = strings.TrimSpace(m); m != "" {
				names = append(names, m)
			}
		}
		if err := p.addModules(*modDir, names); err != nil {
			return err
		}
	}
	raw, err := p.cpio()
	if err != nil {
		return err
	}
	packed, err := compress(raw, *out)
	if err != nil {
		return err
	}
	if err := writeAtomic(*out, packed); err != nil {
		return err
	}
	fmt.Printf("mkpayload: %s: %d entries, %d bytes cpio, %d bytes compressed\n", *out, len(p.entries), len(raw), len(packed))
	return nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// writeAtomic replaces path in one step, so a half-written payload is never picked up by the
// coreboot build (which hashes it).
func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
