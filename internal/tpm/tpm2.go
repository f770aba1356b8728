package tpm

import (
	"fmt"
	"sync"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// tpm20 implements TPM for TPM 2.0 on top of go-tpm's tpm2 package.
//
// Every verb flushes every transient object and session it creates, on
// success and failure alike: swtpm and raw /dev/tpm0 have no resource
// manager, and swtpm holds only three transient objects.
type tpm20 struct {
	mu sync.Mutex // one verb at a time, so the object slots suffice
	t  Transport
	// activeBanks caches the PCR allocation: it changes only at a TPM
	// reset after TPM2_PCR_Allocate (Part 3, TPM2_PCR_Allocate), and Extend
	// needs it on every call.
	activeBanks []Alg
	// auth is what owner- and lockout-hierarchy commands authorise with
	// (UseAuth, SetHierarchyAuth); empty on a factory-fresh TPM.
	auth HierarchyAuth
	// platformLocked: LockPlatform set the platform authorisation.
	platformLocked bool
}

// pcrCount is the PC Client PCR count (PC Client PTP 1.05, 4.1: 24 PCRs).
const pcrCount = 24

var _ transport.TPM = Transport(nil)

func (d *tpm20) Version() Version { return Version20 }
func (d *tpm20) Close() error     { return d.t.Close() }

// pcrSelect encodes PCR indices as the TPMS_PCR_SELECTION bitmap (Part 2,
// 10.6.1: bit n of octet n/8 selects PCR n; PC Client uses 3 octets).
func pcrSelect(pcrs []int) ([]byte, error) {
	sel := make([]byte, pcrCount/8)
	for _, p := range pcrs {
		if p < 0 || p >= pcrCount {
			return nil, fmt.Errorf("PCR %d out of range 0..%d", p, pcrCount-1)
		}
		sel[p/8] |= 1 << (p % 8)
	}
	return sel, nil
}

// selected lists the PCRs set in a selection bitmap, in ascending order (the
// order the TPM returns and hashes them in: Part 3, TPM2_PCR_Read).
func selected(bitmap []byte) []int {
	var out []int
	for i, b := range bitmap {
		for bit := 0; bit < 8; bit++ {
			if b&(1<<bit) != 0 {
				out = append(out, i*8+bit)
			}
		}
	}
	return out
}

func (d *tpm20) Banks() ([]Alg, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.banks()
}

func (d *tpm20) banks() ([]Alg, error) {
	if d.activeBanks != nil {
		return append([]Alg(nil), d.activeBanks...), nil
	}
	rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapPCRs, Property: 0, PropertyCount: 1}.Execute(d.t)
	if err != nil {
		return nil, wrap20("TPM2_GetCapability(PCRs)", err)
	}
	sels, err := rsp.CapabilityData.Data.AssignedPCR()
	if err != nil {
		return nil, fmt.Errorf("TPM2_GetCapability(PCRs): %w", err)
	}
	var out []Alg
	for _, s := range sels.PCRSelections {
		if len(selected(s.PCRSelect)) > 0 {
			out = append(out, Alg(s.Hash))
		}
	}
	d.activeBanks = out
	return append([]Alg(nil), out...), nil
}

func (d *tpm20) ReadPCRs(bank Alg, pcrs []int) (map[int][]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.readPCRs(bank, pcrs)
}

func (d *tpm20) readPCRs(bank Alg, pcrs []int) (map[int][]byte, error) {
	out := make(map[int][]byte, len(pcrs))
	want := append([]int(nil), pcrs...)
	// TPM2_PCR_Read returns at most 8 digests (TPML_DIGEST) per call and
	// says which ones in pcrSelectionOut; ask again for the rest.
	for len(want) > 0 {
		sel, err := pcrSelect(want)
		if err != nil {
			return nil, err
		}
		rsp, err := tpm2.PCRRead{PCRSelectionIn: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgID(bank), PCRSelect: sel}}}}.Execute(d.t)
		if err != nil {
			return nil, wrap20("TPM2_PCR_Read", err)
		}
		var got []int
		for _, s := range rsp.PCRSelectionOut.PCRSelections {
			if s.Hash == tpm2.TPMAlgID(bank) {
				got = append(got, selected(s.PCRSelect)...)
			}
		}
		if len(got) == 0 {
			return nil, fmt.Errorf("TPM2_PCR_Read: the TPM has no active %s bank for PCRs %s", bank, joinInts(want))
		}
		if len(got) != len(rsp.PCRValues.Digests) {
			return nil, fmt.Errorf("TPM2_PCR_Read: %d PCRs selected but %d values returned", len(got), len(rsp.PCRValues.Digests))
		}
		for i, p := range got {
			out[p] = rsp.PCRValues.Digests[i].Buffer
		}
		rest := want[:0]
		for _, p := range want {
			if _, ok := out[p]; !ok {
				rest = append(rest, p)
			}
		}
		want = rest
	}
	return out, nil
}

func (d *tpm20) Extend(pcr int, data []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if pcr < 0 || pcr >= pcrCount {
		return fmt.Errorf("PCR %d out of range 0..%d", pcr, pcrCount-1)
	}
	banks, err := d.banks()
	if err != nil {
		return err
	}
	var digests tpm2.TPMLDigestValues
	for _, b := range banks {
		h, err := b.Hash()
		if err != nil {
			return err
		}
		hh := h.New()
		hh.Write(data)
		digests.Digests = append(digests.Digests, tpm2.TPMTHA{HashAlg: tpm2.TPMAlgID(b), Digest: hh.Sum(nil)})
	}
	_, err = tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcr), Auth: tpm2.PasswordAuth(nil)},
		Digests:   digests,
	}.Execute(d.t)
	return wrap20(fmt.Sprintf("TPM2_PCR_Extend(PCR %d)", pcr), err)
}

// maxRandom bounds one Random call; callers want keys, not streams.
const maxRandom = 1 << 16

func (d *tpm20) Random(n int) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.random(n)
}

func (d *tpm20) random(n int) ([]byte, error) {
	if n < 0 || n > maxRandom {
		return nil, fmt.Errorf("random: %d bytes asked, 0..%d allowed", n, maxRandom)
	}
	out := make([]byte, 0, n)
	for len(out) < n {
		// Part 3, 16.1: at most one digest's worth per call.
		want := min(n-len(out), 32)
		rsp, err := tpm2.GetRandom{BytesRequested: uint16(want)}.Execute(d.t)
		if err != nil {
			return nil, wrap20("TPM2_GetRandom", err)
		}
		if len(rsp.RandomBytes.Buffer) == 0 {
			return nil, fmt.Errorf("TPM2_GetRandom returned no bytes")
		}
		out = append(out, rsp.RandomBytes.Buffer[:min(len(rsp.RandomBytes.Buffer), n-len(out))]...)
	}
	return out, nil
}

// flush drops a transient object or session; errors are ignored because it
// runs on cleanup paths where the first error is the one worth reporting.
func (d *tpm20) flush(h tpm2.TPMHandle) {
	tpm2.FlushContext{FlushHandle: h}.Execute(d.t)
}

// property reads one TPM_PT value (Part 2, 6.13).
func (d *tpm20) property(pt tpm2.TPMPT) (uint32, error) {
	rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapTPMProperties, Property: uint32(pt), PropertyCount: 1}.Execute(d.t)
	if err != nil {
		return 0, wrap20("TPM2_GetCapability", err)
	}
	props, err := rsp.CapabilityData.Data.TPMProperties()
	if err != nil {
		return 0, err
	}
	if len(props.TPMProperty) == 0 || props.TPMProperty[0].Property != pt {
		return 0, fmt.Errorf("TPM2_GetCapability: property 0x%x not reported", uint32(pt))
	}
	return props.TPMProperty[0].Value, nil
}
