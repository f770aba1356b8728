package reown

import (
	"context"
	"fmt"
	"strings"

	"github.com/glint-boot/glint/internal/manifest"
	"github.com/glint-boot/glint/internal/safefile"
)

// summary is step 6: every PIN and passphrase made or typed in this run,
// where the key and its backup are, and what to do next. It is the last
// time glint shows the secrets; they are wiped from memory afterwards.
func (s *session) summary(ctx context.Context) error {
	w := s.w
	if s.keyring == nil {
		// A resumed run: the public key the interrupted run kept.
		if pub, err := safefile.ReadCapped(s.journalPath(OwnerKeyFile), 1<<20); err == nil {
			s.keyring, _ = manifest.ReadKeyring(pub)
		}
	}
	var b strings.Builder
	b.WriteString("This machine is yours.\n\n")
	if len(s.keyring) > 0 {
		fmt.Fprintf(&b, "  Owner key        %X\n", s.keyring[0].PrimaryKey.Fingerprint)
	}
	switch s.j.KeysWhere {
	case WhereCard:
		fmt.Fprintf(&b, "  Key lives on     the OpenPGP card %s (it never leaves it)\n", s.j.CardSerial)
	case WhereMemory:
		fmt.Fprintf(&b, "  Key lives on     the OpenPGP card %s, backup in %s/%s\n", s.j.CardSerial, s.j.BackupDir, SecretKeyFile)
	case WhereFile:
		fmt.Fprintf(&b, "  Key lives in     %s/%s (passphrase protected)\n", s.j.BackupDir, SecretKeyFile)
	}
	fmt.Fprintf(&b, "  TPM              reset, owned by you (%s)\n", methodWords(s.j.AuthMethod))
	fmt.Fprintf(&b, "  /boot            signed, rollback counter %d\n", s.j.Counter)
	if s.hotpDone != "" {
		fmt.Fprintf(&b, "  HOTP dongle      %s\n", s.hotpDone)
	}
	if len(s.kept) > 0 {
		b.WriteString("\nWrite these down now and keep them away from the machine (glint keeps no copy):\n")
		for _, k := range s.kept {
			fmt.Fprintf(&b, "  %-24s %s\n", k.what+":", k.value)
		}
	} else if s.resumed {
		b.WriteString("\nThe PINs and passphrases were made by the interrupted run and shown then.\n")
	}
	b.WriteString(`
Next:
  1. Power the machine off and on: the new firmware starts, and glint shows the
     TOTP code; your phone must show the same code at every boot.
  2. The previous owner's code, signature and disk key no longer work here.
     If the disk is encrypted, unlock it with its passphrase once, then seal a
     new disk key from the OS (glint disk seal DEVICE).
  3. After a kernel update, sign /boot again (glint sign, or menu item s).
`)
	w.UI.Show(b.String())
	_, err := w.UI.Ask(Question{Key: KeySummaryConfirm, Prompt: "Type 'done' when you have written them down: ", Confirm: "done"})
	return err
}
