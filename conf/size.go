package conf

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseSize reads a size the way Barman's check_size does, quirks
// included: a unit ending in "B" multiplies by powers of 1024 and one
// ending in "iB" by powers of 1000 (so "1GB" is 1073741824 bytes and
// "1GiB" is 1000000000), "1.5GB" is allowed, and the result must be at
// least 1. Case is ignored.
func ParseSize(s string) (int64, error) {
	v := strings.ToUpper(s)
	bad := fmt.Errorf("'%s' is not a valid size string", v)
	if v == "" {
		return 0, bad
	}
	var n int64
	if strings.HasSuffix(v, "B") {
		base, idx := 1024.0, 2
		if len(v) >= 2 && v[len(v)-2] == 'I' {
			base, idx = 1000.0, 3
		}
		mult := base
		found := false
		if len(v) >= idx {
			for _, prefix := range "KMGTPEZY" {
				if rune(v[len(v)-idx]) == prefix {
					f, err := strconv.ParseFloat(strings.TrimSpace(v[:len(v)-idx]), 64)
					if err != nil || !isPlainNumber(v[:len(v)-idx]) {
						return 0, bad
					}
					n = int64(f * mult)
					found = true
					break
				}
				mult *= base
			}
		}
		if !found {
			i, err := strconv.ParseInt(strings.TrimSpace(v[:len(v)-idx+1]), 10, 64)
			if err != nil {
				return 0, bad
			}
			n = i
		}
	} else {
		i, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, bad
		}
		n = i
	}
	if n < 1 {
		return 0, bad
	}
	return n, nil
}

// isPlainNumber rejects what Go parses as a float but Python does not
// ("0x1p3", "INF" and the like).
func isPlainNumber(s string) bool {
	s = strings.TrimSpace(s)
	if s == "" {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789.+-E_", r) {
			return false
		}
	}
	return true
}

// PrettySize prints n bytes in binary units as Barman's pretty_size
// (barman/utils.py) does for people: "512 B", "1.5 MiB".
func PrettySize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, u := float64(n), 0
	for f >= unit && u < 5 {
		f /= unit
		u++
	}
	return fmt.Sprintf("%.1f %ciB", f, "KMGTPE"[u-1])
}
