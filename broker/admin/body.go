package admin

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// errEncoding: a PUT body in a Content-Encoding other than gzip (or none).
var errEncoding = errors.New("admin: unsupported Content-Encoding")

// readBody reads r's body, gunzipping it when Content-Encoding is gzip
// (the operator compresses bundles: a 100,000-user bundle is ~25 MB of
// JSON, a third of that compressed). max bounds the bytes read on the
// wire and, separately, the bytes after decompression, so a small gzip
// bomb is refused like a large body (*http.MaxBytesError).
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	body := io.Reader(http.MaxBytesReader(w, r.Body, max))
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, fmt.Errorf("gunzip: %w", err)
		}
		data, err := io.ReadAll(io.LimitReader(zr, max+1))
		if err != nil {
			return nil, fmt.Errorf("gunzip: %w", err)
		}
		if int64(len(data)) > max {
			return nil, &http.MaxBytesError{Limit: max}
		}
		return data, nil
	default:
		return nil, fmt.Errorf("%w %q (gzip or none)", errEncoding, enc)
	}
	return io.ReadAll(body)
}
