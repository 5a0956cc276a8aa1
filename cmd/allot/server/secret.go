package server

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// SecretFileName is the auth secret created in the data dir on first start
// when neither ALLOT_AUTH_SECRET nor --auth-secret-file is given.
const SecretFileName = "auth.secret"

// LoadSecret finds the JWT signing secret the way API.md says: the value of
// ALLOT_AUTH_SECRET (env), else the contents of file, else
// <dataDir>/auth.secret, created with 32 random bytes (hex, mode 0600) when
// create is set and it does not exist. Surrounding white space is trimmed
// from every source alike, so that `ALLOT_AUTH_SECRET=$(cat auth.secret)`
// or a value with a trailing newline signs with the same key as the file.
func LoadSecret(env, file, dataDir string, create bool) ([]byte, error) {
	if env != "" {
		b := bytes.TrimSpace([]byte(env))
		if len(b) == 0 {
			return nil, errors.New("auth secret: ALLOT_AUTH_SECRET is only white space")
		}
		return b, nil
	}
	if file != "" {
		return readSecret(file)
	}
	path := filepath.Join(dataDir, SecretFileName)
	secret, err := readSecret(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !create {
		return secret, err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	text := hex.EncodeToString(raw[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return readSecret(path) // another process made it first
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteString(text + "\n"); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return []byte(text), nil
}

func readSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth secret: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, fmt.Errorf("auth secret file %s is empty", path)
	}
	return b, nil
}
