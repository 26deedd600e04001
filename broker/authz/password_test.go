package authz

import (
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Vectors made with Debian 12's mosquitto 2.0.11:
//
//	mosquitto_passwd -c -b pw.txt alice 's3cret-pässword'   # default: 101 iterations
//	mosquitto_passwd -b -I 1000 pw.txt bob 'hunter2'
//
// (UTF-8 password bytes; the line in pw.txt is "<user>:<hash>").
const (
	mosquittoHash101  = "$7$101$uWauIPx0irStYQKx$4DGcmGFT8OcfOwEP5Q2wJImDKgwATCy5EIwBVSwPVgCO7SyCytaoJ1iaSdZFmsxXWVrQyCb3IwKbZXfJMrT6dw=="
	mosquittoPass101  = "s3cret-pässword"
	mosquittoHash1000 = "$7$1000$CZbGa7/kauZ9xKco$qO1PScGs4l9eiIfSS/NKgW84oVegtsbD485dz8d2d7VqISPu84UP5HYWlMFfzo8VSalSfWfxHZYHX5k8+rP7SQ=="
	mosquittoPass1000 = "hunter2"
)

func TestMosquittoVectors(t *testing.T) {
	tests := []struct {
		name, hash, password string
		want                 bool
	}{
		{"101 iterations", mosquittoHash101, mosquittoPass101, true},
		{"101 iterations, wrong password", mosquittoHash101, "s3cret-password", false},
		{"1000 iterations", mosquittoHash1000, mosquittoPass1000, true},
		{"1000 iterations, wrong password", mosquittoHash1000, "hunter3", false},
		{"empty password", mosquittoHash1000, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := VerifyPassword(tt.hash, []byte(tt.password))
			if err != nil || got != tt.want {
				t.Errorf("VerifyPassword: got %v, %v; want %v, nil", got, err, tt.want)
			}
		})
	}
}

// TestMosquittoPasswdLive verifies fresh mosquitto_passwd output when the
// tool is installed (apt-get install mosquitto).
func TestMosquittoPasswdLive(t *testing.T) {
	bin, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		t.Skip("mosquitto_passwd not installed")
	}
	file := filepath.Join(t.TempDir(), "pw")
	password := "live-Pässw0rd with spaces"
	out, err := exec.Command(bin, "-c", "-b", file, "dave", password).CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_passwd: %v: %s", err, out)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	user, hash, ok := strings.Cut(strings.TrimSpace(string(data)), ":")
	if !ok || user != "dave" {
		t.Fatalf("unexpected password file %q", data)
	}
	if ok, err := VerifyPassword(hash, []byte(password)); !ok || err != nil {
		t.Errorf("VerifyPassword(%s): got %v, %v; want true, nil", hash, ok, err)
	}
	if ok, _ := VerifyPassword(hash, []byte(password+"x")); ok {
		t.Errorf("VerifyPassword accepted a wrong password")
	}
}

func TestHashPassword(t *testing.T) {
	h, err := HashPassword([]byte("correct horse"), 1000)
	if err != nil {
		t.Fatalf("HashPassword: %v", err)
	}
	parts := strings.Split(h, "$")
	if len(parts) != 5 || parts[1] != "7" || parts[2] != "1000" {
		t.Fatalf("HashPassword: got %q, want $7$1000$<salt>$<hash>", h)
	}
	salt, err := base64.StdEncoding.DecodeString(parts[3])
	if err != nil || len(salt) != SaltSize {
		t.Errorf("salt: got %d bytes (%v), want %d", len(salt), err, SaltSize)
	}
	key, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(key) != 64 {
		t.Errorf("hash: got %d bytes (%v), want 64", len(key), err)
	}
	if ok, err := VerifyPassword(h, []byte("correct horse")); !ok || err != nil {
		t.Errorf("VerifyPassword(right): got %v, %v; want true, nil", ok, err)
	}
	if ok, err := VerifyPassword(h, []byte("correct horsE")); ok || err != nil {
		t.Errorf("VerifyPassword(wrong): got %v, %v; want false, nil", ok, err)
	}
	h2, _ := HashPassword([]byte("correct horse"), 1000)
	if h2 == h {
		t.Errorf("two hashes of one password are equal: salt is not random")
	}
	for _, it := range []int{0, -1, MaxIterations + 1} {
		if _, err := HashPassword([]byte("x"), it); err == nil {
			t.Errorf("HashPassword(iterations=%d): got nil error", it)
		}
	}
}

func TestVerifyPasswordErrors(t *testing.T) {
	salt := base64.StdEncoding.EncodeToString(make([]byte, 12))
	key := base64.StdEncoding.EncodeToString(make([]byte, 64))
	tests := []struct {
		name, hash string
		sentinel   error
		want       string
	}{
		{"bcrypt", "$2y$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", ErrUnknownHashScheme, "$2y$"},
		{"argon2id", "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", ErrUnknownHashScheme, "$argon2id$"},
		{"mosquitto sha512", "$6$" + salt + "$" + key, ErrUnknownHashScheme, "$6$"},
		{"plaintext", "hunter2", ErrUnknownHashScheme, "no $<id>$ prefix"},
		{"empty", "", ErrUnknownHashScheme, "no $<id>$ prefix"},
		{"too few fields", "$7$101$" + salt, ErrMalformedHash, "4 fields"},
		{"too many fields", "$7$101$" + salt + "$" + key + "$x", ErrMalformedHash, "4 fields"},
		{"iterations not a number", "$7$abc$" + salt + "$" + key, ErrMalformedHash, "iterations"},
		{"zero iterations", "$7$0$" + salt + "$" + key, ErrMalformedHash, "iterations"},
		{"too many iterations", "$7$99999999$" + salt + "$" + key, ErrMalformedHash, "iterations"},
		{"salt not base64", "$7$101$!!!$" + key, ErrMalformedHash, "salt"},
		{"salt too short", "$7$101$AAAA$" + key, ErrMalformedHash, "salt"},
		{"url base64 hash", "$7$101$" + salt + "$" + strings.ReplaceAll(mosquittoHash1000[strings.LastIndex(mosquittoHash1000, "$")+1:], "+", "-"), ErrMalformedHash, "hash"},
		{"short hash", "$7$101$" + salt + "$AAAA", ErrMalformedHash, "hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := VerifyPassword(tt.hash, []byte("x"))
			if ok || !errors.Is(err, tt.sentinel) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("VerifyPassword(%q): got %v, %v; want false and %v containing %q", tt.hash, ok, err, tt.sentinel, tt.want)
			}
		})
	}
}
