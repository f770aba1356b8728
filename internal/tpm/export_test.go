package tpm

import "testing"

// SkipEpochPrecheck switches off the Go comparison in front of PolicyNV
// for one test, to show that the TPM refuses a passed epoch by itself.
func SkipEpochPrecheck(t testing.TB) {
	epochPrecheck = false
	t.Cleanup(RestoreEpochPrecheck)
}

// RestoreEpochPrecheck switches it on again.
func RestoreEpochPrecheck() { epochPrecheck = true }
