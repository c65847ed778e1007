package migrate

import (
	"crypto/hkdf"
	"crypto/sha256"
)

// SigningKey derives the key that signs migration files from relbot's
// secret key, so the two uses never share key material directly.
func SigningKey(secretKey []byte) []byte {
	if len(secretKey) == 0 {
		return nil
	}
	k, err := hkdf.Key(sha256.New, secretKey, nil, "relbot migration file signature", 32)
	if err != nil {
		return nil
	}
	return k
}
