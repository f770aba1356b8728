package pcr

import (
	"sort"

	"github.com/glint-boot/glint/internal/tpm"
)

// Measurement is one extension glint makes: Data is hashed with the bank's
// algorithm and the digest extended into PCR (TPM2_PCR_Event semantics,
// which is what tpm.TPM.Extend does). Description is what the event is
// called in glint's event list, in sealed records and in explanations.
type Measurement struct {
	PCR         int
	Description string
	Data        []byte
}

// Digest is what extending m puts into a PCR of bank: the hash of Data.
func (m Measurement) Digest(bank tpm.Alg) []byte { return Measure(bank, m.Data) }

// OwnerFiles lists what glint measures of the owner's firmware files
// (CBFS glint/*, or the payload's /etc/glint on machines without CBFS),
// in the order it measures them: for each file in name order, its name and
// then its content, both into PCR 7 (as Heads' cbfs-init measures CBFS
// files). The boot flow extends exactly these; "glint rom predict" replays
// them to say what PCR 7 will hold with a personalised image.
func OwnerFiles(files map[string][]byte) []Measurement {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]Measurement, 0, 2*len(names))
	for _, n := range names {
		out = append(out,
			Measurement{PCR: Config, Description: "owner file name " + n, Data: []byte(n)},
			Measurement{PCR: Config, Description: "owner file " + n, Data: files[n]})
	}
	return out
}

// ReplayOnto extends the measurements of one PCR onto start (a PCR value,
// nil for the reset value) and returns the result: the value the PCR holds
// after glint made them. Measurements of other PCRs are skipped.
func ReplayOnto(bank tpm.Alg, index int, start []byte, ms []Measurement) []byte {
	v := start
	if v == nil {
		v = Zero(bank)
	}
	for _, m := range ms {
		if m.PCR == index {
			v = Extend(bank, v, m.Digest(bank))
		}
	}
	return v
}
