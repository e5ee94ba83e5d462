// Package storetest checks that a store keeps the contract written on
// uploaders.Store, against the real thing: go test runs it on the file
// store, and integration/ on MinIO, Azurite and fake-gcs-server, so a new
// provider proves itself by running it too.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path"
	"slices"
	"sync"
	"testing"

	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// Suite is the conformance suite of one provider.
type Suite struct {
	// Open returns a store whose prefix holds no object, in an existing
	// bucket. The suite closes it.
	Open func(t *testing.T) uploaders.Store
	// OpenMissing returns a store on a bucket that does not exist; nil
	// skips that check.
	OpenMissing func(t *testing.T) uploaders.Store
}

// Run checks the contract. Every check leaves the prefix as empty as it
// found it, and checks that it did: a part or temporary object left by a
// multipart upload is an error.
func (s Suite) Run(t *testing.T) {
	ctx := context.Background()
	st := s.Open(t)
	c := &checker{st: st, root: path.Join(st.Prefix(), "storetest")}
	for _, check := range []struct {
		name string
		run  func(context.Context, *testing.T)
	}{
		{"Limits", c.limits},
		{"Test", c.test},
		{"PutGet", c.putGet},
		{"Create", c.create},
		{"Delete", c.delete},
		{"List", c.list},
		{"MultipartOutOfOrder", c.multipart},
		{"MultipartAbort", c.abort},
	} {
		t.Run(check.name, func(t *testing.T) {
			check.run(ctx, t)
			if keys, err := st.List(ctx, listPrefix(st.Prefix())); err != nil || len(keys) != 0 {
				t.Errorf("left behind under %q: %v (list error %v)", st.Prefix(), keys, err)
			}
		})
	}
	if s.OpenMissing != nil {
		t.Run("BucketMissing", func(t *testing.T) {
			missing := s.OpenMissing(t)
			defer missing.Close()
			if err := missing.Test(ctx); !errors.Is(err, uploaders.ErrBucketMissing) {
				t.Errorf("Test on a missing bucket: %v, want ErrBucketMissing", err)
			}
		})
	}
	if err := st.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// listPrefix lists a whole store prefix: the folder, not its siblings
// whose names merely start the same.
func listPrefix(prefix string) string {
	if prefix == "" {
		return ""
	}
	return prefix + "/"
}

type checker struct {
	st   uploaders.Store
	root string
}

func (c *checker) key(name string) string { return path.Join(c.root, name) }

func (c *checker) mustGet(ctx context.Context, t *testing.T, key string, want []byte) {
	t.Helper()
	got, err := c.st.Get(ctx, key)
	if err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get %s: %d bytes, not the %d stored", key, len(got), len(want))
	}
}

func (c *checker) cleanup(ctx context.Context, t *testing.T, keys ...string) {
	for _, k := range keys {
		if err := c.st.Delete(ctx, k); err != nil {
			t.Errorf("Delete %s: %v", k, err)
		}
	}
}

func (c *checker) limits(_ context.Context, t *testing.T) {
	l := c.st.Limits()
	if l.MinPartSize <= 0 || l.MaxParts <= 0 || l.MaxObjectSize <= 0 {
		t.Fatalf("limits %+v: every limit must be positive", l)
	}
	// The engine sizes parts at MaxObjectSize/MaxParts at most: that must
	// be a part size the store takes.
	if l.MaxObjectSize/int64(l.MaxParts) < l.MinPartSize {
		t.Errorf("limits %+v: an object of MaxObjectSize needs parts below MinPartSize", l)
	}
}

func (c *checker) test(ctx context.Context, t *testing.T) {
	if err := c.st.Test(ctx); err != nil {
		t.Errorf("Test on an existing bucket: %v", err)
	}
}

func (c *checker) putGet(ctx context.Context, t *testing.T) {
	k, empty := c.key("put/object"), c.key("put/empty")
	defer c.cleanup(ctx, t, k, empty)
	for _, data := range [][]byte{[]byte("first version"), []byte("second, longer version replaces it")} {
		if err := c.st.Put(ctx, k, data); err != nil {
			t.Fatalf("Put %s: %v", k, err)
		}
		c.mustGet(ctx, t, k, data)
	}
	if err := c.st.Put(ctx, empty, nil); err != nil {
		t.Fatalf("Put of an empty object: %v", err)
	}
	c.mustGet(ctx, t, empty, nil)
	if _, err := c.st.Get(ctx, c.key("put/missing")); err == nil {
		t.Error("Get of a missing key succeeded")
	}
}

func (c *checker) create(ctx context.Context, t *testing.T) {
	k, raced := c.key("create/lock"), c.key("create/raced")
	defer c.cleanup(ctx, t, k, raced)
	if err := c.st.Create(ctx, k, []byte("mine")); err != nil {
		t.Fatalf("Create of a free key: %v", err)
	}
	if err := c.st.Create(ctx, k, []byte("theirs")); !errors.Is(err, uploaders.ErrExists) {
		t.Fatalf("second Create: %v, want ErrExists", err)
	}
	c.mustGet(ctx, t, k, []byte("mine"))
	// Two runs taking one backup ID at once: exactly one wins.
	const racers = 6
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.st.Create(ctx, raced, fmt.Appendf(nil, "racer %d", i))
		}()
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
			c.mustGet(ctx, t, raced, fmt.Appendf(nil, "racer %d", i))
		case !errors.Is(err, uploaders.ErrExists):
			t.Errorf("racer %d: %v, want nil or ErrExists", i, err)
		}
	}
	if won != 1 {
		t.Errorf("%d of %d concurrent Creates succeeded, want 1", won, racers)
	}
}

func (c *checker) delete(ctx context.Context, t *testing.T) {
	k := c.key("delete/object")
	if err := c.st.Put(ctx, k, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := c.st.Delete(ctx, k); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := c.st.Get(ctx, k); err == nil {
		t.Error("Get after Delete succeeded")
	}
	if err := c.st.Delete(ctx, k); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
}

func (c *checker) list(ctx context.Context, t *testing.T) {
	want := []string{c.key("list/a/1"), c.key("list/a/2"), c.key("list/a/sub/3")}
	other := c.key("list/ab") // shares the prefix's letters, not its folder
	defer c.cleanup(ctx, t, append(want, other)...)
	for _, k := range append(want, other) {
		if err := c.st.Put(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.st.List(ctx, c.key("list/a")+"/")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("List %s/ = %v, want %v", c.key("list/a"), got, want)
	}
}

// parts are MinPartSize-byte random parts and a shorter last one.
func (c *checker) parts(n int) [][]byte {
	size := c.st.Limits().MinPartSize
	parts := make([][]byte, n)
	for i := range parts {
		parts[i] = make([]byte, size)
		if i == n-1 {
			parts[i] = parts[i][:size/3+1]
		}
		rand.Read(parts[i])
	}
	return parts
}

// upload sends the parts in the given order, concurrently.
func upload(ctx context.Context, mp uploaders.Multipart, parts [][]byte, order []int) error {
	offsets := make([]int64, len(parts)+1)
	for i, p := range parts {
		offsets[i+1] = offsets[i] + int64(len(p))
	}
	errs := make(chan error, len(order))
	for _, n := range order {
		go func() { errs <- mp.Upload(ctx, uploaders.Part{Number: n, Offset: offsets[n-1], Data: parts[n-1]}) }()
	}
	var err error
	for range order {
		err = errors.Join(err, <-errs)
	}
	return err
}

func (c *checker) multipart(ctx context.Context, t *testing.T) {
	k := c.key("multipart/data.tar")
	defer c.cleanup(ctx, t, k)
	parts := c.parts(4)
	mp, err := c.st.NewMultipart(ctx, k)
	if err != nil {
		t.Fatalf("NewMultipart: %v", err)
	}
	if err := upload(ctx, mp, parts, []int{3, 1, 4, 2}); err != nil {
		mp.Abort(ctx)
		t.Fatalf("Upload: %v", err)
	}
	if keys, _ := c.st.List(ctx, c.key("multipart")+"/"); len(keys) != 0 {
		t.Errorf("before Complete, List shows %v", keys)
	}
	if done, err := mp.Completed(ctx); err != nil || done {
		t.Errorf("Completed before Complete = %v, %v", done, err)
	}
	if err := mp.Complete(ctx); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	c.mustGet(ctx, t, k, bytes.Join(parts, nil))
	if done, err := mp.Completed(ctx); err != nil || !done {
		t.Errorf("Completed after Complete = %v, %v", done, err)
	}
	if keys, err := c.st.List(ctx, listPrefix(c.st.Prefix())); err != nil || !slices.Equal(keys, []string{k}) {
		t.Errorf("after Complete the store holds %v (%v), want only %s", keys, err, k)
	}
}

func (c *checker) abort(ctx context.Context, t *testing.T) {
	k := c.key("abort/data.tar")
	mp, err := c.st.NewMultipart(ctx, k)
	if err != nil {
		t.Fatalf("NewMultipart: %v", err)
	}
	if err := upload(ctx, mp, c.parts(3), []int{2, 1}); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if err := mp.Abort(ctx); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if _, err := c.st.Get(ctx, k); err == nil {
		t.Error("the aborted object can be read")
	}
}
