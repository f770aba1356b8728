package flash

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// tracingDevice is the real flashrom with the dummy programmer, except that
// Write runs flashrom -VVV and records the SPI commands the write sent
// (spitrace_test.go says why a recording and not a kill).
type tracingDevice struct {
	*Flashrom
	old []byte // the chip before the write (--flash-contents: skips a -VVV read of 16 MiB)
	ops []spiOp
}

func (d *tracingDevice) Write(ctx context.Context, image string, region Region) error {
	dir := filepath.Dir(image)
	oldPath := filepath.Join(dir, "flash-contents.rom")
	if err := os.WriteFile(oldPath, d.old, 0o600); err != nil {
		return err
	}
	args := append(append(d.base(), regionArgs(region)...), "-VVV", "--flash-contents", oldPath, "-w", image)
	cmd := exec.CommandContext(ctx, needFlashrom(), args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	ops, perr := parseSPITrace(stdout, int64(len(d.old)))
	if perr != nil {
		cmd.Process.Kill()
	}
	werr := cmd.Wait()
	if perr != nil {
		return perr
	}
	if werr != nil {
		return fmt.Errorf("flashrom -VVV write: %v\n%s", werr, stderr.String())
	}
	d.ops = ops
	return nil
}

func needFlashrom() string {
	p, err := lookFlashrom()
	if err != nil {
		return "flashrom"
	}
	return p
}

// TestPowerCutDuringWrite interrupts a real flashrom write (W25Q128FV
// emulated by the dummy programmer) at 24 points spread over the erase and
// program commands it sent, and checks at each one that glint's verify
// finds the partial image, the backup glint kept is intact, and restoring
// it brings back the old chip byte for byte.
func TestPowerCutDuringWrite(t *testing.T) {
	old := makeImage(t, imageSpec{vendor: "Emulation", part: "QEMU x86 q35/ich9", payload: 11, owner: ownerA})
	next := makeImage(t, imageSpec{vendor: "Emulation", part: "QEMU x86 q35/ich9", payload: 12, owner: ownerA})
	chip := newDummyChip(t, old)
	dev := &tracingDevice{Flashrom: chip.dev, old: old}
	res, err := (&Update{Device: dev, Image: next, BackupDir: filepath.Join(t.TempDir(), "backups"), Now: fixedNow}).Run(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "chip after the recorded write", chip.contents(t), next)

	// The recording is faithful: replaying every command onto the old
	// image gives exactly what flashrom wrote.
	mustEqual(t, "replay of the whole trace", cutAfter(old, dev.ops, len(dev.ops), 0), next)
	var erases, programs []int
	for i, o := range dev.ops {
		if o.erase {
			erases = append(erases, i)
		} else {
			programs = append(programs, i)
		}
	}
	t.Logf("flashrom sent %d erase and %d page-program commands", len(erases), len(programs))
	if len(erases) < 12 || len(programs) < 12 {
		t.Fatalf("too few commands to cut: %d erases, %d programs", len(erases), len(programs))
	}

	// 12 cuts in erase commands and 12 in page programs, spread evenly
	// from the first to the next-to-last (just after the last command the
	// write is complete); a third of each kind at the command's start
	// (before it did anything), a third halfway, a third just after it
	// completed.
	type cut struct {
		k        int
		fraction float64
	}
	var cuts []cut
	for _, idx := range [][]int{erases, programs} {
		for j := 0; j < 12; j++ {
			k := idx[j*(len(idx)-2)/11]
			switch j % 3 {
			case 0:
				cuts = append(cuts, cut{k, 0})
			case 1:
				cuts = append(cuts, cut{k, 0.5})
			case 2:
				cuts = append(cuts, cut{k + 1, 0})
			}
		}
	}
	backup := res.Backup.Path
	for i, c := range cuts {
		c := c
		desc := "before"
		switch {
		case c.fraction > 0:
			desc = "halfway through"
		case c.k > 0 && (i%12)%3 == 2:
			desc = "just after"
		}
		op := dev.ops[min(c.k, len(dev.ops)-1)]
		if desc == "just after" {
			op = dev.ops[c.k-1]
		}
		name := fmt.Sprintf("%02d-%s-%s", i+1, desc, op)
		t.Run(name, func(t *testing.T) {
			// Each cut gets its own emulated chip, so two run at once.
			t.Parallel()
			partial := cutAfter(old, dev.ops, c.k, c.fraction)
			if bytes.Equal(partial, next) {
				t.Fatal("the cut state equals the new image: not a partial write")
			}
			chip := newDummyChip(t, partial)
			// The next verify finds the partial image.
			err := VerifyChip(ctx(t), chip.dev, next, "")
			var mm *MismatchError
			if !errors.As(err, &mm) {
				t.Fatalf("verify of a chip cut %s %s: %v", desc, op, err)
			}
			// The mismatch lies at or before the interrupted command
			// (everything after it is still the old image).
			if mm.First > op.addr+op.size {
				t.Errorf("first difference at 0x%x, after the interrupted %s", mm.First, op)
			}
			// The backup is intact.
			b, err := CheckBackup(backup)
			if err != nil {
				t.Fatal(err)
			}
			kept, _ := os.ReadFile(b.Path)
			mustEqual(t, "backup", kept, old)
			// Restore brings back the exact old bytes.
			if err := Restore(ctx(t), chip.dev, backup, "", false, nil); err != nil {
				t.Fatal(err)
			}
			mustEqual(t, "chip after restore", chip.contents(t), old)
		})
	}
}

func TestParseSPITraceSample(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "flashrom", "spi-trace.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ops, err := parseSPITrace(f, chipSize)
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) < 2 || !ops[0].erase || ops[0].addr != 0x4000 || ops[0].size != 0x1000 ||
		ops[1].erase || ops[1].addr != 0x4000 || len(ops[1].data) != pageSize || ops[1].data[0] != 0x24 {
		t.Fatalf("ops %v", ops)
	}
	// The second page holds the text written into the sample.
	if !bytes.HasPrefix(ops[2].data, []byte("glint power cut sample")) {
		t.Errorf("page 2 = %q", ops[2].data[:24])
	}
}
