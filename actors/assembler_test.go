package actors

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// chunk runs a chunker of part size 4 over one object written in the
// given pieces, and describes the jobs it emits.
func chunk(t *testing.T, pieces ...string) []string {
	t.Helper()
	var got []string
	c := &chunker{
		size:   4,
		newBuf: func() ([]byte, error) { return make([]byte, 0, 4), nil },
		emit: func(j *uploadJob) error {
			switch {
			case j.complete:
				got = append(got, "complete")
			case j.single:
				got = append(got, fmt.Sprintf("single %q", j.data))
			default:
				got = append(got, fmt.Sprintf("part %d @%d %q", j.number, j.offset, j.data))
			}
			return nil
		},
	}
	obj := &object{key: "k"}
	c.start(obj)
	for _, p := range pieces {
		if err := c.write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.end(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(strings.Join(got, "\n"), "part "); obj.parts != n {
		t.Errorf("object counts %d parts, %d were emitted", obj.parts, n)
	}
	return got
}

func TestChunkerCutsEqualParts(t *testing.T) {
	for _, c := range []struct {
		pieces []string
		want   []string
	}{
		// Pieces cross part boundaries; the last part is short.
		{[]string{"abc", "defgh", "ij"}, []string{`part 1 @0 "abcd"`, `part 2 @4 "efgh"`, `part 3 @8 "ij"`, "complete"}},
		// An exact multiple: no empty last part.
		{[]string{"abcdefgh"}, []string{`part 1 @0 "abcd"`, `part 2 @4 "efgh"`, "complete"}},
		// Smaller than a part, or exactly one: one request, no multipart.
		{[]string{"ab", "c"}, []string{`single "abc"`}},
		{[]string{"abcd"}, []string{`part 1 @0 "abcd"`, "complete"}},
		// An empty volume is still an object.
		{nil, []string{`single ""`}},
		{[]string{"", ""}, []string{`single ""`}},
	} {
		if got := chunk(t, c.pieces...); !slices.Equal(got, c.want) {
			t.Errorf("%q:\n got %q\nwant %q", c.pieces, got, c.want)
		}
	}
}

// Objects follow one another through one chunker; numbering and offsets
// restart, and a buffer handed on is never written again.
func TestChunkerStartsEachObjectAfresh(t *testing.T) {
	var jobs []*uploadJob
	c := &chunker{size: 3, newBuf: func() ([]byte, error) { return make([]byte, 0, 3), nil },
		emit: func(j *uploadJob) error { jobs = append(jobs, j); return nil }}
	first, second := &object{key: "a"}, &object{key: "b"}
	c.start(first)
	c.write([]byte("1234567"))
	c.end()
	c.start(second)
	c.write([]byte("89abc"))
	c.end()
	var got []string
	for _, j := range jobs {
		got = append(got, fmt.Sprintf("%s %d @%d %s %v", j.obj.key, j.number, j.offset, j.data, j.complete))
	}
	want := []string{"a 1 @0 123 false", "a 2 @3 456 false", "a 3 @6 7 false", "a 0 @0  true",
		"b 1 @0 89a false", "b 2 @3 bc false", "b 0 @0  true"}
	if !slices.Equal(got, want) {
		t.Errorf("jobs:\n got %q\nwant %q", got, want)
	}
	if first.parts != 3 || second.parts != 2 {
		t.Errorf("parts counted %d and %d, want 3 and 2", first.parts, second.parts)
	}
}

// With a hash set, every part carries the MD5 of exactly its bytes, also
// after a small object sent whole, whose bytes were hashed and not used;
// whole objects and completions carry none.
func TestChunkerHashesEachPart(t *testing.T) {
	var jobs []*uploadJob
	c := &chunker{size: 3, newBuf: func() ([]byte, error) { return make([]byte, 0, 3), nil },
		emit: func(j *uploadJob) error { jobs = append(jobs, j); return nil }, sum: md5.New()}
	for _, o := range []struct {
		key    string
		pieces []string
	}{{"a", []string{"12", "345", "67"}}, {"b", []string{"xy"}}, {"c", []string{"abcde"}}} {
		c.start(&object{key: o.key})
		for _, p := range o.pieces {
			c.write([]byte(p))
		}
		c.end()
	}
	parts := 0
	for _, j := range jobs {
		if j.single || j.complete {
			if j.md5 != nil {
				t.Errorf("%s: a whole object or completion carries an MD5", j.obj.key)
			}
			continue
		}
		parts++
		if want := md5.Sum(j.data); !bytes.Equal(j.md5, want[:]) {
			t.Errorf("%s part %d (%q): MD5 %x, want %x", j.obj.key, j.number, j.data, j.md5, want)
		}
	}
	if parts != 5 {
		t.Errorf("%d parts, want 5", parts)
	}
}

// A failure to get a buffer (the run ends) or to hand a job on stops the
// chunker with that error.
func TestChunkerStopsOnErrors(t *testing.T) {
	stop := errors.New("run cancelled")
	c := &chunker{size: 2, newBuf: func() ([]byte, error) { return nil, stop }, emit: func(*uploadJob) error { return nil }}
	c.start(&object{})
	if err := c.write([]byte("abc")); !errors.Is(err, stop) {
		t.Errorf("newBuf failure: %v", err)
	}
	sent := 0
	c = &chunker{size: 2, newBuf: func() ([]byte, error) { return make([]byte, 0, 2), nil },
		emit: func(*uploadJob) error { sent++; return stop }}
	c.start(&object{})
	if err := c.write(bytes.Repeat([]byte("x"), 10)); !errors.Is(err, stop) || sent != 1 {
		t.Errorf("emit failure: %v after %d jobs, want the error after 1", err, sent)
	}
}
