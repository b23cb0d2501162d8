package output

import (
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go/format"
)

// zstdWindow is the window of the Parquet pages' zstd encoder. A page holds
// at most a few hundred KB before it is compressed (parquet-go's page
// buffer), so a window of 1 MiB compresses it as well as zstd's default of
// 8 MiB does, and the encoder's buffers, most of an export's memory with
// the default, shrink to a fraction (the figures are in BENCHMARKS.md).
const zstdWindow = 1 << 20

// zstdCodec is parquet-go's compress.Codec for zstd with a small window.
// Its methods are safe for concurrent use, as the interface asks: zstd's
// EncodeAll and DecodeAll are.
type zstdCodec struct {
	encOnce, decOnce sync.Once
	enc              *zstd.Encoder
	dec              *zstd.Decoder
	encErr, decErr   error
}

func (c *zstdCodec) String() string { return "ZSTD" }

func (c *zstdCodec) CompressionCodec() format.CompressionCodec { return format.Zstd }

// Encode appends nothing: it writes the compressed src to dst[:0].
func (c *zstdCodec) Encode(dst, src []byte) ([]byte, error) {
	c.encOnce.Do(func() {
		c.enc, c.encErr = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(zstdWindow),
			zstd.WithLowerEncoderMem(true), zstd.WithZeroFrames(true), zstd.WithEncoderCRC(false))
	})
	if c.encErr != nil {
		return dst, c.encErr
	}
	return c.enc.EncodeAll(src, dst[:0]), nil
}

// Decode writes the decompressed src to dst[:0].
func (c *zstdCodec) Decode(dst, src []byte) ([]byte, error) {
	c.decOnce.Do(func() {
		c.dec, c.decErr = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	})
	if c.decErr != nil {
		return dst, c.decErr
	}
	return c.dec.DecodeAll(src, dst[:0])
}
