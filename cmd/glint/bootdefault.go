package main

import (
	"fmt"
	"strconv"
)

func init() {
	register(command{name: "boot default", usage: "[--gpg-home DIR] [--key KEYID | --secret-key FILE] N",
		summary: "make entry N (from glint boot list) the default: re-signs the manifest with it", run: runBootDefault})
}

// runBootDefault records the default entry in the signed manifest, so the
// choice is as protected as the files: it is `glint sign --default ID`.
func runBootDefault(e *env, args []string) error {
	if len(args) == 0 {
		return usageErrorf("usage: glint boot default [sign options] N")
	}
	n, err := strconv.Atoi(args[len(args)-1])
	if err != nil {
		return usageErrorf("boot default: %q is not an entry number (see glint boot list)", args[len(args)-1])
	}
	d, err := bootEntries(e)
	if err != nil {
		return err
	}
	if n < 1 || n > len(d.Entries) {
		return usageErrorf("boot default: no entry %d (glint boot list shows %d)", n, len(d.Entries))
	}
	ent := d.Entries[n-1]
	fmt.Fprintf(e.stdout, "default entry: %d) %s (id %s)\n", n, ent.FullTitle(), ent.ID)
	signArgs := append(append([]string{}, args[:len(args)-1]...), "--default", ent.ID, e.bootDir)
	return runSign(e, signArgs)
}
