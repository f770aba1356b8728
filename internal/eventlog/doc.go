// Package eventlog reads, explains and replays firmware measurement logs.
//
// A TPM only holds PCR values: hashes of hashes. The event log is the
// firmware's account of what it extended, in order. The log itself is not
// protected, so glint never trusts it on its own: it replays the log's
// digests and compares the result with the TPM (Verify). Only a log that
// reproduces the live PCRs may be used to explain them, e.g. to tell the
// owner "PCR 2: fallback/payload changed" when a sealed secret no longer
// unseals (Records + Diff).
//
// Formats (one Log model for all):
//
//   - TCG SHA-1 format (TPM 1.2): TCG_PCR_EVENT records; TCG PC Client
//     Specific Implementation Specification for Conventional BIOS 1.21,
//     section 11, and PC Client Platform Firmware Profile (PFP) 1.05,
//     10.2.1.
//   - TCG crypto-agile format (TPM 2.0): a SHA-1-format "Spec ID Event03"
//     (PFP 1.05, 10.4.5.1) listing the banks and digest sizes, then
//     TCG_PCR_EVENT2 records with one digest per bank (PFP 1.05, 10.2.2).
//     This is what Linux shows in
//     /sys/kernel/security/tpm0/binary_bios_measurements.
//   - coreboot's cbmem logs, found through the coreboot tables (LBIO) in
//     physical memory: coreboot 4.15's own "TCPA" table, and the TCG formats
//     newer coreboot writes into cbmem (CBMEM_ID_TPM2_TCG_LOG,
//     CBMEM_ID_TCPA_TCG_LOG).
//
// Every parser treats its input as hostile: each declared length is checked
// against the bytes left and an absolute cap (MaxLogSize, MaxEventDataSize,
// MaxDigestCount, MaxEvents) before anything is allocated, and errors are
// *ParseError with the byte offset and field.
//
// Example:
//
//	log, err := eventlog.ReadFirmwareLog()   // securityfs, else cbmem
//	if err != nil { ... }
//	pcrs, _ := t.ReadPCRs(tpm.SHA256, []int{0, 1, 2, 3, 4, 5, 6, 7})
//	if err := log.Verify(tpm.SHA256, pcrs); err != nil {
//		// *ReplayError: which PCRs, and the event that explains each
//	}
//	stored := log.Records(tpm.SHA256)         // keep beside a sealed secret
//	...
//	old, _ := eventlog.FromRecords(stored)
//	fmt.Println(eventlog.Explain(eventlog.Diff(old, log)))
package eventlog
