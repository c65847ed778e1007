package artifacts

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/relbot/relbot/release"
)

// Lister is a store whose artifacts can be listed: the source of Migrate.
type Lister interface {
	release.Artifacts
	List(ctx context.Context, fn func(name string, size int64) error) error
}

// MigrateReport says what Migrate did.
type MigrateReport struct {
	Artifacts int   // in the source
	Copied    int   // written to the target
	Present   int   // in the target already, with the same bytes
	Bytes     int64 // copied
}

// Migrate copies every artifact of from into to, streaming, and reads each
// copy back to check its SHA-256 against the source's. An artifact the
// target holds already is checked the same way and left as it is. It stops
// at the first artifact whose copy differs, naming it; it can be run again
// (what was copied is then found present).
func Migrate(ctx context.Context, from Lister, to release.Artifacts, progress func(name string, size int64, what string)) (MigrateReport, error) {
	var rep MigrateReport
	err := from.List(ctx, func(name string, size int64) error {
		rep.Artifacts++
		w, err := to.Create(ctx, name)
		switch {
		case release.ErrorCode(err) == release.CodeConflict:
			src, err := hashOf(ctx, from, name)
			if err != nil {
				return err
			}
			dst, err := hashOf(ctx, to, name)
			if err != nil {
				return err
			}
			if !bytes.Equal(dst, src) {
				return release.Errorf(release.CodeConflict, "artifact %s is in the target already with other bytes (sha256 %x, the source's %x): nothing of it was changed; move it aside and run again", name, dst, src)
			}
			rep.Present++
			progress(name, size, "present, same sha256")
			return nil
		case err != nil:
			return err
		}
		src, err := copyInto(ctx, from, name, w)
		if err != nil {
			return err
		}
		dst, err := hashOf(ctx, to, name)
		if err != nil {
			return err
		}
		if !bytes.Equal(dst, src) {
			return release.Errorf(release.CodeDamaged, "artifact %s was copied, but the copy reads back as sha256 %x, not the source's %x", name, dst, src)
		}
		rep.Copied++
		rep.Bytes += size
		progress(name, size, "copied, sha256 checked")
		return nil
	})
	return rep, err
}

// copyInto streams name into w and returns the SHA-256 of what it read.
func copyInto(ctx context.Context, from release.Artifacts, name string, w release.ArtifactWriter) ([]byte, error) {
	a, err := from.Open(ctx, name)
	if err != nil {
		_ = w.Abort()
		return nil, err
	}
	defer a.Close()
	h := sha256.New()
	if _, err := io.Copy(w, io.TeeReader(io.NewSectionReader(a, 0, a.Size()), h)); err != nil {
		_ = w.Abort()
		return nil, fmt.Errorf("copy %s: %w", name, err)
	}
	return h.Sum(nil), w.Commit()
}

func hashOf(ctx context.Context, s release.Artifacts, name string) ([]byte, error) {
	a, err := s.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(a, 0, a.Size())); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return h.Sum(nil), nil
}
