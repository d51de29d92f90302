package media

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"

	"golang.org/x/image/draw"
)

// MaxThumbPixels bounds the pixels of an image the thumbnailer decodes (40
// megapixels: a phone camera's full resolution passes, a decompression bomb does
// not). Decoding holds the whole image, up to 8 bytes a pixel.
const MaxThumbPixels = 40_000_000

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
