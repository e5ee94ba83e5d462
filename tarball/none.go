package tarball

import "io"

// none stores the tar stream as it is.
type none struct{}

func (none) Name() string         { return "" }
func (none) Ext() string          { return "" }
func (none) Compresses() bool     { return false }
func (none) NeedsHistory() bool   { return false }
func (none) NewEncoder() Encoder  { return noneEncoder{} }
func (none) NewJoiner() Joiner    { return nil }
func (none) BarmanRestores() bool { return true }
func (none) Memory(int) int64     { return 0 }

func (none) NewDecoder(r io.Reader) (io.ReadCloser, error) { return io.NopCloser(r), nil }

type noneEncoder struct{}

func (noneEncoder) Encode(b Block) ([]byte, error) { return b.Data, nil }
