// Package rootfs detects changes to the operating system's root file system
// between boots: PureBoot's "root hashing", made fast.
//
// Threat: /boot is signed and checked at every boot, but an attacker with the
// disk (or a root exploit in the running OS) can instead change /usr/bin/sudo
// or a library on an unencrypted root, or on an encrypted one once it is
// unlocked. The owner lists directories (DefaultDirs: bin boot lib sbin usr;
// etc is optional), glint records every file's SHA-256, every directory and
// symlink, and at boot, with the root mounted read-only, names each changed,
// added and removed path (*TamperError).
//
// Where the list lives: /boot/glint-rootfs.list (ListName), a file of
// /boot like a kernel. The owner-signed /boot manifest (internal/manifest)
// covers it, so the list is signed by the owner's key and tied to the TPM
// rollback counter: an older list put back with older binaries is a
// rollback, exactly as for /boot. `glint rootfs sign` writes the list and
// signs /boot in one step.
//
// Format (Marshal/Parse, fuzzed): "glint-rootfs 1", "dirs ...", then one
// line per entry sorted by path, paths escaped as in the manifest. File lines
// also carry the inode and the modification and change times, for the
// opt-in fast check (Options.Fast), which skips files whose metadata did not
// move and is weaker for it (see Options.Fast).
//
// Example, at boot after /boot verified and the root mounted read-only:
//
//	l, err := rootfs.Parse(keptListBytes) // the bytes the manifest check hashed
//	st, err := rootfs.Check("/mnt/root", l, rootfs.Options{Fast: cfg.RootfsFast})
//	var te *rootfs.TamperError
//	if errors.As(err, &te) { /* show te.Changed, te.Added, te.Removed */ }
package rootfs
