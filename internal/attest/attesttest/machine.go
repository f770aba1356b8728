// Package attesttest gives attestation tests a machine to attest: a real
// software TPM (swtpm, with an EK certificate from a local manufacturer CA)
// whose PCRs are extended with real measurements, and the TCG event log
// that describes them, written the way firmware writes it (crypto-agile
// with sha1 and sha256 digests for TPM 2.0, the SHA-1 format for TPM 1.2).
//
//	m := attesttest.NewMachine(t, tpm.Version20)
//	m.Boot("coreboot 4.15 glint")          // PCRs 0-7 as a coreboot+glint boot leaves them
//	log := m.Log()                         // what Linux shows in binary_bios_measurements
//
// A firmware change is Boot with another image name (different digests in
// PCR 2); an unlogged measurement is m.TPM.Extend without Measure.
package attesttest

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
)

// Machine is a TPM and the log of what was measured into it.
type Machine struct {
	TPM  tpm.TPM
	Spec string
	CA   *swtpmtest.CA
	log  []byte
	v    tpm.Version
	dir  string
}

// NewMachine starts a fresh swtpm with an EK certificate. Machines made
// by NewMachine share one manufacturing template, so they have the same
// endorsement key (and the same AK per label): one server sees them as the
// same TPM. Use NewDistinctMachine where two TPMs must differ.
func NewMachine(t testing.TB, v tpm.Version) *Machine {
	t.Helper()
	dir := t.TempDir()
	spec, ca := swtpmtest.StartWithEKCertIn(t, v, dir)
	return open(t, spec, ca, v, dir)
}

// NewDistinctMachine is NewMachine with a TPM manufactured for it alone
// (its own seeds, EK and certificate); it takes a second or two.
func NewDistinctMachine(t testing.TB, v tpm.Version) *Machine {
	t.Helper()
	dir := t.TempDir()
	spec, ca := swtpmtest.StartDistinctWithEKCert(t, v, dir)
	return open(t, spec, ca, v, dir)
}

func open(t testing.TB, spec string, ca *swtpmtest.CA, v tpm.Version, dir string) *Machine {
	dev, err := tpm.Open(spec)
	if err != nil {
		t.Fatalf("open swtpm: %v", err)
	}
	t.Cleanup(func() { dev.Close() })
	m := &Machine{TPM: dev, Spec: spec, CA: ca, v: v, dir: dir}
	if v == tpm.Version20 {
		m.log = specIDEvent()
	}
	return m
}

// Reboot power-cycles m's TPM: PCRs reset and the log starts again, the
// keys (EK, AKs, the TPM 1.2 SRK) stay. m must not be used afterwards.
func Reboot(t testing.TB, m *Machine) *Machine {
	t.Helper()
	m.TPM.Shutdown()
	m.TPM.Close()
	spec := swtpmtest.StartDir(t, m.v, m.dir)
	return open(t, spec, m.CA, m.v, m.dir)
}

// specIDEvent is the crypto-agile log's first event (PFP 1.05, 10.4.5.1):
// a SHA-1-format EV_NO_ACTION carrying TCG_EfiSpecIdEvent for sha1 and
// sha256. Logs are little-endian (PFP 1.05, 10.2).
func specIDEvent() []byte {
	var d []byte
	d = append(d, "Spec ID Event03\x00"...)
	d = binary.LittleEndian.AppendUint32(d, 0) // platformClass: client
	d = append(d, 0, 2, 0, 2)                  // version 2.0 errata 0, uintnSize 2 (64-bit)
	d = binary.LittleEndian.AppendUint32(d, 2)
	d = binary.LittleEndian.AppendUint16(d, uint16(tpm.SHA1))
	d = binary.LittleEndian.AppendUint16(d, 20)
	d = binary.LittleEndian.AppendUint16(d, uint16(tpm.SHA256))
	d = binary.LittleEndian.AppendUint16(d, 32)
	d = append(d, 0) // vendorInfoSize
	var e []byte
	e = binary.LittleEndian.AppendUint32(e, 0)
	e = binary.LittleEndian.AppendUint32(e, uint32(eventlog.EvNoAction))
	e = append(e, make([]byte, 20)...)
	e = binary.LittleEndian.AppendUint32(e, uint32(len(d)))
	return append(e, d...)
}

// Measure extends data into pcr (every bank hashes it, as firmware does for
// EV_ACTION-style events) and logs the event.
func (m *Machine) Measure(t testing.TB, pcr int, typ eventlog.EventType, data []byte) {
	t.Helper()
	if err := m.TPM.Extend(pcr, data); err != nil {
		t.Fatalf("extend PCR %d: %v", pcr, err)
	}
	m.log = AppendEvent(m.log, m.v, pcr, typ, data)
}

// MeasureNamed extends content into pcr and logs the event with name as its
// data, as firmware logs a stage by name with the digest of its code.
func (m *Machine) MeasureNamed(t testing.TB, pcr int, typ eventlog.EventType, name string, content []byte) {
	t.Helper()
	if err := m.TPM.Extend(pcr, content); err != nil {
		t.Fatalf("extend PCR %d: %v", pcr, err)
	}
	m.log = appendEvent(m.log, m.v, pcr, typ, []byte(name), content)
}

// AppendEvent encodes one event whose digests are the hashes of data, in
// the family's log format.
func AppendEvent(log []byte, v tpm.Version, pcr int, typ eventlog.EventType, data []byte) []byte {
	return appendEvent(log, v, pcr, typ, data, data)
}

func appendEvent(log []byte, v tpm.Version, pcr int, typ eventlog.EventType, data, content []byte) []byte {
	s1 := sha1.Sum(content)
	log = binary.LittleEndian.AppendUint32(log, uint32(pcr))
	log = binary.LittleEndian.AppendUint32(log, uint32(typ))
	if v == tpm.Version12 {
		log = append(log, s1[:]...)
	} else {
		s256 := sha256.Sum256(content)
		log = binary.LittleEndian.AppendUint32(log, 2)
		log = binary.LittleEndian.AppendUint16(log, uint16(tpm.SHA1))
		log = append(log, s1[:]...)
		log = binary.LittleEndian.AppendUint16(log, uint16(tpm.SHA256))
		log = append(log, s256[:]...)
	}
	log = binary.LittleEndian.AppendUint32(log, uint32(len(data)))
	return append(log, data...)
}

// Boot measures what a coreboot + glint boot of firmware image leaves in
// PCRs 0-7: coreboot's stages into PCR 2 (their content depends on image),
// separators, glint's owner files into PCR 7.
func (m *Machine) Boot(t testing.TB, image string) {
	t.Helper()
	for _, stage := range []string{"bootblock", "fallback/romstage", "fallback/ramstage", "fallback/payload"} {
		m.MeasureNamed(t, 2, eventlog.EvPostCode, "FMAP: COREBOOT CBFS: "+stage, []byte(stage+" as built for "+image))
	}
	for pcr := 0; pcr < 8; pcr++ {
		m.Measure(t, pcr, eventlog.EvSeparator, []byte{0, 0, 0, 0})
	}
	m.MeasureNamed(t, 7, eventlog.EvPostCode, "glint: owner files", []byte("owner files of "+image))
}

// Log is the event log so far.
func (m *Machine) Log() []byte { return append([]byte(nil), m.log...) }

// Version is the TPM family.
func (m *Machine) Version() tpm.Version { return m.v }
