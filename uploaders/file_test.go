package uploaders

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFileStoreObjects(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "not", "yet")
	s, err := NewFileStore(root)
	if err != nil {
		t.Fatal(err)
	}
	// A missing root is a missing bucket: never created, for every
	// request, so an unmounted path cannot fill the local disk.
	var missing *BucketMissingError
	if err := s.Test(ctx); !errors.As(err, &missing) || missing.Bucket != root {
		t.Fatalf("missing root: %v", err)
	}
	if err := s.Create(ctx, "srv/base/ID.lock", nil); !errors.Is(err, ErrBucketMissing) {
		t.Fatalf("create under a missing root: %v", err)
	}
	if _, err := s.NewMultipart(ctx, "srv/base/ID/data.tar"); !errors.Is(err, ErrBucketMissing) {
		t.Fatalf("multipart under a missing root: %v", err)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := s.Test(ctx); err != nil {
		t.Fatalf("existing root: %v", err)
	}
	if err := s.Put(ctx, "srv/base/ID/backup.info", []byte("status=DONE\n")); err != nil {
		t.Fatal(err)
	}
	mp, err := s.NewMultipart(ctx, "srv/base/ID/data.tar")
	if err != nil {
		t.Fatal(err)
	}
	// Parts arrive out of order from parallel workers.
	if err := mp.Upload(ctx, Part{Number: 2, Offset: 3, Data: []byte("def")}); err != nil {
		t.Fatal(err)
	}
	if err := mp.Upload(ctx, Part{Number: 1, Data: []byte("abc")}); err != nil {
		t.Fatal(err)
	}
	keys, _ := s.List(ctx, "srv/")
	if strings.Join(keys, ",") != "srv/base/ID/backup.info" {
		t.Errorf("an unfinished object is visible: %v", keys)
	}
	if err := mp.Complete(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(root, "srv/base/ID/data.tar"))
	if string(got) != "abcdef" {
		t.Errorf("data.tar = %q", got)
	}
	aborted, _ := s.NewMultipart(ctx, "srv/base/ID/16384.tar")
	aborted.Upload(ctx, Part{Number: 1, Data: []byte("x")})
	if err := aborted.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(root, "srv/base/ID"))
	if len(entries) != 2 {
		t.Errorf("after abort the folder holds %d entries, want 2", len(entries))
	}
}

func TestFileStoreUnreachable(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o600)
	s, _ := NewFileStore(filepath.Join(f, "sub"))
	if err := s.Test(context.Background()); !errors.Is(err, ErrUnreachable) {
		t.Errorf("a root under a regular file: %v", err)
	}
}

func TestNewRejectsBadURLs(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "k")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s")
	for url, msg := range map[string]string{
		"s4://b/p":            "Invalid s3 URL address: s4://b/p",
		"s3:///p":             "Invalid s3 URL address",
		"file://host/p":       "only local paths",
		"file://":             "not an absolute path",
		"https://x.example/c": "Invalid s3 URL address",
	} {
		_, err := New(context.Background(), url, Options{Provider: "aws-s3"})
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("New(%q) = %v, want %q", url, err, msg)
		}
	}
	if _, err := New(context.Background(), "s3://b/p", Options{EndpointURL: "ftp://x"}); err == nil {
		t.Error("a non-http endpoint was accepted")
	}
	s, err := New(context.Background(), "s3://bucket/a/b", Options{EndpointURL: "http://127.0.0.1:9"})
	if err != nil || s.Prefix() != "a/b" {
		t.Errorf("New(s3://bucket/a/b) = %v, %v", s, err)
	}
}

func TestMissingCredentials(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	_, err := New(context.Background(), "s3://b/p", Options{EndpointURL: "http://127.0.0.1:9"})
	if err == nil || !strings.HasPrefix(err.Error(), "Unable to locate credentials (profile default)") {
		t.Errorf("got %v", err)
	}
}

func TestS3RejectsTagsS3Would(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "k")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s")
	_, err := New(context.Background(), "s3://b/p", Options{EndpointURL: "http://127.0.0.1:9", Tags: [][2]string{{"note", "a,b"}}})
	if err == nil || !strings.Contains(err.Error(), "invalid --tags") {
		t.Errorf("a comma in a tag value: %v", err)
	}
	if _, err := New(context.Background(), "s3://b/p", Options{EndpointURL: "http://127.0.0.1:9", Tags: [][2]string{{"team", "dba ops/1"}}}); err != nil {
		t.Errorf("valid tags: %v", err)
	}
}
