// Package diceware makes passphrases and PINs a person can write down and
// type on a boot console: words from the EFF large word list (7776 words,
// 12.9 bits each; https://www.eff.org/dice), drawn uniformly with a
// cryptographic random source, joined by '-'.
//
// The re-ownership wizard offers them for the card's user and admin PINs,
// the backup's passphrase and the TPM owner passphrase, as Heads' OEM
// factory reset offers Diceware PINs. Strength is the number of words:
//
//	words  bits   use
//	  2    25.8   card user PIN (3 tries, then blocked)
//	  3    38.8   card admin PIN (3 tries, then the card must be reset)
//	  6    77.5   a passphrase guarded by nothing else (an encrypted key file)
//
// The result is a []byte the caller wipes (package secret).
package diceware

import (
	"bytes"
	"crypto/rand"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync"
)

//go:embed eff_large_wordlist.txt
var listText []byte

// ListSize is the number of words: 6^5, one per roll of five dice.
const ListSize = 7776

var (
	once  sync.Once
	words [][]byte
)

func list() [][]byte {
	once.Do(func() {
		for _, w := range bytes.Split(listText, []byte("\n")) {
			if len(w) == 0 || w[0] == '#' {
				continue
			}
			words = append(words, w)
		}
	})
	return words
}

// Words returns n words from rnd (crypto/rand.Reader when nil) joined by
// '-'. The caller wipes the result.
func Words(rnd io.Reader, n int) ([]byte, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	l := list()
	if len(l) != ListSize {
		return nil, fmt.Errorf("diceware: the embedded list has %d words, want %d", len(l), ListSize)
	}
	if n < 1 || n > 32 {
		return nil, errors.New("diceware: between 1 and 32 words")
	}
	var out []byte
	max := big.NewInt(ListSize)
	for i := 0; i < n; i++ {
		k, err := rand.Int(rnd, max)
		if err != nil {
			return nil, fmt.Errorf("diceware: %w", err)
		}
		if i > 0 {
			out = append(out, '-')
		}
		out = append(out, l[k.Int64()]...)
	}
	return out, nil
}

// Bits is the strength of n words.
func Bits(n int) float64 { return float64(n) * 12.92 }

// Digits returns n random decimal digits (a numeric PIN, for cards whose
// PIN may not be long enough for words).
func Digits(rnd io.Reader, n int) ([]byte, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	out := make([]byte, n)
	ten := big.NewInt(10)
	for i := range out {
		k, err := rand.Int(rnd, ten)
		if err != nil {
			return nil, fmt.Errorf("diceware: %w", err)
		}
		out[i] = byte('0' + k.Int64())
	}
	return out, nil
}
