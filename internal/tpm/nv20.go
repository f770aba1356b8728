package tpm

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// NV indices are defined in the owner hierarchy with an empty index
// authorisation, readable and writable by index or owner auth, and NoDA:
// glint keeps public state there (rollback counters, hashes), never secrets,
// so the protection that matters is who can delete an index (owner) and that
// a counter can only go up (TPM_NT_COUNTER, Part 1, "NV Counter Index").

// nvHandleType is the TPM_HT_NV_INDEX handle type (Part 2, 7.2).
const nvHandleType = 0x01

func checkNVIndex(index uint32) error {
	if index>>24 != nvHandleType {
		return fmt.Errorf("NV index 0x%08x is not in the NV range 0x01000000-0x01ffffff", index)
	}
	return nil
}

// maxNVSize bounds an ordinary index; PC Client TPMs guarantee little more
// than a few KiB of NV for the owner (PC Client PTP 1.05, 3.6.4.3).
const maxNVSize = 2048

func (d *tpm20) NVDefine(space NVSpace) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := checkNVIndex(space.Index); err != nil {
		return err
	}
	attrs := tpm2.TPMANV{
		OwnerWrite: true, OwnerRead: true, AuthWrite: true, AuthRead: true, NoDA: true,
		NT: tpm2.TPMNTOrdinary,
	}
	size := space.Size
	if space.Counter {
		attrs.NT = tpm2.TPMNTCounter
		size = 8
	} else if size <= 0 || size > maxNVSize {
		return fmt.Errorf("NV index 0x%08x: size %d, want 1..%d", space.Index, size, maxNVSize)
	}
	_, err := tpm2.NVDefineSpace{
		AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(d.auth.Owner)},
		PublicInfo: tpm2.New2B(tpm2.TPMSNVPublic{
			NVIndex:    tpm2.TPMIRHNVIndex(space.Index),
			NameAlg:    tpm2.TPMAlgSHA256,
			Attributes: attrs,
			DataSize:   uint16(size),
		}),
	}.Execute(d.t)
	if err != nil {
		return hierarchyAuth("owner", wrap20(fmt.Sprintf("TPM2_NV_DefineSpace(0x%08x)", space.Index), err))
	}
	if space.Counter {
		// A counter is unreadable until first incremented; it then starts
		// at the highest value any counter on this TPM ever had (Part 1,
		// 37.2.4), so undefining and redefining cannot roll it back.
		if _, err := d.increment(space.Index); err != nil {
			return err
		}
	}
	return nil
}

func (d *tpm20) NVUndefine(index uint32) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := checkNVIndex(index); err != nil {
		return err
	}
	pub, err := d.nvPublic(index)
	if err != nil {
		return err
	}
	_, err = tpm2.NVUndefineSpace{
		AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(d.auth.Owner)},
		NVIndex:    tpm2.NamedHandle{Handle: tpm2.TPMHandle(index), Name: pub.name},
	}.Execute(d.t)
	return hierarchyAuth("owner", wrap20(fmt.Sprintf("TPM2_NV_UndefineSpace(0x%08x)", index), err))
}

type nvInfo struct {
	name tpm2.TPM2BName
	pub  *tpm2.TPMSNVPublic
}

func (d *tpm20) nvPublic(index uint32) (*nvInfo, error) {
	rsp, err := tpm2.NVReadPublic{NVIndex: tpm2.TPMHandle(index)}.Execute(d.t)
	if err != nil {
		if code, ok := rc20(err); ok && canonical(code) == rcHandle {
			return nil, fmt.Errorf("NV index 0x%08x is not defined: %w (%w)", index, ErrNotDefined, wrap20("TPM2_NV_ReadPublic", err))
		}
		return nil, wrap20(fmt.Sprintf("TPM2_NV_ReadPublic(0x%08x)", index), err)
	}
	pub, err := rsp.NVPublic.Contents()
	if err != nil {
		return nil, fmt.Errorf("NV index 0x%08x public area: %w", index, err)
	}
	return &nvInfo{name: rsp.NVName, pub: pub}, nil
}

func (d *tpm20) nvBufferMax() int {
	n, err := d.property(tpm2.TPMPTNVBufferMax)
	if err != nil || n == 0 || n > maxNVSize {
		return 512 // the smallest value seen on PC Client parts
	}
	return int(n)
}

func (d *tpm20) NVRead(index uint32) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := checkNVIndex(index); err != nil {
		return nil, err
	}
	info, err := d.nvPublic(index)
	if err != nil {
		return nil, err
	}
	return d.nvRead(index, info)
}

func (d *tpm20) nvRead(index uint32, info *nvInfo) ([]byte, error) {
	size := int(info.pub.DataSize)
	chunk := d.nvBufferMax()
	out := make([]byte, 0, size)
	for len(out) < size {
		n := min(chunk, size-len(out))
		rsp, err := tpm2.NVRead{
			AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(index), Name: info.name, Auth: tpm2.PasswordAuth(nil)},
			NVIndex:    tpm2.NamedHandle{Handle: tpm2.TPMHandle(index), Name: info.name},
			Size:       uint16(n),
			Offset:     uint16(len(out)),
		}.Execute(d.t)
		if err != nil {
			if code, ok := rc20(err); ok && canonical(code) == rcNVUninit {
				return nil, fmt.Errorf("NV index 0x%08x has never been written: %w", index, wrap20("TPM2_NV_Read", err))
			}
			return nil, wrap20(fmt.Sprintf("TPM2_NV_Read(0x%08x)", index), err)
		}
		if len(rsp.Data.Buffer) != n {
			return nil, fmt.Errorf("TPM2_NV_Read(0x%08x): asked for %d bytes, got %d", index, n, len(rsp.Data.Buffer))
		}
		out = append(out, rsp.Data.Buffer...)
	}
	return out, nil
}

// NVWrite writes data at offset 0 in a single TPM2_NV_Write, which the TPM
// completes entirely or not at all (Part 1, "NV Memory": an update is atomic per
// command). Data larger than one command can carry is refused rather than
// split, because a power cut between two chunks would leave a mix.
func (d *tpm20) NVWrite(index uint32, data []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := checkNVIndex(index); err != nil {
		return err
	}
	info, err := d.nvPublic(index)
	if err != nil {
		return err
	}
	if info.pub.Attributes.NT == tpm2.TPMNTCounter {
		return fmt.Errorf("NV index 0x%08x is a counter: use CounterIncrement", index)
	}
	if len(data) > int(info.pub.DataSize) {
		return fmt.Errorf("NV index 0x%08x holds %d bytes, %d given", index, info.pub.DataSize, len(data))
	}
	if max := d.nvBufferMax(); len(data) > max {
		return fmt.Errorf("NV index 0x%08x: %d bytes cannot be written atomically (this TPM writes at most %d per command)", index, len(data), max)
	}
	_, err = tpm2.NVWrite{
		AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(index), Name: info.name, Auth: tpm2.PasswordAuth(nil)},
		NVIndex:    tpm2.NamedHandle{Handle: tpm2.TPMHandle(index), Name: info.name},
		Data:       tpm2.TPM2BMaxNVBuffer{Buffer: data},
	}.Execute(d.t)
	return wrap20(fmt.Sprintf("TPM2_NV_Write(0x%08x)", index), err)
}

func (d *tpm20) CounterIncrement(index uint32) (uint64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := checkNVIndex(index); err != nil {
		return 0, err
	}
	return d.increment(index)
}

func (d *tpm20) increment(index uint32) (uint64, error) {
	info, err := d.nvPublic(index)
	if err != nil {
		return 0, err
	}
	if info.pub.Attributes.NT != tpm2.TPMNTCounter {
		return 0, fmt.Errorf("NV index 0x%08x is not a counter", index)
	}
	_, err = tpm2.NVIncrement{
		AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(index), Name: info.name, Auth: tpm2.PasswordAuth(nil)},
		NVIndex:    tpm2.NamedHandle{Handle: tpm2.TPMHandle(index), Name: info.name},
	}.Execute(d.t)
	if err != nil {
		return 0, wrap20(fmt.Sprintf("TPM2_NV_Increment(0x%08x)", index), err)
	}
	// The name changes once the index is written (TPMA_NV_WRITTEN).
	if info, err = d.nvPublic(index); err != nil {
		return 0, err
	}
	return d.counterValue(index, info)
}

func (d *tpm20) CounterRead(index uint32) (uint64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := checkNVIndex(index); err != nil {
		return 0, err
	}
	info, err := d.nvPublic(index)
	if err != nil {
		return 0, err
	}
	if info.pub.Attributes.NT != tpm2.TPMNTCounter {
		return 0, fmt.Errorf("NV index 0x%08x is not a counter", index)
	}
	return d.counterValue(index, info)
}

func (d *tpm20) counterValue(index uint32, info *nvInfo) (uint64, error) {
	b, err := d.nvRead(index, info)
	if err != nil {
		return 0, err
	}
	if len(b) != 8 {
		return 0, errors.New("counter index does not hold 8 bytes")
	}
	return binary.BigEndian.Uint64(b), nil
}
