// Package objects stores backups and migration files in an S3-compatible
// bucket (AWS S3, MinIO, Ceph RGW, SeaweedFS, R2), named by gocloud.dev's
// URL form: s3://bucket/prefix?endpoint=http://host:port&use_path_style=true
// &region=us-east-1, credentials from the usual AWS_* variables. Like the
// directory store, an artifact is visible only once completely written
// (a multipart upload completes at Commit, and is aborted otherwise) and is
// never overwritten.
package objects

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/s3blob" // s3:// URLs
	"gocloud.dev/gcerrors"

	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/storage/artifacts"
)

var _ release.Artifacts = (*Store)(nil)

// staleUpload is the age past which an incomplete multipart upload is a
// dead process's, aborted when a store is opened.
const staleUpload = 24 * time.Hour

// PartSize is each part of a multipart upload; uploadConcurrency parts
// are sent at once. Together they bound what an upload holds in memory.
const (
	PartSize          = 8 << 20
	uploadConcurrency = 2
)

// IsURL says whether s names a bucket rather than a directory.
func IsURL(s string) bool { return strings.HasPrefix(s, "s3://") }

// Store is a release.Artifacts in a bucket, under the URL's path as prefix.
type Store struct {
	bucket *blob.Bucket
	// client, name and prefix reach what the blob package does not: the
	// multipart uploads an aborted upload leaves.
	client *s3.Client
	name   string
	prefix string
	where  string // the URL without its query, for messages
}

// Open opens the bucket rawURL names and checks it answers.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return nil, release.Errorf(release.CodeInvalid, "artifact store %q: want s3://bucket[/prefix]?endpoint=…", redact(rawURL))
	}
	prefix := strings.Trim(u.Path, "/")
	u.Path = ""
	q := u.Query()
	// relbot checks every chunk of its archives itself; the SDK's own
	// checksums only where S3 requires them, as S3-compatible stores expect.
	for _, k := range []string{"request_checksum_calculation", "response_checksum_validation"} {
		if !q.Has(k) {
			q.Set(k, "when_required")
		}
	}
	u.RawQuery = q.Encode()
	b, err := blob.OpenBucket(ctx, u.String())
	if err != nil {
		msg := strings.ReplaceAll(oneLine(err), u.String(), redact(u.String()))
		return nil, &release.Error{Code: release.CodeInvalid, Message: fmt.Sprintf("artifact store %s: %s", redact(rawURL), msg), Err: err}
	}
	var client *s3.Client
	if !b.As(&client) {
		b.Close()
		return nil, release.Errorf(release.CodeInternal, "artifact store %s: no S3 client behind the bucket", redact(rawURL))
	}
	if prefix != "" {
		prefix += "/"
		b = blob.PrefixedBucket(b, prefix)
	}
	s := &Store{bucket: b, client: client, name: u.Host, prefix: prefix, where: "s3://" + u.Host + "/" + prefix}
	if _, err := b.IsAccessible(ctx); err != nil {
		b.Close()
		return nil, &release.Error{Code: release.CodeUnavailable, Message: fmt.Sprintf("the artifact store %s does not answer: %s", s.where, oneLine(err)), Err: err}
	}
	// Uploads of a process that died mid-write are unseen but stored: a
	// day on, no live upload is theirs.
	if err := s.abortUploads("", time.Now().Add(-staleUpload)); err != nil {
		slog.Default().Warn("artifact store: stale multipart uploads not aborted", "store", s.where, "err", err)
	}
	return s, nil
}

// Close releases the bucket's client.
func (s *Store) Close() error { return s.bucket.Close() }

// Create starts an upload of name; it fails at once when name exists.
func (s *Store) Create(ctx context.Context, name string) (release.ArtifactWriter, error) {
	if err := artifacts.CheckName(name); err != nil {
		return nil, err
	}
	ok, err := s.bucket.Exists(ctx, name)
	if err != nil {
		return nil, s.failed(name, err)
	}
	if ok {
		return nil, existsError(name)
	}
	// The upload lives in its own context: cancelling it before Close is
	// what aborts a multipart upload.
	uctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w, err := s.bucket.NewWriter(uctx, name, &blob.WriterOptions{
		BufferSize: PartSize, MaxConcurrency: uploadConcurrency,
		ContentType: "application/octet-stream", IfNotExist: true, DisableContentTypeDetection: true,
	})
	if err != nil {
		cancel()
		return nil, s.failed(name, err)
	}
	return &writer{s: s, w: w, cancel: cancel, name: name}, nil
}

type writer struct {
	s      *Store
	w      *blob.Writer
	cancel context.CancelFunc
	name   string
	done   bool
	err    error // the first write error: the upload is then aborted
}

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("artifact %s: write after commit or abort", w.name)
	}
	n, err := w.w.Write(p)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}

// Commit completes the upload: the object appears whole, or not at all.
func (w *writer) Commit() error {
	if w.done {
		return fmt.Errorf("artifact %s: already committed or aborted", w.name)
	}
	w.done = true
	defer w.cancel()
	if w.err != nil {
		w.cancel()
		_ = w.w.Close()
		_ = w.s.abortUploads(w.name, time.Time{})
		return w.s.failed(w.name, w.err)
	}
	if err := w.w.Close(); err != nil {
		_ = w.s.abortUploads(w.name, time.Time{})
		if gcerrors.Code(err) == gcerrors.FailedPrecondition {
			return existsError(w.name) // another upload of the name completed first
		}
		return w.s.failed(w.name, err)
	}
	return nil
}

// Abort discards the upload; a no-op after Commit.
func (w *writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.cancel()
	_ = w.w.Close() // reports the cancellation
	return w.s.abortUploads(w.name, time.Time{})
}

// abortUploads aborts the incomplete multipart uploads of name (every
// name when empty) begun before before (any time when zero): the upload
// manager, cancelled, leaves its parts in the bucket, unseen but stored.
// An artifact name is written by one upload at a time (its ID is
// allocated), so those of name are the aborted writer's.
func (s *Store) abortUploads(name string, before time.Time) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String(s.name), Prefix: aws.String(s.prefix + name)}
	for {
		out, err := s.client.ListMultipartUploads(ctx, in)
		if err != nil {
			return s.failed(name, err)
		}
		for _, up := range out.Uploads {
			if (name != "" && aws.ToString(up.Key) != s.prefix+name) || (!before.IsZero() && !aws.ToTime(up.Initiated).Before(before)) {
				continue
			}
			if _, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(s.name), Key: up.Key, UploadId: up.UploadId}); err != nil {
				return s.failed(aws.ToString(up.Key), err)
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			return nil
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

// Open opens a committed artifact for random access by ranged reads.
func (s *Store) Open(ctx context.Context, name string) (release.Artifact, error) {
	if err := artifacts.CheckName(name); err != nil {
		return nil, err
	}
	attrs, err := s.bucket.Attributes(ctx, name)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, notFoundError(name)
		}
		return nil, s.failed(name, err)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	return &object{s: s, name: name, size: attrs.Size, ctx: rctx, cancel: cancel}, nil
}

// maxStreams bounds the open ranged reads an artifact keeps for the
// readers that go on where they stopped (a restore's workers each read
// their own members in order).
const maxStreams = 4

// object reads an artifact by ranges. A read that starts where an earlier
// one ended goes on with that one's stream instead of a new request, so
// a sequential reader makes one request however small its reads.
type object struct {
	s      *Store
	name   string
	size   int64
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	streams []*stream // idle, most recent last
}

type stream struct {
	r    *blob.Reader
	next int64 // the offset its next byte is at
}

func (o *object) Size() int64 { return o.size }

func (o *object) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("artifact %s: negative offset", o.name)
	}
	if off >= o.size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), o.size-off)
	st, err := o.take(off)
	if err != nil {
		return 0, err
	}
	n, err := io.ReadFull(st.r, p[:want])
	st.next += int64(n)
	if err != nil {
		st.r.Close()
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			err = fmt.Errorf("artifact %s: ended at %d of its %d bytes", o.name, off+int64(n), o.size)
		}
		return n, o.s.failed(o.name, err)
	}
	o.put(st)
	if want < int64(len(p)) {
		return n, io.EOF
	}
	return n, nil
}

// take finds the idle stream at off, or opens one from off to the end.
func (o *object) take(off int64) (*stream, error) {
	o.mu.Lock()
	for i, st := range o.streams {
		if st.next == off {
			o.streams = append(o.streams[:i], o.streams[i+1:]...)
			o.mu.Unlock()
			return st, nil
		}
	}
	o.mu.Unlock()
	r, err := o.s.bucket.NewRangeReader(o.ctx, o.name, off, -1, nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, notFoundError(o.name)
		}
		return nil, o.s.failed(o.name, err)
	}
	return &stream{r: r, next: off}, nil
}

func (o *object) put(st *stream) {
	if st.next >= o.size {
		st.r.Close()
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.streams = append(o.streams, st)
	if len(o.streams) > maxStreams {
		o.streams[0].r.Close()
		o.streams = o.streams[1:]
	}
}

func (o *object) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, st := range o.streams {
		st.r.Close()
	}
	o.streams = nil
	o.cancel()
	return nil
}

// Remove deletes a committed artifact, or returns CodeNotFound.
func (s *Store) Remove(ctx context.Context, name string) error {
	if err := artifacts.CheckName(name); err != nil {
		return err
	}
	ok, err := s.bucket.Exists(ctx, name)
	if err != nil {
		return s.failed(name, err)
	}
	if !ok {
		return notFoundError(name)
	}
	if err := s.bucket.Delete(ctx, name); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return s.failed(name, err)
	}
	return nil
}

// failed says what the store answered, in one line, naming the artifact.
func (s *Store) failed(name string, err error) error {
	if release.ErrorCode(err) != release.CodeInternal {
		return err
	}
	code := release.CodeUnavailable
	if gcerrors.Code(err) == gcerrors.PermissionDenied {
		code = release.CodeForbidden
	}
	return &release.Error{Code: code, Message: fmt.Sprintf("artifact %s in %s: %s", name, s.where, oneLine(err)), Err: err}
}

func existsError(name string) error {
	return release.Errorf(release.CodeConflict, "artifact %s already exists; artifacts are never overwritten", name)
}

func notFoundError(name string) error {
	return release.Errorf(release.CodeNotFound, "no artifact %s", name)
}

// redact drops a URL's query and user info (they may hold keys) for messages.
func redact(raw string) string {
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i]
	}
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		u.User = nil
		return u.String()
	}
	return raw
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// List calls fn for every committed artifact, in name order.
func (s *Store) List(ctx context.Context, fn func(name string, size int64) error) error {
	it := s.bucket.List(nil)
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return s.failed("(listing)", err)
		}
		if obj.IsDir {
			continue
		}
		if err := fn(obj.Key, obj.Size); err != nil {
			return err
		}
	}
}

// Ready says whether the bucket answers.
func (s *Store) Ready(ctx context.Context) error {
	if _, err := s.bucket.IsAccessible(ctx); err != nil {
		return s.failed("(the bucket)", err)
	}
	return nil
}
