package tarball

import (
	"fmt"
	"strings"
)

// DirMember is the member name of a directory at rel (slash separated,
// "" for the walked root): the root is "." and others are rel itself, as
// Python's os.path.relpath gives them.
func DirMember(rel string) string {
	if rel == "" || rel == "." {
		return "."
	}
	return rel
}

// FileMember is the member name of file item in the directory at rel:
// "./NAME" in the root, "base/1/1259" deeper, as os.path.join builds them.
// The exclude rules are matched against these names.
func FileMember(rel, item string) string {
	return DirMember(rel) + "/" + item
}

// VolumeName is the object name of volume n (0 for the first) of the
// archive base ("data" or a tablespace OID), with the codec's extension:
// data.tar.gz, data_0001.tar.gz... (Barman's cloud.py, _build_dest_name).
func VolumeName(base string, n int, ext string) string {
	name := base
	if n > 0 {
		name += fmt.Sprintf("_%04d", n)
	}
	return name + ".tar" + ext
}

// JoinKey joins object key components the way Python's os.path.join does,
// so keys match Barman's even for prefixes with a trailing or doubled "/".
func JoinKey(elem ...string) string {
	out := ""
	for _, e := range elem {
		switch {
		case strings.HasPrefix(e, "/"):
			out = e
		case out == "" || strings.HasSuffix(out, "/"):
			out += e
		default:
			out += "/" + e
		}
	}
	return out
}
