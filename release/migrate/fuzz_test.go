package migrate

import (
	"crypto/hmac"
	"crypto/sha256"
	"io"
	"os"
	"testing"
)

// sealed signs body as relbot does, so the fuzzer reaches the parts of
// the reader behind the signature check.
func sealed(body []byte) []byte {
	h := sha256.Sum256(body)
	mac := hmac.New(sha256.New, testKey)
	mac.Write(h[:])
	return append(append(append([]byte{}, body...), sigMagic...), mac.Sum(nil)...)
}

// The migration file reader takes any bytes without panicking: as they
// are (the signature check), and signed (its archive, manifest and rows).
// The seed is a real migration file of the sample app.
func FuzzMigrationFile(f *testing.F) {
	file, err := os.ReadFile("testdata/crm-m1.relbot")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(file[:len(file)-sigSize]) // its body: fuzzed, then signed
	f.Add([]byte(sigMagic))
	e := &Engine{SigningKey: testKey}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = e.Open(reader(b))
		mf, err := e.Open(reader(sealed(b)))
		if err != nil {
			return
		}
		_ = mf.Summary()
		for _, td := range mf.Meta.Tables {
			if r, err := mf.Rows(td); err == nil {
				_, _ = io.Copy(io.Discard, r)
			}
		}
	})
}
