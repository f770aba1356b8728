package boot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/glint-boot/glint/internal/approval"
	"github.com/glint-boot/glint/internal/flash"
	"github.com/glint-boot/glint/internal/manifest"
	"github.com/glint-boot/glint/internal/rom"
	"github.com/glint-boot/glint/internal/safefile"
	"github.com/glint-boot/glint/internal/sealed"
	"github.com/glint-boot/glint/internal/secret"
	"github.com/glint-boot/glint/internal/tpm"
)

// Updating the firmware from the boot menu (issue 17; docs/firmware-updates.md,
// "From the boot menu"): the same update as `glint flash BUNDLE` in the OS
// (flash.Update: checks, backup, write, verify; the owner's CBFS files
// carried), with the bundle and the backup on a USB stick. The order is the
// point: the bundle's signature is checked with the publisher key of the
// running firmware before anything else, a dry run shows what would change
// (board, hashes, FMAP areas and CBFS files, PCR values), and only then does
// the owner authenticate, approve (TPM 2.0 with an approval key) or re-seal
// to (TPM 1.2, or no approval key) the predicted PCR values, and write.

// FirmwareMachine is what the update item needs beyond Machine: the flash
// chip and a writable USB drive (the linux machine has both, as for the
// re-ownership wizard). A Machine without it cannot update from the menu.
type FirmwareMachine interface {
	FlashChip() (flash.Device, error)
	USBDrive() (dir string, release func(), err error)
}

// menuFirmwareUpdate is the menu item's key.
const menuFirmwareUpdate = "w"

// BundleExt is how an update bundle's file name ends; the menu looks for
// such files at the root of the stick and in its glint/ directory.
const BundleExt = ".glintupd"

// ApprovalKeyFile is the owner's approval key (a PEM private key, the
// private half of the firmware's glint/approval.pem) on the update stick,
// looked for at the root and in glint/.
const ApprovalKeyFile = "approval-key.pem"

// maxBundlesListed bounds the bundles offered from one stick.
const maxBundlesListed = 16

// confirmUpdate is what the owner types to write.
const confirmUpdate = "yes"

// fwUpdate is one menu update in progress.
type fwUpdate struct {
	f      *Flow
	fm     FirmwareMachine
	dev    flash.Device
	name   string // the bundle's file name on the stick
	bundle *flash.Bundle
	keys   openpgp.EntityList
	// approver signs the predicted PCR values (TPM 2.0 with an approval
	// key); nil means re-sealing (TPM 1.2, or no approval key).
	approver approval.Signer
	dry      *flash.Result
}

// updateFirmware is the menu item. rebooting is true when the owner chose
// to reboot into the new firmware.
func (f *Flow) updateFirmware() (rebooting bool, err error) {
	refuse := func(format string, a ...any) {
		f.Con.Printf("firmware update refused, nothing was written: "+format+"\n", a...)
	}
	if !f.Config.Boot.Mode.AllowsMenuFlashing() {
		refuse("the owner's configuration (boot.policy = %s) allows no flashing from the boot menu; update from the OS with glint flash, or externally with a programmer (docs/firmware-updates.md)", f.Config.Boot.Mode)
		return false, nil
	}
	fm, ok := f.Machine.(FirmwareMachine)
	if !ok {
		refuse("this machine cannot write its flash from glint's menu")
		return false, nil
	}
	if f.mode != "" {
		refuse("%s was entered in this boot, so the secrets cannot be prepared for the new firmware; reboot first", f.mode)
		return false, nil
	}
	u := &fwUpdate{f: f, fm: fm}
	if err := u.prepare(); err != nil {
		if errors.Is(err, ErrNoInput) {
			return false, err
		}
		refuse("%v", err)
		return false, nil
	}
	return u.run()
}

// prepare is every check before the owner is asked: the publisher key, the
// bundle from the stick and its signature, the approval key, the dry run.
func (u *fwUpdate) prepare() error {
	f := u.f
	raw, ok := f.OwnerFiles[flash.PublisherKeyFile]
	if !ok {
		return fmt.Errorf("the running firmware holds no %s%s, so no update can be checked; put the publisher's key there (glint rom personalize) and flash that image from the OS or externally", rom.OwnerFilePrefix, flash.PublisherKeyFile)
	}
	keys, err := manifest.ReadKeyring(raw)
	if err != nil {
		return fmt.Errorf("the running firmware's %s%s: %w", rom.OwnerFilePrefix, flash.PublisherKeyFile, err)
	}
	u.keys = keys
	if u.dev, err = u.fm.FlashChip(); err != nil {
		return err
	}
	if err := u.readStick(); err != nil {
		return err
	}
	// The signature first: nothing from the bundle is looked at further
	// (board, contents) unless the publisher signed it.
	signer, at, err := u.bundle.Verify(keys)
	if err != nil {
		return fmt.Errorf("%s: %w", u.name, err)
	}
	f.Con.Printf("%s: signature verified: publisher key %X (%s), signed %s, with the running firmware's %s%s\n",
		u.name, signer.PrimaryKey.Fingerprint, identityName(signer), at.UTC().Format(time.RFC3339), rom.OwnerFilePrefix, flash.PublisherKeyFile)
	if err := u.checkSecrets(); err != nil {
		return err
	}
	// The dry run: every read-only step of the update (the chip read twice,
	// the board, the flash layout, the owner files carried).
	f.Con.Printf("Reading the flash chip and checking the update (nothing is written yet)...\n")
	var log bytes.Buffer
	dry := &flash.Update{Device: u.dev, Bundle: u.bundle, PublisherKeys: keys, Source: u.name, DryRun: true, Log: &log}
	res, err := dry.Run(context.Background())
	for _, l := range strings.Split(strings.TrimSpace(log.String()), "\n") {
		f.J.Debugf("update dry run: %s", l)
	}
	if err != nil {
		return err
	}
	u.dry = res
	return nil
}

// readStick finds the bundle (and the approval key) on the USB drive and
// reads them; the drive is released before the owner is asked anything.
func (u *fwUpdate) readStick() error {
	f := u.f
	dir, release, err := u.fm.USBDrive()
	if err != nil {
		return fmt.Errorf("no USB stick found (%v): copy the update bundle (a file ending in %s) to a FAT or ext4 USB stick with 40 MB free, plug it in, and choose %s again", err, BundleExt, menuFirmwareUpdate)
	}
	defer release()
	names := findBundles(dir)
	switch len(names) {
	case 0:
		return fmt.Errorf("the USB stick holds no update bundle: glint looks for files ending in %s at its root and in its glint/ folder", BundleExt)
	case 1:
		u.name = names[0]
	default:
		f.Con.Printf("Update bundles on the USB stick:\n")
		for i, n := range names {
			f.Con.Printf("  %d) %s\n", i+1, n)
		}
		a, err := f.Con.Prompt("Which one? ")
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(strings.TrimSpace(a))
		if err != nil || n < 1 || n > len(names) {
			return fmt.Errorf("no bundle chosen")
		}
		u.name = names[n-1]
	}
	raw, err := safefile.ReadCapped(filepath.Join(dir, u.name), flash.MaxBundleSize)
	if err != nil {
		return fmt.Errorf("read %s: %w", u.name, err)
	}
	if u.bundle, err = flash.ParseBundle(raw); err != nil {
		return fmt.Errorf("%s: %w", u.name, err)
	}
	for _, n := range []string{ApprovalKeyFile, "glint/" + ApprovalKeyFile} {
		p := filepath.Join(dir, n)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		k := &approval.KeyFile{Path: p}
		// Public loads the key into memory: the stick can go.
		if _, err := k.Public(); err != nil {
			return fmt.Errorf("the approval key on the USB stick: %w", err)
		}
		u.approver = k
		break
	}
	return nil
}

// findBundles lists the bundle files at dir's root and in dir/glint,
// sorted, named relative to dir.
func findBundles(dir string) []string {
	var out []string
	for _, sub := range []string{"", "glint"} {
		ents, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, e := range ents {
			if e.Type().IsRegular() && strings.HasSuffix(strings.ToLower(e.Name()), BundleExt) {
				out = append(out, filepath.Join(sub, e.Name()))
			}
		}
	}
	sort.Strings(out)
	if len(out) > maxBundlesListed {
		out = out[:maxBundlesListed]
	}
	return out
}

// checkSecrets decides how the sealed secrets follow the update: approved
// (secrets sealed with the approval key: the key must be on the stick and
// be the firmware's) or sealed again (PCR values alone: the TOTP secret
// must unseal in this boot).
func (u *fwUpdate) checkSecrets() error {
	f := u.f
	if f.tpm == nil {
		u.approver = nil
		return nil
	}
	totp, terr := sealed.LoadTOTP(f.BootDir)
	disk, derr := sealed.LoadDisk(f.BootDir)
	authorized := terr == nil && tpm.IsAuthorizedBlob(totp.Blob) || derr == nil && tpm.IsAuthorizedBlob(disk.Blob)
	if !authorized {
		u.approver = nil
		if terr == nil && !f.totpOK {
			return errors.New("the TOTP secret did not unseal in this boot, so it cannot be sealed to the new firmware's values; find out why first (the lines above), or update and seal again afterwards (menu r)")
		}
		return nil
	}
	if u.approver == nil {
		return fmt.Errorf("your secrets are sealed with your approval key (%s%s), so the new firmware's PCR values must be approved with it: put its private half on the stick as %s (or glint/%s) and choose %s again", rom.OwnerFilePrefix, approval.ApprovalPEMFile, ApprovalKeyFile, ApprovalKeyFile, menuFirmwareUpdate)
	}
	pub, err := u.approver.Public()
	if err != nil {
		return err
	}
	want, werr := tpm.ApprovalKeyName(f.state.ApprovalKey)
	got, gerr := tpm.ApprovalKeyName(pub)
	if werr != nil || gerr != nil || !bytes.Equal(want, got) {
		return fmt.Errorf("the approval key on the stick (%s) is not the one in this firmware's owner files: its approvals would not open your secrets", ApprovalKeyFile)
	}
	return nil
}

// run shows the change, authenticates the owner and writes.
func (u *fwUpdate) run() (rebooting bool, err error) {
	f := u.f
	if err := u.show(); err != nil {
		f.Con.Printf("firmware update refused, nothing was written: %v\n", err)
		return false, nil
	}
	if bytes.Equal(u.dry.Current[u.dry.Span.Offset:u.dry.Span.Offset+u.dry.Span.Size], u.dry.Final[u.dry.Span.Offset:u.dry.Span.Offset+u.dry.Span.Size]) {
		f.Con.Printf("nothing to do: the chip already holds this firmware\n")
		return false, nil
	}
	f.Con.Printf("Authenticate as the owner to write this firmware.\n")
	signer, err := f.ownerSigner()
	if err != nil {
		f.Con.Printf("firmware update refused, nothing was written: %v\n", err)
		return false, nil
	}
	signer.Wipe()
	a, err := f.Con.Prompt(fmt.Sprintf("Write the new firmware now? Type %q: ", confirmUpdate))
	if err != nil {
		return false, err
	}
	if strings.TrimSpace(a) != confirmUpdate {
		f.Con.Printf("firmware update cancelled, nothing was written\n")
		return false, nil
	}
	dir, unmount, err := u.fm.USBDrive()
	if err != nil {
		f.Con.Printf("firmware update refused, nothing was written: the USB stick for the backup: %v\n", err)
		return false, nil
	}
	released := false
	release := func() {
		if !released {
			released = true
			unmount()
		}
	}
	defer release()
	up := &flash.Update{
		Device: u.dev, Bundle: u.bundle, PublisherKeys: u.keys, Source: u.name,
		BackupDir: filepath.Join(dir, "glint-firmware-backups"), Log: conWriter{f.Con}, BeforeWrite: u.beforeWrite,
	}
	res, err := up.Run(context.Background())
	if err != nil {
		f.Con.Banner(red, "FIRMWARE UPDATE FAILED")
		f.Con.Printf("%v\n", err)
		f.J.Logf("firmware update from %s failed: %v", u.name, err)
		return false, nil
	}
	if !res.Wrote {
		f.Con.Printf("nothing to do: the chip already holds this firmware\n")
		return false, nil
	}
	f.J.Logf("firmware updated from %s (release %q, sha256 %x); backup %s", u.name, u.bundle.Release, sha256.Sum256(res.Final), res.Backup.Path)
	f.Con.Banner(green, "FIRMWARE UPDATED: the new firmware runs from the next power-on")
	f.Con.Printf("The previous firmware is kept on the USB stick: %s\n", strings.TrimPrefix(res.Backup.Path, dir+"/"))
	a, err = f.Con.Prompt(fmt.Sprintf("Reboot into the new firmware now? Type %q: ", confirmUpdate))
	if err != nil {
		return false, err
	}
	if strings.TrimSpace(a) != confirmUpdate {
		f.Con.Printf("not rebooting; the new firmware runs at the next power-on\n")
		return false, nil
	}
	release()
	f.shutdownTPM()
	return true, f.Machine.Reboot()
}

// show prints what the update changes, from the dry run.
func (u *fwUpdate) show() error {
	f, res := u.f, u.dry
	f.Con.Printf("\n=== firmware update from the USB stick: %s ===\n", u.name)
	f.Con.Printf("  release:        %q\n", u.bundle.Release)
	f.Con.Printf("  board:          %s (the chip holds firmware for the same board)\n", res.Board)
	f.Con.Printf("  chip now:       sha256 %x\n", sha256.Sum256(res.Current))
	f.Con.Printf("  after update:   sha256 %x (the bundle's image %x", sha256.Sum256(res.Final), u.bundle.SHA256)
	if len(res.Carried) > 0 {
		f.Con.Printf(", with your files %s carried", strings.Join(res.Carried, ", "))
	}
	f.Con.Printf(")\n")
	if res.Region == flash.BIOSRegion {
		f.Con.Printf("  written:        the BIOS region 0x%x-0x%x\n", res.Span.Offset, res.Span.Offset+res.Span.Size-1)
	} else {
		f.Con.Printf("  written:        the whole chip (%d bytes)\n", res.Span.Size)
	}
	areas, files := imageChanges(res.Current, res.Final)
	f.Con.Printf("  areas changed:  %s\n", listOrNone(areas))
	f.Con.Printf("  files changed:  %s\n", listOrNone(files))
	pc, perr := predictImage(res.Current)
	pn, err := predictImage(res.Final)
	if err != nil {
		return fmt.Errorf("the new image's PCR values cannot be predicted: %w", err)
	}
	bank := tpm.SHA256
	if f.state != nil && f.state.Bank != 0 {
		bank = f.state.Bank
	}
	var changed []int
	if perr == nil {
		changed = pc.Changed(pn)
	}
	for _, i := range pn.OTP {
		p, ok := pn.PCR(i)
		if !ok || p.Values[bank] == nil {
			continue
		}
		mark := "unchanged"
		if perr != nil || slices.Contains(changed, i) {
			mark = "CHANGES"
		}
		f.Con.Printf("  PCR %d (%s): %x  %s\n", i, bank, p.Values[bank], mark)
	}
	switch {
	case f.tpm == nil:
		f.Con.Printf("  secrets:        no TPM: nothing is sealed\n")
	case u.approver != nil:
		f.Con.Printf("  secrets:        the new values are approved with %s (TPM2_PolicyAuthorize): the TOTP code stays the same\n", u.approver)
	default:
		f.Con.Printf("  secrets:        the TOTP secret is sealed to the new values before writing: the code stays the same\n")
	}
	return nil
}

// beforeWrite approves or re-seals for the exact image to be written.
func (u *fwUpdate) beforeWrite(_ context.Context, final []byte) error {
	f := u.f
	if f.tpm == nil {
		return nil
	}
	logf := func(format string, a ...any) { f.Con.Printf(format+"\n", a...) }
	if u.approver != nil {
		dir := f.state.ApprovalsDir()
		return f.withWritableBoot(func() error {
			return sealed.ApproveImage(f.BootDir, dir, final, u.approver, func() (tpm.TPM, func(), error) {
				return f.tpm, func() {}, nil
			}, logf)
		})
	}
	rec, err := sealed.LoadTOTP(f.BootDir)
	if err != nil {
		logf("   no TOTP secret sealed: nothing to seal again")
		return nil
	}
	if rec.PIN {
		return errors.New("the TOTP secret has a PIN; seal it again after the update (menu r)")
	}
	totpSecret, err := f.state.UnsealTOTP(rec)
	if err != nil {
		return fmt.Errorf("unseal the TOTP secret to seal it for the new firmware: %s", sealed.DescribeTPMError(err))
	}
	defer secret.Wipe(totpSecret)
	if _, err := f.state.ResealForImage(rec, totpSecret, nil, u.dry.Current, final); err != nil {
		return fmt.Errorf("seal the TOTP secret for the new firmware: %w", err)
	}
	logf("   the TOTP secret is sealed to the new firmware's predicted PCR values")
	if _, err := sealed.LoadDisk(f.BootDir); err == nil {
		logf("   note: the disk key is sealed to PCR values alone: after the update, unlock the disk with its passphrase once and seal it again (glint disk seal)")
	}
	return nil
}

// imageChanges names the FMAP areas and the CBFS files (of the COREBOOT
// area) whose bytes differ between two images.
func imageChanges(cur, next []byte) (areas, files []string) {
	ci, cerr := rom.FromBytes(cur)
	ni, nerr := rom.FromBytes(next)
	if cerr != nil || nerr != nil || ci.FMAP == nil || ni.FMAP == nil {
		return []string{"(no flash map to compare)"}, nil
	}
	for _, a := range ni.FMAP.Areas {
		o, ok := ci.FMAP.Area(a.Name)
		switch {
		case !ok:
			areas = append(areas, a.Name+" (new)")
		case o != a:
			areas = append(areas, a.Name+" (moved)")
		case int64(a.Offset)+int64(a.Size) <= int64(len(cur)) && int64(a.Offset)+int64(a.Size) <= int64(len(next)) &&
			!bytes.Equal(cur[a.Offset:a.Offset+a.Size], next[a.Offset:a.Offset+a.Size]):
			areas = append(areas, a.Name)
		}
	}
	cf, cerr := ci.CBFS(rom.OwnerArea)
	nf, nerr := ni.CBFS(rom.OwnerArea)
	if cerr != nil || nerr != nil {
		return areas, nil
	}
	old := map[string][32]byte{}
	for _, x := range cf {
		if !x.Empty() {
			old[x.Name] = sha256.Sum256(x.Data)
		}
	}
	seen := map[string]bool{}
	for _, x := range nf {
		if x.Empty() {
			continue
		}
		seen[x.Name] = true
		h, ok := old[x.Name]
		switch {
		case !ok:
			files = append(files, x.Name+" (new)")
		case h != sha256.Sum256(x.Data):
			files = append(files, x.Name)
		}
	}
	for n := range old {
		if !seen[n] {
			files = append(files, n+" (removed)")
		}
	}
	sort.Strings(files)
	return areas, files
}

func predictImage(b []byte) (*rom.Prediction, error) {
	img, err := rom.FromBytes(b)
	if err != nil {
		return nil, err
	}
	return rom.Predict(img, rom.PredictOptions{})
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func identityName(e *openpgp.Entity) string {
	if id := e.PrimaryIdentity(); id != nil {
		return strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return '?'
			}
			return r
		}, id.Name)
	}
	return "no user id"
}

// conWriter sends flash.Update's step lines to the console.
type conWriter struct{ c *Console }

func (w conWriter) Write(p []byte) (int, error) {
	w.c.Printf("%s", p)
	return len(p), nil
}
