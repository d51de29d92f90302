package media

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"

	"golang.org/x/image/draw"
)

// MaxThumbPixels bounds the pixels of an image the thumbnailer decodes (40
// megapixels: a phone camera's full resolution passes, a decompression bomb does
// not), and MaxThumbDecodeBytes the memory the decoded image may take (from 1.5
// bytes a pixel for a camera's JPEG to 8 for a 16-bit PNG with alpha).
const (
	MaxThumbPixels      = 40_000_000
	MaxThumbDecodeBytes = 160 << 20
)

// decodedBytes is about what decoding an image of cfg takes.
func decodedBytes(cfg image.Config) int64 {
	px := int64(cfg.Width) * int64(cfg.Height)
	switch cfg.ColorModel {
	case color.GrayModel, color.AlphaModel:
		return px
	case color.YCbCrModel:
		return px * 3 // 4:4:4 at worst
	case color.Gray16Model, color.Alpha16Model:
		return px * 2
	case color.RGBA64Model, color.NRGBA64Model:
		return px * 8
	}
	if _, ok := cfg.ColorModel.(color.Palette); ok {
		return px
	}
	return px * 4
}

// ErrNoThumbnail says a source cannot be thumbnailed: not a JPEG or PNG, damaged,
// or too large.
var ErrNoThumbnail = errors.New("media: no thumbnail for this source")

// Thumbnail renders src, a JPEG or PNG, with its longest side at most side pixels,
// in the source's format. It reads the image's size before decoding it, so a
// header that claims more than MaxThumbPixels costs nothing.
func Thumbnail(src []byte, side int) ([]byte, string, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(src))
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrNoThumbnail, err)
	}
	if format != "jpeg" && format != "png" {
		return nil, "", fmt.Errorf("%w: %s images are not thumbnailed", ErrNoThumbnail, format)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > MaxThumbPixels {
		return nil, "", fmt.Errorf("%w: %dx%d pixels (at most %d)", ErrNoThumbnail, cfg.Width, cfg.Height, MaxThumbPixels)
	}
	if n := decodedBytes(cfg); n > MaxThumbDecodeBytes {
		return nil, "", fmt.Errorf("%w: %dx%d pixels would take %d MiB to decode (at most %d)", ErrNoThumbnail,
			cfg.Width, cfg.Height, n>>20, MaxThumbDecodeBytes>>20)
	}
	var img image.Image
	if format == "jpeg" {
		img, err = jpeg.Decode(bytes.NewReader(src))
	} else {
		img, err = png.Decode(bytes.NewReader(src))
	}
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrNoThumbnail, err)
	}
	b := img.Bounds()
	w, h := fit(b.Dx(), b.Dy(), side)
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.BiLinear.Scale(dst, dst.Bounds(), img, b, draw.Src, nil)
	var out bytes.Buffer
	if format == "jpeg" {
		err = jpeg.Encode(&out, dst, &jpeg.Options{Quality: 82})
		return out.Bytes(), "image/jpeg", err
	}
	err = (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&out, dst)
	return out.Bytes(), "image/png", err
}

// fit scales w x h down so its longest side is at most side, keeping the aspect
// ratio (and at least one pixel a side); an image that fits already keeps its size.
func fit(w, h, side int) (int, int) {
	if w <= side && h <= side {
		return w, h
	}
	if w >= h {
		return side, max(1, int(int64(h)*int64(side)/int64(w)))
	}
	return max(1, int(int64(w)*int64(side)/int64(h))), side
}
