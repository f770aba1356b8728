package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestBootList(t *testing.T) {
	var out, errb bytes.Buffer
	err := run([]string{"boot", "list", "--boot", "../../internal/bootcfg/testdata/qubes42"}, nil, &out, &errb)
	if err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	s := out.String()
	for _, want := range []string{
		"*  1  Qubes, with Xen hypervisor\n",
		"       kind    multiboot2\n",
		"       kernel  xen-4.17.2.gz\n",
		"       module  initramfs-6.1.62-1.qubes.fc37.x86_64.img  (--nounzip)\n",
		"   4  Advanced options for Qubes (with Xen hypervisor)>Xen hypervisor, version 4.17.2>Qubes, with Xen 4.17.2 and Linux 6.1.57-1.qubes.fc37.x86_64\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	out.Reset()
	if err := run([]string{"--boot", t.TempDir(), "boot", "list"}, nil, &out, &errb); err == nil || !strings.Contains(err.Error(), "no boot configuration") {
		t.Fatalf("empty dir: %v", err)
	}
}
