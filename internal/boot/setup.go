package boot

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/glint-boot/glint/internal/manifest"
	"github.com/glint-boot/glint/internal/ownerauth"
	"github.com/glint-boot/glint/internal/seal"
	"github.com/glint-boot/glint/internal/sealed"
	"github.com/glint-boot/glint/internal/secret"
	"github.com/glint-boot/glint/internal/tpm"
)

// ownerSigner asks for the owner's key passphrase and returns a signer made
// from the owner's key backup on removable media. The key must be one of the
// owner keys in the firmware: a stick with someone else's key is refused.
func (f *Flow) ownerSigner() (*manifest.KeySigner, error) {
	kr, err := f.keyring()
	if err != nil {
		return nil, err
	}
	files, err := f.Machine.OwnerKeyMedia()
	if err != nil {
		return nil, fmt.Errorf("look for the owner key: %w", err)
	}
	if len(files) == 0 {
		return nil, errors.New("no owner key found: insert the medium holding owner-secret.asc (your key backup) and try again")
	}
	for attempt := 1; attempt <= 3; attempt++ {
		pass, err := f.Con.PromptSecret("Owner key passphrase: ")
		if err != nil {
			return nil, err
		}
		var lastErr error
		for _, kf := range files {
			s, err := manifest.NewKeySigner(kf.Data, pass)
			if err != nil {
				lastErr = err
				continue
			}
			if !inKeyring(kr, s) {
				s.Wipe()
				lastErr = fmt.Errorf("the key on %s is not an owner key in the firmware image", kf.Where)
				continue
			}
			secret.Wipe(pass)
			f.J.Logf("owner authenticated with the key from %s", kf.Where)
			return s, nil
		}
		secret.Wipe(pass)
		f.Con.Printf("Owner key not unlocked: %v (try %d of 3)\n", lastErr, attempt)
	}
	return nil, errors.New("owner authentication failed three times")
}

func inKeyring(kr openpgp.EntityList, s *manifest.KeySigner) bool {
	fp := s.Fingerprint()
	for _, e := range kr {
		if e.PrimaryKey != nil && string(e.PrimaryKey.Fingerprint) == string(fp) {
			return true
		}
	}
	return false
}

// owned says whether this machine has been set up: a manifest or a sealed
// TOTP secret exists on /boot.
func (f *Flow) owned() bool {
	if f.BootDir == "" {
		return false
	}
	if _, _, err := manifest.ReadPair(f.BootDir); err == nil {
		return true
	}
	if _, err := sealed.LoadTOTP(f.BootDir); err == nil || !errors.Is(err, seal.ErrNotSealed) {
		return true
	}
	return false
}

// OwnerSetup is the first boot of a machine with an owner key in its
// firmware but nothing signed or sealed: sign /boot with the owner's key and
// seal a fresh TOTP secret, then show it for the phone. (The full
// re-ownership wizard, which also resets the TPM and writes the key into the
// firmware, builds on this.)
func (f *Flow) OwnerSetup() error {
	f.Con.Banner(green, "OWNER SET-UP: this machine has no signed /boot and no TOTP secret yet")
	if f.tpm == nil {
		return errors.New("set-up needs a TPM for the rollback counter and the TOTP secret")
	}
	if f.BootDir == "" {
		return errors.New("no /boot found to sign")
	}
	signer, err := f.ownerSigner()
	if err != nil {
		return err
	}
	defer signer.Wipe()
	if err := f.takeTPM(signer); err != nil {
		return err
	}
	// Sane dictionary-attack parameters before anything PIN-protected
	// exists: enough tries that power cuts (which count as one failure each
	// when a DA-protected object was in use) cannot lock the owner out.
	if err := f.tpm.ConfigureLockout(tpm.DefaultMaxTries, tpm.DefaultRecoverySeconds, tpm.DefaultLockoutRecoverySeconds); err != nil && !errors.Is(err, tpm.ErrUnsupported) {
		f.J.Logf("TPM lockout parameters not set: %v", err)
	}
	if err := f.signBoot(signer); err != nil {
		return err
	}
	totpSecret, err := f.state.SealNewTOTP()
	if err != nil {
		return fmt.Errorf("seal TOTP secret: %w", err)
	}
	defer secret.Wipe(totpSecret)
	return f.showEnrollment(totpSecret)
}

// takeTPM takes the TPM for the owner (tpm owner.go): the storage key is
// persisted, and the owner and lockout authorisations are set to values
// derived from the owner's key and this TPM's identity, so nothing that runs
// after glint can reset the PIN lockout, delete the rollback counter or
// clear the TPM. Repeating it (a set-up again after glint's state was
// removed by the owner) is harmless.
func (f *Flow) takeTPM(signer *manifest.KeySigner) error {
	if err := f.tpm.PrepareOwnership(); err != nil {
		return fmt.Errorf("prepare the TPM for its owner: %w", err)
	}
	auth, err := f.ownerAuth(signer)
	if err != nil {
		return err
	}
	defer auth.Wipe()
	if marks, err := f.tpm.SetupMarks(manifest.DefaultCounterIndex); err == nil && (marks.OwnerAuth || marks.LockoutAuth) {
		f.tpm.UseAuth(auth) // set before, by this owner's key: a re-set-up
	}
	if err := f.tpm.SetHierarchyAuth(auth); err != nil {
		return fmt.Errorf("take the TPM for its owner: %w", err)
	}
	f.J.Logf("TPM owner and lockout authorisations set from the owner key")
	f.defineClockIndex()
	return nil
}

// adminTPM gives this boot's TPM handle the owner's authorisations, after
// the owner unlocked the key; a TPM set up before glint took TPMs for their
// owners is taken now.
func (f *Flow) adminTPM(signer *manifest.KeySigner) error {
	marks, err := f.tpm.SetupMarks(manifest.DefaultCounterIndex)
	if err != nil {
		return err
	}
	if marks.OwnerAuth || marks.LockoutAuth {
		auth, err := f.ownerAuth(signer)
		auth.Wipe()
		return err
	}
	return f.takeTPM(signer)
}

// ownerAuth derives the TPM's owner and lockout authorisations from the
// unlocked owner key and the TPM's identity, and gives them to the TPM
// handle for the commands of this boot that need them.
func (f *Flow) ownerAuth(signer *manifest.KeySigner) (tpm.HierarchyAuth, error) {
	id, err := f.tpm.Identity()
	if err != nil {
		return tpm.HierarchyAuth{}, fmt.Errorf("read the TPM's identity: %w", err)
	}
	// The same derivation as the re-ownership wizard's (package
	// ownerauth): a signature over a TPM-bound challenge for RSA and
	// Ed25519 keys, so a key file and a card holding one key agree.
	sec, err := ownerauth.FromKeyFile(signer, id)
	if err != nil {
		return tpm.HierarchyAuth{}, err
	}
	defer secret.Wipe(sec)
	auth, err := tpm.DeriveHierarchyAuth(sec, id)
	if err != nil {
		return tpm.HierarchyAuth{}, err
	}
	f.tpm.UseAuth(auth)
	return auth, nil
}

// stateRemoved reports the TPM's signs that glint set this machine up,
// when /boot holds none of glint's state: glint's state was deleted.
func (f *Flow) stateRemoved() (*tpm.SetupMarks, bool) {
	if f.tpm == nil {
		return nil, false
	}
	marks, err := f.tpm.SetupMarks(manifest.DefaultCounterIndex)
	if err != nil {
		f.J.Logf("TPM set-up marks: %v", err)
		return nil, false
	}
	return marks, marks.Any()
}

// confirmSign is the answer that signs what the plan showed.
const confirmSign = "y"

// signBoot shows what would be signed next to the last manifest on /boot,
// asks the owner, and signs exactly that (owner key needed).
func (f *Flow) signBoot(signer manifest.Signer) error {
	kr, err := f.keyring()
	if err != nil {
		return err
	}
	plan, err := manifest.PlanSign(f.BootDir, kr, manifest.BuildOptions{})
	if err != nil {
		return fmt.Errorf("hash /boot: %w", err)
	}
	f.Con.Printf("--- what will be signed ---\n%s", plan.Summary(40))
	a, err := f.Con.Prompt("Sign /boot as listed above? [y/N] ")
	if err != nil {
		return err
	}
	if strings.TrimSpace(strings.ToLower(a)) != confirmSign {
		return errors.New("not signed: the owner did not confirm")
	}
	return f.withWritableBoot(func() error {
		opts := manifest.SignOptions{Now: f.now}
		if f.defEntry >= 0 && f.defEntry < len(f.entries) {
			opts.Default = f.entries[f.defEntry].ID
		}
		m, err := manifest.SignPlanned(f.BootDir, plan, signer, f.tpm, opts)
		if err != nil {
			return fmt.Errorf("sign /boot: %w", err)
		}
		f.Con.Printf("/boot signed: %d files, rollback counter %d\n", len(m.Entries), m.Counter)
		return nil
	})
}
