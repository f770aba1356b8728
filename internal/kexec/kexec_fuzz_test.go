package kexec

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func seedXen(f *testing.F) []byte {
	_, xen := realXenOrSynthetic(f)
	return xen
}

func FuzzMultiboot2Header(f *testing.F) {
	xen := seedXen(f)
	if h, err := ParseMultiboot2Header(xen); err == nil {
		f.Add(xen[h.Offset : h.Offset+int(h.Length)])
		f.Add(xen[:min(len(xen), 4096)])
	}
	f.Add([]byte{0xd6, 0x50, 0x52, 0xe8, 0, 0, 0, 0, 24, 0, 0, 0, 0x12, 0xaf, 0xad, 0x17, 0, 0, 0, 0, 8, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseMultiboot2Header(data)
		if err != nil {
			return
		}
		if h.Offset+int(h.Length) > len(data) || len(h.InfoRequests) > 64 {
			t.Fatalf("header %+v beyond %d bytes", h, len(data))
		}
	})
}

func FuzzELF(f *testing.F) {
	xen := seedXen(f)
	f.Add(xen[:min(len(xen), 8192)])
	f.Add(syntheticELF32())
	f.Fuzz(func(t *testing.T, data []byte) {
		segs, entry, err := ParseELF(data)
		if err != nil {
			return
		}
		for _, s := range segs {
			if uint64(len(s.Data)) > s.MemSize || s.Addr+s.MemSize > limit4G || s.MemSize > MaxInflatedSize {
				t.Fatalf("segment %#x+%#x (%d bytes) breaks the caps", s.Addr, s.MemSize, len(s.Data))
			}
		}
		if entry >= limit4G {
			t.Fatalf("entry %#x", entry)
		}
	})
}

// FuzzPlan runs the whole Multiboot2 planning on hostile kernels: it must
// fail cleanly or produce disjoint segments in RAM.
func FuzzPlan(f *testing.F) {
	f.Add(syntheticELF32())
	withHeader := syntheticELF32()
	le := binary.LittleEndian
	le.PutUint32(withHeader[0x80:], Multiboot2HeaderMagic)
	le.PutUint32(withHeader[0x88:], 24)
	le.PutUint32(withHeader[0x8c:], uint32(1<<32-(Multiboot2HeaderMagic+24)))
	le.PutUint32(withHeader[0x94:], 8) // end tag
	if _, err := PlanMultiboot2(Image{Kind: 1, Kernel: File{Path: "x", Data: withHeader}}, *testPlatform()); err != nil {
		f.Fatalf("seed does not plan: %v", err)
	}
	f.Add(withHeader)
	f.Fuzz(func(t *testing.T, kernel []byte) {
		plat := testPlatform()
		img := Image{Kind: 1, Kernel: File{Path: "x", Data: kernel}, Modules: []Module{{File: File{Path: "m", Data: []byte("mod")}}}}
		if len(kernel)%2 == 1 {
			// The UEFI page-0 BDA and a key riding on the second module.
			plat.NoBDA = true
			img.Modules = append(img.Modules, Module{File: File{Path: "i", Data: []byte("initrd")}})
			img.ExtraInitrd = []byte("070701-key")
		}
		plan, err := PlanMultiboot2(img, *plat)
		if err != nil {
			return
		}
		defer func() {
			plan.Wipe()
			if bytes.Contains(plan.extra, []byte("070701-key")) {
				t.Fatal("Wipe left the key")
			}
		}()
		for i := 1; i < len(plan.Segments); i++ {
			p, s := plan.Segments[i-1], plan.Segments[i]
			if p.Addr+p.MemSize > s.Addr {
				t.Fatalf("overlap %#x+%#x %#x", p.Addr, p.MemSize, s.Addr)
			}
		}
	})
}
