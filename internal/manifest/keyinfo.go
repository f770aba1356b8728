package manifest

// Fingerprint is the signing key's primary-key fingerprint, so a caller can
// check the key is one of the owner keys before using it.
func (k *KeySigner) Fingerprint() []byte {
	return k.entity.PrimaryKey.Fingerprint
}
