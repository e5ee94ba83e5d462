package tarball

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Entry is one member of an archive, as the walker found it and the sealer
// writes it.
type Entry struct {
	// Archive is the archive base: "data" or a tablespace OID.
	Archive string
	Header  *tar.Header
	// Path is the file to read a regular member's content from.
	Path string
	// Body is in-memory content (backup_label); used when Path is empty.
	Body []byte
}

var (
	namesMu sync.Mutex
	unames  = map[int]string{}
	gnames  = map[int]string{}
)

func lookupNames(uid, gid int) (string, string) {
	namesMu.Lock()
	defer namesMu.Unlock()
	un, ok := unames[uid]
	if !ok {
		if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
			un = u.Username
		}
		unames[uid] = un
	}
	gn, ok := gnames[gid]
	if !ok {
		if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
			gn = g.Name
		}
		gnames[gid] = gn
	}
	return un, gn
}

// ErrUnsupportedType marks files a tar archive cannot hold (sockets); the
// walker skips them as Python's tarfile does.
var ErrUnsupportedType = errors.New("unsupported file type")

// Header builds the tar header of the file at path, stored as member name,
// from lstat: symlinks stay symlinks, owners keep their ids and names, and
// mtime keeps whole seconds only.
func Header(path, name string, fi fs.FileInfo) (*tar.Header, error) {
	if fi.Mode()&fs.ModeSocket != 0 {
		return nil, ErrUnsupportedType
	}
	link := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		var err error
		if link, err = os.Readlink(path); err != nil {
			return nil, err
		}
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return nil, fmt.Errorf("tar header for %s: %w", path, err)
	}
	hdr.Name = name
	if fi.IsDir() {
		hdr.Name = name + "/"
	}
	hdr.ModTime = fi.ModTime().Truncate(time.Second)
	hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
	hdr.Format = tar.FormatPAX
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
		hdr.Uname, hdr.Gname = lookupNames(hdr.Uid, hdr.Gid)
	}
	return hdr, nil
}

// WriteSum writes e into tw. A regular file is copied at exactly the size
// its header declares: a file that shrank while read is padded with zeros
// and one that grew is cut, so the archive stays valid whatever PostgreSQL
// does to the file meanwhile (WAL replay repairs the content). A file that
// vanished before it could be opened is skipped: skipped is true and
// nothing was written. sum, when not nil, is fed every byte of the
// member's content as stored, padding included, as it streams through:
// the file is read once. through, when not nil, is given the opened file
// and returns what to copy from in its place, from the file's start: a
// reader that checks what it reads (pg.PageCheck.Reader).
func WriteSum(tw *tar.Writer, e Entry, sum io.Writer, through func(*os.File) io.Reader) (skipped bool, err error) {
	var src io.Reader
	if e.Header.Typeflag == tar.TypeReg {
		if e.Path == "" {
			src = bytes.NewReader(e.Body)
		} else {
			f, err := os.Open(e.Path)
			if errors.Is(err, fs.ErrNotExist) {
				return true, nil
			}
			if err != nil {
				return false, err
			}
			defer f.Close()
			src = f
			if through != nil {
				src = through(f)
			}
		}
	}
	if err := tw.WriteHeader(e.Header); err != nil {
		return false, fmt.Errorf("write tar header %s: %w", e.Header.Name, err)
	}
	if src == nil || e.Header.Size == 0 {
		return false, nil
	}
	src = io.LimitReader(src, e.Header.Size)
	var dst io.Writer = tw
	if sum != nil {
		src = io.TeeReader(src, sum)
		dst = io.MultiWriter(tw, sum)
	}
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	// Only the tar writer's Write, so that reads are of the buffer's
	// size, whole pages, whatever tar.Writer implements one day.
	n, err := io.CopyBuffer(struct{ io.Writer }{tw}, src, *buf)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", e.Path, err)
	}
	if n < e.Header.Size {
		if err := writeZeros(dst, e.Header.Size-n); err != nil {
			return false, err
		}
	}
	return false, nil
}

// copyBuffers hold the reads of a file into its member: 64 KiB, eight
// PostgreSQL pages, so a page check judges pages where they are read.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

var zeros [64 << 10]byte

func writeZeros(w io.Writer, n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := w.Write(zeros[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}
